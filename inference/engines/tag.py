"""``khabar tag``: one archive through the chosen engine, ``local`` (``runner``) or ``ray``."""

from __future__ import annotations

from pathlib import Path

ENGINES = ("local", "ray")


def tag_archive(
    model_refs: list[str],
    input_path: str | Path,
    output: str | Path,
    engine: str = "local",
    config: str | Path | None = None,
    address: str | None = None,
    resume: bool = False,
    batch_size: int = 256,
    backend: str = "auto",
    workers: int | None = None,
    max_record_bytes: int | None = None,
) -> dict:
    """Tag ``input_path`` into ``output`` with the bundles ``model_refs``; return the run summary.

    ``address`` (a Ray cluster) is read by the ray engine only; ``resume`` and ``workers`` by the
    local one (the ray engine has no resume: asking for it raises ``ValueError``).
    ``max_record_bytes`` overrides the tagger config's limit on one input record.
    """
    if engine == "ray":
        if resume:
            raise ValueError("resume works with the local engine only")
        from inference.engines.ray import run_tagging_ray

        return run_tagging_ray(
            model_refs,
            input_path,
            output,
            config=config,
            address=address,
            batch_size=batch_size,
            backend=backend,
            max_record_bytes=max_record_bytes,
        )
    if engine == "local":
        from inference.engines.runner import run_tagging
        from inference.tagger import load_tagger

        tagger = load_tagger(model_refs, config=config, backend=backend)
        return run_tagging(
            tagger,
            input_path,
            output,
            resume=resume,
            batch_size=batch_size,
            workers=workers,
            max_record_bytes=max_record_bytes,
        )
    raise ValueError(f"unknown engine {engine!r} ({' | '.join(ENGINES)})")
