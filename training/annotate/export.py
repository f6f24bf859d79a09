"""``khabar annotate export``: the articles the models are least sure of, as Label Studio tasks.

Each task carries the model's labels as a pre-annotation (``predictions``, ``model_version`` = the
bundle version), so the reviewer corrects instead of labelling from zero, and a ``khabar`` block in
its data (task, label set, the model's labels, the input file, the article's paragraph count, why it
was picked) that ``khabar annotate import`` checks the reviews against. The labeling config for the
bundle's labels is written next to the tasks (``<out stem>.label_config.xml``).
"""

from __future__ import annotations

import json
from pathlib import Path

from inference.tagger import TaggerConfig, load_tagger
from inference.text.preprocess import is_empty_paragraph
from training.annotate.errors import AnnotationError
from training.annotate.files import write_atomic
from training.annotate.label_studio import (
    KHABAR_KEY,
    STANCE_CONTROL,
    TASKS,
    TEXT_OBJECT,
    TOPIC_CONTROL,
    choice,
    label_config,
    unit_controls,
)
from training.annotate.select import BATCH, Candidate, select_least_sure


def config_path(out: Path) -> Path:
    """Where the labeling config of the tasks file ``out`` goes."""
    return out.with_name(out.stem + ".label_config.xml")


def export_tasks(
    model_refs: list[str],
    input_path: str | Path,
    task: str,
    n: int,
    out: str | Path,
    targets: list[str] | None = None,
    batch_size: int = BATCH,
) -> dict:
    """Write the ``n`` least sure units of ``input_path`` for ``task`` as Label Studio tasks.

    ``model_refs``: bundles (at most one per task); the one for ``task`` is required, a boilerplate
    bundle also cleans the text the topic and stance models read (as in ``khabar tag``).
    ``targets``: stance targets asked of every article, besides each record's own ``claim``.
    """
    if task not in TASKS:
        raise AnnotationError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    if n < 1:
        raise AnnotationError(f"--n must be at least 1, got {n}")
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise AnnotationError(f"--out must be a .json file (Label Studio's JSON import), got {out}")
    tagger = load_tagger(list(model_refs), config=TaggerConfig(stance_targets=list(targets or [])))
    if task not in tagger.bundles:
        have = ", ".join(sorted(tagger.bundles)) or "none"
        raise AnnotationError(f"--task {task} needs a {task} model among --model (given: {have})")
    picked, stats = select_least_sure(tagger, task, input_path, n, batch_size)
    if not picked:
        hint = (
            " (no stance target: pass --target, or give records a 'claim')"
            if task == "stance"
            else ""
        )
        raise AnnotationError(f"{input_path}: nothing to review for {task}{hint}")
    bundle = tagger.bundles[task]
    source = str(Path(input_path).resolve())
    tasks = [
        ls_task(c, task, bundle.labels, bundle.version, source, rank)
        for rank, c in enumerate(picked, start=1)
    ]
    cfg_path = config_path(out)
    write_atomic(out, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    write_atomic(cfg_path, label_config(task, bundle.labels))
    return {
        "task": task,
        "out": str(out),
        "label_config": str(cfg_path),
        "model_version": bundle.version,
        "tasks": len(tasks),
        "read": stats.read,
        "rejected": stats.rejected,
        "margins": [round(c.margin, 4) for c in picked],
        "picked_for_rules": sum(c.reason == "rules" for c in picked),
    }


def ls_task(
    cand: Candidate, task: str, labels: list[str], version: str, source: str, rank: int
) -> dict:
    """One Label Studio task (its JSON import format) with the model's labels as pre-annotation."""
    art = cand.article
    meta = {
        "task": task,
        "labels": list(labels),
        "model_version": version,
        "input": source,
        "n_paragraphs": len(art.paragraphs),
        "rank": rank,
        "reason": cand.reason,
        "margin": round(cand.margin, 6),
    }
    data = {
        "id": art.id,
        "title": art.title or "",
        "source": art.source or "",
        "url": art.url or "",
    }
    if task == "boilerplate":
        shown = [i for i, p in enumerate(art.paragraphs) if not is_empty_paragraph(p)]
        data["paragraphs"] = [{"index": i, "text": art.paragraphs[i]} for i in shown]
        predicted = [cand.labels[i] for i in shown]
        meta.update(predicted=predicted, disagreements=cand.disagreements)
        result = [
            choice(control, obj, label)
            for (control, obj), label in zip(
                unit_controls(task, len(shown)), predicted, strict=True
            )
        ]
    else:
        if task == "topic":
            data["text"] = art.text
            control = TOPIC_CONTROL
        else:
            data.update(claim=cand.target, text=cand.text)
            control = STANCE_CONTROL
        meta["predicted"] = cand.label
        result = [choice(control, TEXT_OBJECT, cand.label)]
    data[KHABAR_KEY] = meta
    prediction = {"model_version": version, "score": round(cand.score, 6), "result": result}
    return {"data": data, "predictions": [prediction]}
