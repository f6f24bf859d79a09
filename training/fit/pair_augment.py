"""Transitive pairs: more claim-pair stance training data from the pairs a claim already has.

Where "agree" means *restates the claim* (ANS: every agree text is a paraphrase of its claim),
stance is transitive through that paraphrase: if A restates claim C and text X has label L toward
C, then X has label L toward A as well — a contradiction of C contradicts its paraphrase, an
unrelated text stays unrelated, two paraphrases of C paraphrase each other. This is the logic-
guided augmentation of Asai & Hajishirzi (2020, "Logic-guided data augmentation and
regularization for consistent question answering") applied within one claim's pairs.

Measured on ANS (BENCHMARKS.md): +615 training pairs, mostly (paraphrase, contradiction); the
sklearn pair model gains (test macro-F1 0.700 -> 0.744), the e5 fine-tune does not (val 0.803 ->
0.799), so only ``stance_ans_sklearn.yaml`` turns it on.

Applied to the training split only (never to validation or test: no metric ever sees an
augmented pair), after ``data.filter`` and ``data.max_train_examples``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from training.config import TransitivePairs

PROVENANCE = "transitive"


def transitive_rows(rows: list[dict], labels: list[str], spec: TransitivePairs) -> list[dict]:
    """New rows derived from ``rows`` ({id, target, text, label id, ...}); the originals excluded.

    For each claim (``target``) and each of its agree rows A: one row (A's text, X's text) for
    every other row X of that claim whose label is ``spec.disagree`` or ``spec.unrelated``, labeled
    as X; and one row per unordered pair of agree rows, labeled agree. Deterministic: claims and
    rows keep their input order. Other columns are copied from X (``provenance`` set to
    "transitive" where the rows have one).
    """
    agree_id = labels.index(spec.agree)
    carried = {labels.index(name) for name in (spec.disagree, spec.unrelated) if name}
    by_claim: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_claim[row["target"]].append(row)
    derived: list[dict] = []
    for claim_rows in by_claim.values():
        agrees = [r for r in claim_rows if r["label"] == agree_id]
        for i, first in enumerate(agrees):
            derived.extend(_pair(first, later) for later in agrees[i + 1 :])
            derived.extend(_pair(first, r) for r in claim_rows if r["label"] in carried)
    return derived


def _pair(first: dict, other: dict) -> dict[str, Any]:
    row = dict(other)
    row["id"] = f"{first['id']}~{other['id']}"
    row["target"] = first["text"]
    if "provenance" in row:
        row["provenance"] = PROVENANCE
    return row


def add_transitive_pairs(split, labels: list[str], spec: TransitivePairs):
    """``split`` (a datasets.Dataset) followed by its transitive rows; the count added."""
    import datasets

    derived = transitive_rows(split.to_list(), labels, spec)
    if not derived:
        return split, 0
    extra = datasets.Dataset.from_list(derived, features=split.features)
    return datasets.concatenate_datasets([split, extra]), len(derived)
