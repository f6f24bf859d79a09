"""``training.tracking.metrics``: exact values on hand-computed examples, via the local evaluate
module."""

from __future__ import annotations

import json
import random

import pytest

from training.tracking.metrics import METRIC_DIR, compute_metrics, flat_scores

C, B = "content", "boilerplate"


def test_boilerplate_hand_computed():
    # gold content x5: 4 kept, 1 flagged; gold boilerplate x3: 1 flagged, 2 missed.
    y_true = [C, C, C, C, C, B, B, B]
    y_pred = [C, C, C, C, B, B, C, C]
    m = compute_metrics("boilerplate", y_true, y_pred, [C, B])
    assert m["confusion_matrix"] == {"labels": [C, B], "matrix": [[4, 1], [2, 1]]}
    assert m["accuracy"] == pytest.approx(5 / 8)
    # content: P = 4/6, R = 4/5, F1 = 8/11; boilerplate: P = 1/2, R = 1/3, F1 = 2/5
    assert m["per_class"][C] == pytest.approx(
        {"precision": 2 / 3, "recall": 0.8, "f1": 8 / 11, "support": 5}
    )
    assert m["per_class"][B] == pytest.approx(
        {"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "support": 3}
    )
    assert m["macro_f1"] == pytest.approx((8 / 11 + 0.4) / 2)
    assert m["furniture_precision"] == pytest.approx(0.5)
    assert m["furniture_recall"] == pytest.approx(1 / 3)
    assert m["furniture_f1"] == pytest.approx(0.4)
    assert m["content_recall"] == pytest.approx(0.8)
    json.dumps(m)  # JSON-able as returned


def test_topic_macro_f1_skips_labels_absent_from_gold_and_predictions():
    m = compute_metrics("topic", ["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b", "c"])
    # a: P 1, R 1/2, F1 2/3; b: P 2/3, R 1, F1 4/5; c never occurs: no defined F1.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert "furniture_f1" not in m and "content_recall" not in m


def test_agrees_with_sklearn_on_random_labels():
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    rng = random.Random(0)
    labels = ["agree", "disagree", "other"]
    y_true = [rng.choice(labels) for _ in range(200)]
    y_pred = [rng.choice(labels) for _ in range(200)]
    m = compute_metrics("stance", y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels)
    for i, label in enumerate(labels):
        assert m["per_class"][label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match=r"\['x'\]"):
        compute_metrics("topic", ["a", "x"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="2 labels, y_pred 1"):
        compute_metrics("topic", ["a", "b"], ["a"], ["a", "b"])
    with pytest.raises(ValueError, match="need labels"):
        compute_metrics("boilerplate", ["a"], ["a"], ["a", "b"])


def test_flat_scores_are_mlflow_metric_names():
    m = compute_metrics("boilerplate", [C, B], [C, C], [C, B])
    flat = flat_scores(m, "test_")
    assert flat["test_f1_content"] == pytest.approx(2 / 3) and flat["test_f1_boilerplate"] == 0.0
    assert {"test_accuracy", "test_macro_f1", "test_furniture_f1", "test_content_recall"} <= set(
        flat
    )
    assert all(isinstance(v, float) for v in flat.values())


def test_metric_module_ships_as_package_data():
    # pyproject: package-data training = ["metrics/*/*.py"]; evaluate.load needs <dir>/<dir>.py.
    assert (METRIC_DIR / f"{METRIC_DIR.name}.py").is_file()
    assert METRIC_DIR.parent.name == "metrics" and (METRIC_DIR.parent / "__init__.py").is_file()
