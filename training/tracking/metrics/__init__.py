"""Classification metrics for every khabar task, computed through a local ``evaluate`` module.

``evaluate.load("f1")`` would fetch from the hub, which is unreachable here, so the metric ships in
this package (``khabar_classification/``) and is loaded by path. ``compute_metrics`` is the one entry
point trainers, early stopping and ``khabar evaluate`` use; its result is JSON-able.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

METRIC_DIR = Path(__file__).resolve().parent / "khabar_classification"

# The boilerplate task reports the furniture class and story-paragraph recall on top (DESIGN.md).
FURNITURE_LABEL = "boilerplate"
CONTENT_LABEL = "content"


@lru_cache(maxsize=1)
def _metric():
    import evaluate

    # keep_in_memory: no arrow cache files under ~/.cache for a few thousand strings.
    return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


def compute_metrics(
    task: str, y_true: list[str], y_pred: list[str], labels: list[str]
) -> dict[str, Any]:
    """Accuracy, macro_f1, per_class, confusion_matrix (+ furniture_* and content_recall for boilerplate).

    Raises ``ValueError`` when the two lists differ in length or hold a label outside ``labels``.
    """
    y_true, y_pred = [str(x) for x in y_true], [str(x) for x in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred {len(y_pred)}")
    if not y_true:
        raise ValueError("no examples to evaluate")
    kwargs: dict[str, Any] = {"labels": list(labels)}
    if task == "boilerplate":
        missing = {FURNITURE_LABEL, CONTENT_LABEL} - set(labels)
        if missing:
            raise ValueError(f"boilerplate metrics need labels {sorted(missing)} in {labels}")
        kwargs.update(positive_label=FURNITURE_LABEL, content_label=CONTENT_LABEL)
    return _metric().compute(predictions=y_pred, references=y_true, **kwargs)


def flat_scores(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The scalar scores of ``metrics`` as MLflow metric names: ``{prefix}accuracy``, ``{prefix}f1_<label>``..."""
    out = {f"{prefix}{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    for label, scores in metrics.get("per_class", {}).items():
        out[f"{prefix}f1_{label}"] = float(scores["f1"])
    return out
