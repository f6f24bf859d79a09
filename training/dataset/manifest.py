"""``manifest.json`` of a dataset build: what was read, rejected, deduplicated and written.

Invariants the tests check (and a reader may rely on):
- ``reading.read == reading.ok + reading.rejected`` (also per input);
- per output, ``examples`` == the sum over splits == the sum over labels == the sum over provenance;
- ``content_hash`` is a sha256 over every output's examples (in write order, with their splits and
  label names); it changes when any example changes and not otherwise (no times, no paths in it).
"""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from inference.text.normalize import NORMALIZER_VERSION
from training.config import DatasetConfig
from training.dataset.plan import MAX_LISTED, Pass1
from training.dataset.writer import OutputWriter

MANIFEST_VERSION = 1


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def combined_hash(writers: dict[str, OutputWriter]) -> str:
    h = hashlib.sha256()
    for name in sorted(writers):
        h.update(f"{name}\x1f{writers[name].content_hash}\x1e".encode())
    return h.hexdigest()


def reading_section(reading: dict) -> dict:
    """Totals and per-input ReadStats; every rejected record with its file:line and reason."""
    inputs, rejections = {}, []
    for name, info in reading.items():
        stats = info["stats"]
        inputs[name] = {
            "path": info["path"],
            "read": stats.read,
            "ok": stats.ok,
            "rejected": stats.rejected,
            "used": info["used"],
            "encodings": stats.encodings,
        }
        rejections += [{"input": name, **r} for r in stats.rejections]
    return {
        "read": sum(i["read"] for i in inputs.values()),
        "ok": sum(i["ok"] for i in inputs.values()),
        "rejected": sum(i["rejected"] for i in inputs.values()),
        "inputs": inputs,
        "rejections": rejections,
    }


def outputs_section(pass1: Pass1, writers: dict[str, OutputWriter], out_dir: Path) -> dict:
    out = {}
    for plan in pass1.plans:
        spec = plan.spec
        entry = writers[spec.name].summary()
        entry.update(
            path=str(out_dir / spec.name),
            inputs=sorted(spec.inputs),
            planned_units=len(plan.ordinals),
            skipped=dict(sorted(plan.skipped.items())),
            split_plan=plan.plan.notes if plan.plan else {},
        )
        if spec.task == "boilerplate":
            entry["planned_units_are"] = "articles (each gives one example per labeled paragraph)"
        if spec.annotations or spec.annotation_rejects:
            unmatched = pass1.unmatched_annotations(plan)
            reviewed = sum(
                any(a.provenance == "review" for a in anns) for anns in spec.annotations.values()
            )
            entry["annotations"] = {
                "articles_annotated": len(spec.annotations),
                # From `khabar annotate import` (origin: review): articles, and the examples that
                # carry a reviewed label (provenance "review", also counted per split above).
                "articles_from_review": reviewed,
                "examples_from_review": entry.get("provenance", {}).get("review", 0),
                "unmatched_article_ids": len(unmatched),
                "unmatched_listed": unmatched[:MAX_LISTED],
                "rejected": spec.annotation_rejects[:MAX_LISTED],
                "rejected_total": len(spec.annotation_rejects),
            }
        out[spec.name] = entry
    return out


def build_manifest(
    cfg: DatasetConfig,
    out_dir: Path,
    reading: dict,
    pass1: Pass1,
    writers: dict[str, OutputWriter],
    labeler,
    timer,
) -> dict:
    read_info = reading_section(reading)
    total = timer.seconds.get("total") or 1e-9
    return {
        "manifest_version": MANIFEST_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "out_dir": str(out_dir),
        "content_hash": combined_hash(writers),
        "outputs": outputs_section(pass1, writers, out_dir),
        "reading": read_info,
        "duplicates": {
            "removed": sum(pass1.duplicate_counts.values()),
            "by_kind": dict(sorted(pass1.duplicate_counts.items())),
            "by_input": dict(sorted(pass1.duplicates_by_input.items())),
            "listed": pass1.duplicates,
            "index": pass1.dedup_stats(),
            "policy": "first copy kept; exact + MinHash/LSH near duplicates removed before splitting",
        },
        "weak_labels": {"articles_observed_by_source": getattr(labeler, "source_articles_", {})},
        "normalizer_version": NORMALIZER_VERSION,
        "furniture_rules": labeler.rules.to_dicts() if getattr(labeler, "rules", None) else None,
        "config": cfg.model_dump(mode="json"),
        "seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in timer.cpu_seconds.items()},
        "records_per_second": round(read_info["read"] / total, 1),
        "versions": {
            "khabar": _version("khabar"),
            "datasets": _version("datasets"),
            "python": platform.python_version(),
        },
    }


def manifest_summary(manifest: dict) -> dict:
    """What ``khabar build-dataset`` prints: the manifest without the per-record rejections."""
    keep = ("out_dir", "content_hash", "reading", "outputs", "seconds")
    summary = {k: manifest[k] for k in keep if k in manifest}
    if "reading" in summary and isinstance(summary["reading"], dict):
        summary["reading"] = {k: v for k, v in summary["reading"].items() if k != "rejections"}
    return summary or manifest
