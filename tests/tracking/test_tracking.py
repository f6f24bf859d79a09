"""MLflow tracking of ``train``: run contents, model URIs, pyfunc, registry and ``promote``.

Every test writes to its own tmp sqlite store (``mlflow_uri`` fixture).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference.predictors.bundle import load_bundle
from inference.text.furniture import default_rule_dicts
from tests.fit.test_sklearn_train import (
    LABELS,
    make_config,
    make_dataset,
    task_splits,
    topic_examples,
)
from training.fit.train import train
from training.tracking.registry import PromoteError, promote

REPO = Path(__file__).resolve().parents[2]


def _tracked(cfg, tmp_path: Path, run_name: str | None = None):
    cfg.tracking.enabled = True
    cfg.tracking.run_name = run_name
    return cfg


def test_run_contents(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    ds = make_dataset("boilerplate", tmp_path)
    rules = [dict(r) for r in default_rule_dicts()[:3]]  # a dataset config's own rule list
    manifest = {
        "outputs": {"boilerplate": {"content_hash": "cafe1234"}},
        "furniture_rules": rules,
        "normalizer_version": "1",
    }
    (ds.parent / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    cfg = _tracked(make_config("boilerplate", ds), tmp_path, "bp-run")
    result = train(cfg, tmp_path / "bundle")
    client = MlflowClient(mlflow_uri)
    run = client.get_run(result.run_id)

    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "khabar-boilerplate"
    assert exp.artifact_location == (tmp_path / "mlartifacts").as_uri()

    params = run.data.params
    assert params["task"] == "boilerplate" and params["model.C"] == "10.0"
    assert params["data.dataset_dir"] == str(ds) and params["model.char_ngrams"] == "[2, 4]"

    metrics = run.data.metrics
    for key in (
        "test_accuracy",
        "test_macro_f1",
        "test_f1_content",
        "test_f1_boilerplate",
        "test_furniture_f1",
        "test_content_recall",
        "val_macro_f1",
        "val_furniture_f1",
    ):
        assert key in metrics, key
    assert metrics["test_macro_f1"] == pytest.approx(result.metrics["test"]["macro_f1"])
    assert "train_accuracy" not in metrics  # never training-set scores

    tags = run.data.tags
    assert tags["khabar.task"] == "boilerplate" and tags["khabar.model_kind"] == "sklearn"
    assert tags["khabar.dataset_hash"] == "cafe1234" and len(tags["khabar.test_data_hash"]) == 16
    assert tags["khabar.bundle_version"] == result.version
    assert load_bundle(result.bundle_dir).meta["furniture_rules"] == rules
    assert "khabar.lib.scikit-learn" in tags
    if (REPO / ".git").exists():
        assert len(tags.get("git_commit", "")) >= 7

    def names(path):
        return {Path(a.path).name for a in client.list_artifacts(result.run_id, path)}

    assert {
        "confusion_matrix_test.png",
        "classification_report_test.txt",
        "metrics_test.json",
        "confusion_matrix_validation.png",
    } <= names("evaluation")
    assert names("config") == {"train_config.yaml"} and names("dataset") == {"manifest.json"}


def test_model_uris_and_pyfunc_predict_identically(mlflow_uri, tmp_path):
    import mlflow

    ds = make_dataset("topic", tmp_path)
    result = train(
        _tracked(make_config("topic", ds), tmp_path),
        tmp_path / "bundle",
        register="khabar-topic-test",
    )
    assert result.registered == {
        "name": "khabar-topic-test",
        "version": "1",
        "alias": "candidate",
        "uri": "models:/khabar-topic-test@candidate",
    }
    rows = task_splits("topic")["test"]
    expected = load_bundle(result.bundle_dir).predict_proba(rows)
    for ref in (
        f"runs:/{result.run_id}/model",
        "models:/khabar-topic-test@candidate",
        result.model_uri,
    ):
        bundle = load_bundle(ref)
        assert bundle.version == result.version
        np.testing.assert_array_equal(bundle.predict_proba(rows), expected)

    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    out = model.predict(pd.DataFrame(rows))
    assert list(out.columns) == ["label", "score"]
    assert list(out["label"]) == [LABELS["topic"][i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(out["score"], expected.max(axis=1), rtol=1e-6)


def test_pyfunc_handles_boilerplate_feature_lists(mlflow_uri, tmp_path):
    import mlflow

    ds = make_dataset("boilerplate", tmp_path)
    result = train(_tracked(make_config("boilerplate", ds), tmp_path), tmp_path / "bundle")
    rows = task_splits("boilerplate")["test"]
    out = mlflow.pyfunc.load_model(result.model_uri).predict(pd.DataFrame(rows))
    expected, _ = load_bundle(result.bundle_dir).predict(rows)
    assert list(out["label"]) == expected


def _rotated(examples: list[dict]) -> list[dict]:
    """Systematically wrong labels: a model trained on them gets the held-out split wrong."""
    names = LABELS["topic"]
    return [{**ex, "label": names[(names.index(ex["label"]) + 1) % len(names)]} for ex in examples]


def _train_registered(tmp_path: Path, name: str, train_rows: list[dict]) -> dict:
    splits = {**task_splits("topic"), "train": train_rows}
    ds = make_dataset("topic", tmp_path / name, splits)
    result = train(
        _tracked(make_config("topic", ds), tmp_path, name),
        tmp_path / name / "bundle",
        register="khabar-topic",
    )
    return result.metrics["test"]


def test_promote_refuses_worse_and_accepts_better(mlflow_uri, tmp_path, capsys):
    full = topic_examples(8, 1)
    two_class = [ex for ex in full if ex["label"] != "politics"]

    first = _train_registered(tmp_path, "two-class", two_class)
    decision = promote("khabar-topic")
    assert decision["promoted"] and decision["champion"] is None
    assert decision["reason"] == "no champion yet"

    worse = _train_registered(tmp_path, "rotated", _rotated(full))
    decision = promote("khabar-topic")
    print(
        "worse candidate:",
        decision["candidate"]["test_macro_f1"],
        "champion:",
        decision["champion"]["test_macro_f1"],
    )
    assert worse["macro_f1"] < first["macro_f1"]
    assert not decision["promoted"] and decision["champion"]["version"] == "1"
    assert decision["candidate"]["test_macro_f1"] == pytest.approx(worse["macro_f1"])

    better = _train_registered(tmp_path, "full", full)
    decision = promote("khabar-topic")
    print(
        "better candidate:",
        decision["candidate"]["test_macro_f1"],
        "champion:",
        decision["champion"]["test_macro_f1"],
    )
    assert better["macro_f1"] > first["macro_f1"]
    assert decision["promoted"] and decision["candidate"]["version"] == "3"
    assert decision["champion"]["test_macro_f1"] == pytest.approx(first["macro_f1"])
    assert (
        load_bundle("models:/khabar-topic@champion").meta["metrics"]["test"]["macro_f1"]
        == (better["macro_f1"])
    )
    assert promote("khabar-topic")["reason"] == "candidate is already the champion"
    assert "better candidate" in capsys.readouterr().out


def test_promote_refuses_to_compare_different_test_data(mlflow_uri, tmp_path):
    _train_registered(tmp_path, "a", topic_examples(8, 1))
    promote("khabar-topic")
    other = {**task_splits("topic"), "test": topic_examples(4, 99)}
    ds = make_dataset("topic", tmp_path / "b", other)
    train(
        _tracked(make_config("topic", ds), tmp_path),
        tmp_path / "b" / "bundle",
        register="khabar-topic",
    )
    with pytest.raises(PromoteError, match="different test data"):
        promote("khabar-topic")
    # Re-scoring both on one built dataset folder decides it anyway.
    decision = promote("khabar-topic", test_data_ref=str(ds))
    assert decision["basis"] == str(ds) and decision["champion"]["test_macro_f1"] is not None


def test_promote_without_candidate(mlflow_uri):
    with pytest.raises(PromoteError, match="no 'candidate'"):
        promote("khabar-nothing")


def test_transformer_training_is_tracked_per_epoch(mlflow_uri, tmp_path):
    """The transformer branch: per-epoch val_* at step=epoch, bundle loadable from the registry."""
    from mlflow import MlflowClient

    from training.config import TrainConfig
    from training.fit.tiny_bert import build_tiny_bert

    ds = make_dataset("stance", tmp_path)
    texts = [r["target"] + " " + r["text"] for r in task_splits("stance")["train"]]
    cfg = TrainConfig.model_validate(
        {
            "task": "stance",
            "data": {"dataset_dir": str(ds)},
            "model": {
                "kind": "transformer",
                "name_or_path": str(build_tiny_bert(tmp_path / "bert", texts)),
                "max_length": 64,
            },
            "training": {
                "epochs": 2,
                "learning_rate": 0.003,
                "batch_size": 8,
                "early_stopping_patience": None,
            },
        }
    )
    result = train(cfg, tmp_path / "bundle", register="khabar-stance-tiny")
    history = MlflowClient(mlflow_uri).get_metric_history(result.run_id, "val_macro_f1")
    assert sorted(m.step for m in history) == [1, 2, 2]  # two epochs + the final score
    assert [h["epoch"] for h in result.history] == [1, 2]
    bundle = load_bundle("models:/khabar-stance-tiny@candidate")
    assert bundle.meta["kind"] == "transformer" and bundle.version == result.version
    rows = task_splits("stance")["test"]
    np.testing.assert_allclose(
        bundle.predict_proba(rows), load_bundle(result.bundle_dir).predict_proba(rows), rtol=1e-5
    )
