"""``data.transitive_pairs``: stance pairs derived through a claim's paraphrases, train split only."""

from __future__ import annotations

import pytest

from inference.text.preprocess import stance_row
from tests.fit.test_sklearn_train import make_config, make_dataset, stance_examples
from training.config import ConfigError, TransitivePairs, load_train_config
from training.fit.pair_augment import transitive_rows
from training.fit.train import TrainError, load_training_data

LABELS = ["agree", "disagree", "other"]
ANS_LIKE = TransitivePairs(agree="agree", disagree="disagree", unrelated="other")

CLAIM = "ارتفاع أسعار الذهب اليوم"
CLAIM_ROWS = [
    ("a1", "agree", "أسعار الذهب ترتفع اليوم"),
    ("d1", "disagree", "انخفاض أسعار الذهب اليوم"),
    ("a2", "agree", "الذهب يسجل ارتفاعا في أسعاره"),
    ("o1", "other", "افتتاح معرض للكتاب في العاصمة"),
]


def _rows() -> list[dict]:
    rows = [
        {**stance_row(rid, CLAIM, text), "label": LABELS.index(label), "provenance": "gold"}
        for rid, label, text in CLAIM_ROWS
    ]
    # A claim without any agree pair gives nothing: there is no paraphrase to pivot through.
    rows.append(
        {**stance_row("d9", "هطول أمطار غزيرة", "لا أمطار"), "label": 1, "provenance": "gold"}
    )
    return rows


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in rows}


def test_pairs_follow_by_transitivity_through_each_paraphrase():
    rows = _rows()
    text = {r["id"]: r["text"] for r in rows}
    derived = _by_id(transitive_rows(rows, LABELS, ANS_LIKE))
    assert {k: LABELS[r["label"]] for k, r in derived.items()} == {
        "a1~a2": "agree",
        "a1~d1": "disagree",
        "a1~o1": "other",
        "a2~d1": "disagree",
        "a2~o1": "other",
    }
    for key, row in derived.items():
        first, second = key.split("~")
        assert (row["target"], row["text"]) == (text[first], text[second])
        assert row["provenance"] == "transitive"


def test_derived_pair_is_the_row_the_tagger_builds_for_those_two_sentences():
    # Rows hold normalized text; normalizing again must change nothing (no train/serve skew).
    derived = _by_id(transitive_rows(_rows(), LABELS, ANS_LIKE))["a1~d1"]
    served = stance_row("x", derived["target"], derived["text"])
    assert (served["target"], served["text"]) == (derived["target"], derived["text"])


def test_only_the_named_labels_are_carried():
    spec = TransitivePairs(agree="agree", disagree="disagree")  # no unrelated label
    derived = transitive_rows(_rows(), LABELS, spec)
    assert sorted(r["id"] for r in derived) == ["a1~a2", "a1~d1", "a2~d1"]


def test_training_split_grows_and_held_out_splits_do_not(tmp_path):
    train_rows = stance_examples(1)  # per claim one agree, one disagree, one other pair
    splits = {"train": train_rows, "validation": stance_examples(2), "test": stance_examples(3)}
    path = make_dataset("stance", tmp_path, splits)
    plain = load_training_data(make_config("stance", path))
    cfg = make_config("stance", path)
    cfg.data.transitive_pairs = ANS_LIKE
    augmented = load_training_data(cfg)
    train = augmented.splits["train"]
    n_claims = len({r["target"] for r in train_rows})
    assert len(train) == len(train_rows) + 2 * n_claims  # (agree, disagree) and (agree, other)
    derived = [r for r in train if "~" in r["id"]]
    assert (
        sorted(LABELS[r["label"]] for r in derived)
        == ["disagree"] * n_claims + ["other"] * n_claims
    )
    for name in ("validation", "test"):
        assert augmented.splits[name]["id"] == plain.splits[name]["id"]
    assert augmented.test_hash == plain.test_hash


def test_unknown_label_is_named(tmp_path):
    cfg = make_config("stance", make_dataset("stance", tmp_path))
    cfg.data.transitive_pairs = TransitivePairs(agree="agree", disagree="refute")
    with pytest.raises(TrainError, match=r"data\.transitive_pairs\.disagree: label 'refute'"):
        load_training_data(cfg)


def test_refused_outside_stance(tmp_path):
    config = tmp_path / "topic.yaml"
    config.write_text(
        "task: topic\ndata: {dataset_dir: x}\nmodel: {kind: sklearn}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="data.transitive_pairs is for stance"):
        load_train_config(config, ["data.transitive_pairs={agree: agree}"])
