"""Helpers for the review round-trip tests: stub models with known probabilities, reviewers'
results, and Label Studio JSON exports shaped like the real one (``data/ls_export_*.json`` are real
Label Studio 1.23 exports of the same kind of tasks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference.predictors.bundle import Bundle
from inference.tagger import Tagger, TaggerConfig
from inference.text.normalize import NORMALIZER_VERSION


class StubPredictor:
    """``predict_proba`` from a table: row id -> probabilities (``default`` for other rows)."""

    def __init__(self, labels: list[str], table: dict[str, list[float]], default: list[float]):
        self.labels, self.table, self.default = labels, table, default

    def predict_proba(self, rows: list[dict]) -> np.ndarray:
        return np.array([self.table.get(r["id"], self.default) for r in rows], dtype=np.float64)


def stub_tagger(task: str, labels: list[str], table: dict, default: list[float], **cfg) -> Tagger:
    meta = {
        "task": task,
        "labels": labels,
        "kind": "sklearn",
        "normalizer_version": NORMALIZER_VERSION,
        "version": f"stub-{task}",
    }
    bundle = Bundle(Path("stub"), meta, StubPredictor(labels, table, default))
    return Tagger({task: bundle}, TaggerConfig(**cfg))


def choices_result(task: dict, labels: list[str] | str) -> list[dict]:
    """What a reviewer submits for an exported task: ``labels`` per shown paragraph (boilerplate)
    or one label, in the controls of the task's own pre-annotation."""
    pre = task["predictions"][0]["result"]
    chosen = [labels] * len(pre) if isinstance(labels, str) else labels
    return [
        {**item, "value": {"choices": [label]}}
        for item, label in zip(pre, chosen, strict=True)
        if label is not None
    ]


def ls_export(tasks: list[dict], reviews: dict[str, list[dict]]) -> list[dict]:
    """A Label Studio JSON export of ``tasks``; ``reviews``: article id -> annotations, each
    ``{"by": annotator id, "result": [...]}`` or ``{"by": id, "skip": True}``."""
    out, next_id = [], 1
    for k, task in enumerate(tasks, start=1):
        annotations = []
        for r in reviews.get(task["data"]["id"], []):
            stamp = f"2026-01-01T00:00:{next_id:02d}Z"
            annotations.append(
                {
                    "id": next_id,
                    "completed_by": r["by"],
                    "result": [] if r.get("skip") else r["result"],
                    "was_cancelled": bool(r.get("skip")),
                    "ground_truth": False,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "task": k,
                    "project": 1,
                }
            )
            next_id += 1
        out.append(
            {
                "id": k,
                "annotations": annotations,
                "drafts": [],
                "predictions": [k],
                "data": task["data"],
                "meta": {},
                "total_annotations": len(annotations),
                "cancelled_annotations": sum(a["was_cancelled"] for a in annotations),
                "project": 1,
            }
        )
    return out


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), "utf-8")
    return path
