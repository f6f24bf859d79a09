"""``khabar evaluate``: score a model bundle on a labeled file in any supported input format.

Gold labels come from the record fields of DESIGN.md "Input": ``labels`` (boilerplate, one per
paragraph), ``label`` (topic), ``claim`` + ``label`` (stance). Rows are built with exactly the
preprocessing the tagger uses (``inference.text.preprocess``), with the bundle's own normalizer
version and, for boilerplate, its own furniture rules.

Also the rows, gold labels and predictions of a built dataset's split (``split_rows``,
``gold_labels``, ``predict_labels``): how ``training.fit.train`` scores its held-out splits and
``promote`` re-scores both models on a dataset folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from inference.engines.readers import ReadStats, iter_items
from inference.predictors.bundle import Bundle, load_bundle
from inference.text.furniture import FurnitureRules, default_rules
from inference.text.preprocess import boilerplate_inputs, boilerplate_row, stance_row, topic_row
from inference.text.schema import Article
from training.tracking.metrics import compute_metrics

log = logging.getLogger(__name__)

PREDICT_BATCH = 512  # labeled files (khabar evaluate)
SPLIT_PREDICT_BATCH = 2048  # the held-out splits of a built dataset (train, promote)
# The dataset columns each task's predictor reads (ARCHITECTURE.md "Built datasets").
ROW_COLUMNS = {
    "boilerplate": ("id", "text", "prev_text", "next_text", "features", "rule"),
    "topic": ("id", "source", "text"),
    "stance": ("id", "target", "text"),
}


class EvaluateError(ValueError):
    """The data cannot be scored with this model (task mismatch, no gold labels, unknown labels)."""


@dataclass
class LabeledRows:
    rows: list[dict] = field(default_factory=list)
    gold: list[str] = field(default_factory=list)
    unlabeled: int = 0  # records (or paragraphs) without a gold label: skipped, and counted


def _bundle_rules(bundle: Bundle) -> FurnitureRules:
    rules = bundle.meta.get("furniture_rules")
    return FurnitureRules.from_dicts(rules) if rules else default_rules()


def _add_boilerplate(out: LabeledRows, article: Article, bundle: Bundle, rules) -> None:
    if article.labels is None:
        out.unlabeled += 1
        return
    for para in boilerplate_inputs(article, rules, bundle.normalizer_version):
        gold = article.labels[para.index]
        if gold is None:  # a non-empty paragraph the annotator left unlabeled
            out.unlabeled += 1
            continue
        out.rows.append(boilerplate_row(para))
        out.gold.append(gold)


def _add_topic(out: LabeledRows, article: Article, bundle: Bundle) -> None:
    if article.label is None:
        out.unlabeled += 1
        return
    # The raw story (no boilerplate cleaning): what the file gives is what gets scored.
    out.rows.append(topic_row(article, None, bundle.normalizer_version))
    out.gold.append(article.label)


def _add_stance(out: LabeledRows, article: Article, bundle: Bundle) -> None:
    if article.label is None or not article.claim:
        out.unlabeled += 1
        return
    out.rows.append(stance_row(article.id, article.claim, article.text, bundle.normalizer_version))
    out.gold.append(article.label)


def read_labeled(path: str | Path, task: str, bundle: Bundle) -> tuple[LabeledRows, ReadStats]:
    """Model rows and gold labels for ``task`` from every record under ``path``."""
    out, stats = LabeledRows(), ReadStats()
    rules = _bundle_rules(bundle) if task == "boilerplate" else None
    for item in iter_items(path, stats=stats):
        if item.article is None:
            log.warning("%s: record rejected: %s", item.where, item.error)
            continue
        if task == "boilerplate":
            _add_boilerplate(out, item.article, bundle, rules)
        elif task == "topic":
            _add_topic(out, item.article, bundle)
        else:
            _add_stance(out, item.article, bundle)
    return out, stats


def _check(task: str, bundle: Bundle, data: LabeledRows, path: str | Path) -> None:
    if bundle.task != task:
        raise EvaluateError(f"model is a {bundle.task!r} model, but --task is {task!r}")
    if not data.gold:
        raise EvaluateError(
            f"{path}: no gold labels for task {task!r} "
            "(expected 'labels' per paragraph for boilerplate, 'label' for topic, "
            "'claim' + 'label' for stance)"
        )
    unknown = sorted(set(data.gold) - set(bundle.labels))
    if unknown:
        raise EvaluateError(
            f"{path}: labels {unknown} are not known to the model (its labels: {bundle.labels})"
        )


# ---------------------------------------------------------------- rows and labels of a built split
def gold_labels(split, labels: list[str]) -> list[str]:
    values = split["label"]
    if hasattr(split.features["label"], "names"):
        return [labels[int(i)] for i in values]
    return [str(v) for v in values]


def split_rows(split, task: str) -> list[dict]:
    columns = [c for c in ROW_COLUMNS[task] if c in split.column_names]
    return split.select_columns(columns).to_list()


def predict_labels(
    bundle: Bundle, rows: list[dict], batch_size: int = SPLIT_PREDICT_BATCH
) -> list[str]:
    out: list[str] = []
    for start in range(0, len(rows), batch_size):
        labels, _ = bundle.predict(rows[start : start + batch_size])
        out.extend(labels)
    return out


def evaluate_bundle(bundle: Bundle, data_path: str | Path, task: str) -> dict:
    if task not in ("boilerplate", "topic", "stance"):
        raise EvaluateError(f"unknown task {task!r} (expected boilerplate, topic or stance)")
    if bundle.task != task:
        raise EvaluateError(f"model is a {bundle.task!r} model, but --task is {task!r}")
    data, stats = read_labeled(data_path, task, bundle)
    _check(task, bundle, data, data_path)
    predicted = predict_labels(bundle, data.rows, PREDICT_BATCH)
    metrics = compute_metrics(task, data.gold, predicted, bundle.labels)
    return {
        **metrics,
        "n": len(data.gold),
        "unlabeled": data.unlabeled,
        "rejected": stats.rejected,
        "task": task,
        "model_version": bundle.version,
        "data": str(data_path),
    }


def evaluate_model(model_ref: str | Path, data_path: str | Path, task: str) -> dict:
    """Metrics of the model at ``model_ref`` (bundle dir or MLflow URI) on a labeled file.

    Returns ``compute_metrics`` output plus ``n`` (scored examples), ``unlabeled`` (skipped records
    or paragraphs without gold), ``rejected`` (unreadable records), ``task``, ``model_version``.
    """
    return evaluate_bundle(load_bundle(str(model_ref)), data_path, task)
