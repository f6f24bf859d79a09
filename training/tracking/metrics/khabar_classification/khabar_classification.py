"""khabar_classification: an ``evaluate`` metric module for khabar's three tagging tasks.

Loaded by path (``evaluate.load("<dir>")``) because the Hugging Face hub is unreachable offline.
Inputs are label *strings*; the label order comes from the ``labels`` argument so that per-class
scores and the confusion matrix line up with the model bundle's label list.

Computes accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix
(rows: gold, columns: predicted). With ``positive_label`` (boilerplate: "boilerplate") it adds
``furniture_*`` scores for that class, and with ``content_label`` the ``content_recall`` (share of
gold story paragraphs that are kept).

This file is copied into evaluate's module cache on load, so it imports nothing from khabar.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = (
    "Accuracy, macro-F1, per-class P/R/F1/support and confusion matrix over string labels."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list[str]): predicted labels.
    references (list[str]): gold labels.
    labels (list[str]): the full label set, in the model's order (required).
    positive_label (str, optional): a class reported separately as ``furniture_precision/recall/f1``.
    content_label (str, optional): a class whose recall is reported as ``content_recall``.
Returns:
    accuracy, macro_f1, per_class {label: {precision, recall, f1, support}},
    confusion_matrix {labels, matrix}; plus furniture_* / content_recall when asked.
    macro_f1 averages over labels that occur in the gold or predicted labels: a class absent from
    both has no defined F1 and would only drag the average to zero.
"""


def _safe_div(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _confusion(references: list[str], predictions: list[str], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({x for x in (*references, *predictions) if x not in index})
    if unknown:
        raise ValueError(f"labels not in the label set {labels}: {unknown}")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    gold = np.fromiter((index[x] for x in references), dtype=np.int64, count=len(references))
    pred = np.fromiter((index[x] for x in predictions), dtype=np.int64, count=len(predictions))
    np.add.at(matrix, (gold, pred), 1)
    return matrix


def _per_class(matrix: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        precision = _safe_div(tp, matrix[:, i].sum())
        recall = _safe_div(tp, matrix[i, :].sum())
        out[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _safe_div(2 * precision * recall, precision + recall),
            "support": int(matrix[i, :].sum()),
        }
    return out


class KhabarClassification(evaluate.Metric):
    __doc__ = _DESCRIPTION + _KWARGS_DESCRIPTION

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        positive_label=None,
        content_label=None,
    ) -> dict:
        if not labels:
            raise ValueError("khabar_classification needs labels=[...] (the model's label order)")
        labels = [str(x) for x in labels]
        matrix = _confusion(list(references), list(predictions), labels)
        per_class = _per_class(matrix, labels)
        seen = [i for i in range(len(labels)) if matrix[i, :].sum() or matrix[:, i].sum()]
        result = {
            "accuracy": _safe_div(np.trace(matrix), matrix.sum()),
            "macro_f1": float(np.mean([per_class[labels[i]]["f1"] for i in seen])) if seen else 0.0,
            "per_class": per_class,
            "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
        }
        if positive_label is not None:
            scores = per_class[positive_label]
            result["furniture_precision"] = scores["precision"]
            result["furniture_recall"] = scores["recall"]
            result["furniture_f1"] = scores["f1"]
        if content_label is not None:
            result["content_recall"] = per_class[content_label]["recall"]
        return result
