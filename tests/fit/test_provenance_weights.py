"""``data.provenance_weights``: reviewed examples can outweigh the weak labels they contradict."""

from __future__ import annotations

import pytest

from inference.predictors.bundle import load_bundle
from tests.fit.test_sklearn_train import make_config, make_dataset, topic_examples
from training.config import TrainConfig
from training.fit.train import TrainError, train


def test_reviewed_examples_outweigh_the_weak_ones_they_contradict(tmp_path):
    # One text, five times labeled politics by a rule and once economy by a reviewer.
    base = [dict(r, provenance="gold") for r in topic_examples(6, seed=1)]
    disputed = {**base[0], "id": "disputed"}
    weak = [{**disputed, "id": f"weak-{i}", "label": "politics", "provenance": "url_rule"} for i in range(5)]  # fmt: skip
    review = {**disputed, "id": "review", "label": "economy", "provenance": "review"}
    splits = {"train": base + weak + [review], "validation": topic_examples(2, seed=2)}
    data = make_dataset("topic", tmp_path, splits)

    plain = make_config("topic", data)
    weighted = TrainConfig.model_validate(
        {
            **plain.model_dump(),
            "data": {**plain.data.model_dump(), "provenance_weights": {"review": 50}},
        }  # fmt: skip
    )
    [before], _ = load_bundle(train(plain, tmp_path / "plain").bundle_dir).predict([disputed])
    [after], _ = load_bundle(train(weighted, tmp_path / "weighted").bundle_dir).predict([disputed])
    assert (before, after) == ("politics", "economy")


def test_provenance_weights_need_an_sklearn_model_and_a_provenance_column(tmp_path):
    with pytest.raises(ValueError, match="provenance_weights is for sklearn"):
        TrainConfig.model_validate(
            {
                "task": "topic",
                "data": {"dataset_dir": "x", "provenance_weights": {"review": 5}},
                "model": {"kind": "transformer", "name_or_path": "x"},
            }
        )
    with pytest.raises(ValueError, match="greater than 0"):
        TrainConfig.model_validate(
            {"task": "topic", "data": {"dataset_dir": "x", "provenance_weights": {"review": 0}},
             "model": {"kind": "sklearn"}}
        )  # fmt: skip
    data = make_dataset("topic", tmp_path)  # rows without provenance
    cfg = make_config("topic", data)
    cfg.data.provenance_weights = {"review": 5.0}
    with pytest.raises(TrainError, match="no 'provenance' column"):
        train(cfg, tmp_path / "b")
