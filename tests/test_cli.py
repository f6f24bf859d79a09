"""The khabar CLI end to end through ``training.cli.main`` (no subprocess): exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CFG = REPO / "configs" / "datasets" / "sample.yaml"
TOPIC_CFG = REPO / "configs" / "train" / "sample" / "topic_sklearn.yaml"
SAMPLE_ARTICLES = REPO / "training" / "sample_data" / "articles.jsonl"


def _json_out(capsys) -> dict | list:
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def datasets_dir(tmp_path, capsys) -> Path:
    out = tmp_path / "ds"
    assert main(["build-dataset", "--config", str(SAMPLE_CFG), "--out", str(out)]) == 0
    summary = _json_out(capsys)
    assert summary["reading"]["inputs"]["sample_articles"]["ok"] == 48
    assert summary["reading"]["read"] == summary["reading"]["ok"] + summary["reading"]["rejected"]
    assert set(summary["outputs"]) == {"boilerplate", "topic", "stance_claims", "stance_targets"}
    assert (out / "manifest.json").exists() and (out / "topic" / "dataset_dict.json").exists()
    return out


def test_build_train_register_promote_evaluate_runs(datasets_dir, tmp_path, mlflow_uri, capsys):
    train = ["train", "--config", str(TOPIC_CFG), "--set", f"data.dataset_dir={datasets_dir}/topic"]
    bundle = tmp_path / "bundle"
    assert main([*train, "--out", str(bundle), "--register", "khabar-topic-cli"]) == 0
    result = _json_out(capsys)
    assert result["registered"] and (bundle / "bundle.json").exists()

    assert main(["promote", "khabar-topic-cli"]) == 0
    assert _json_out(capsys)["promoted"] is True
    assert main(["promote", "khabar-topic-cli"]) == 1  # already champion: nothing to do
    capsys.readouterr()

    ref = "models:/khabar-topic-cli@champion"
    assert (
        main(["evaluate", "--model", ref, "--data", str(SAMPLE_ARTICLES), "--task", "topic"]) == 0
    )
    metrics = _json_out(capsys)
    assert metrics["n"] == 48 and 0.0 <= metrics["macro_f1"] <= 1.0

    # a second run with another C, then compare both
    assert main([*train, "--set", "model.C=0.1", "--out", str(tmp_path / "b2")]) == 0
    capsys.readouterr()
    assert main(["runs", "--experiment", "khabar-demo-topic", "--format", "json"]) == 0
    rows = _json_out(capsys)
    assert len(rows) == 2 and {r["model.C"] for r in rows} == {"10.0", "0.1"}
    assert rows[0]["test_macro_f1"] >= rows[1]["test_macro_f1"]  # sorted by the metric
    a, b = (r["run_id"] for r in rows)
    assert main(["runs", "diff", a, b, "--format", "json"]) == 0
    diff = _json_out(capsys)
    assert "model.C" in diff["params"]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["train", "--config", str(TOPIC_CFG), "--set", "model.nope=1"]) == 2
    assert "model.sklearn.nope" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["build-dataset", "--config", str(SAMPLE_CFG), "--set", "split.seed=x"]) == 2
    assert main(["evaluate", "--model", str(tmp_path), "--data", "x", "--task", "topic"]) == 2
    assert main(["no-such-command"]) == 2
