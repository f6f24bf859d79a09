"""``khabar demo`` end to end on the shipped sample corpus: datasets, bundles, MLflow registry,
tagged output, summary; the CLI entry point; the notebook helpers against a real demo store.

The demo runs twice per module (the library call with the tiny transformer, the CLI without). The
tiny transformer is fine-tuned for 1 epoch instead of the config's 6 (the chain is the same, it only
keeps this module within about a minute on two cores). The notebooks themselves run under
``pytest --nbmake notebooks`` in CI.
"""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from pathlib import Path

import datasets
import pytest
from rich.console import Console

import training.demo
from inference.predictors.bundle import load_bundle
from training.tracking.evaluate import split_rows
from training.tracking.runs import list_runs

pytestmark = pytest.mark.slow

OUTPUTS = {"boilerplate", "topic", "stance_claims", "stance_targets"}
MODELS = {"boilerplate": "boilerplate", "topic": "topic", "stance": "stance_claims"}
TAGGED_KEYS = {"id", "boilerplate", "topic", "stance", "models"}
STANCE_TARGET = "الحكومة تدعم الاقتصاد"


def _uri(work: Path) -> str:
    return f"sqlite:///{work / 'mlflow.db'}"


def _sample_articles() -> list[dict]:
    lines = training.demo.sample_path("articles.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@contextmanager
def _isolated_mlflow(uri: str):
    """MLflow pointed at ``uri`` for the block; then MLFLOW_TRACKING_URI and mlflow's global URI
    (run_demo sets both, for good) are put back as they were."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)  # the previous value is restored after
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            yield mp
        finally:
            mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One full demo with the tiny transformer: (work folder, returned summary, console text)."""
    work = tmp_path_factory.mktemp("demo") / "demo"
    out = io.StringIO()
    with _isolated_mlflow(_uri(work)) as mp:
        mp.setenv("KHABAR_DEMO_EPOCHS", "1")  # the config reads it; 1 epoch keeps the test short
        summary = training.demo.run_demo(work, console=Console(file=out, width=200))
    return work, summary, out.getvalue()


@pytest.fixture(scope="module")
def cli_demo(tmp_path_factory):
    """``khabar demo --no-transformer`` through the CLI entry point: (work folder, exit code)."""
    from training.cli import main

    work = tmp_path_factory.mktemp("cli") / "demo"
    with _isolated_mlflow(_uri(work)):
        code = main(["demo", "--workdir", str(work), "--no-transformer"])
    return work, code


# ---------------------------------------------------------------- datasets
def test_manifest_lists_every_output_and_matches_the_saved_datasets(demo):
    work, _, _ = demo
    manifest = json.loads((work / "datasets" / "manifest.json").read_text("utf-8"))
    assert set(manifest["outputs"]) == OUTPUTS
    for name, info in manifest["outputs"].items():
        dd = datasets.load_from_disk(str(work / "datasets" / name))
        assert set(dd) == {"train", "validation", "test"}
        assert sum(len(split) for split in dd.values()) == info["examples"] > 0
        assert dd["train"].features["label"].names == info["labels"]
        assert {p for split in dd.values() for p in split["provenance"]} == {"gold"}


def test_boilerplate_rows_carry_the_sample_hand_labels(demo):
    work, _, _ = demo
    gold = {a["id"]: a["labels"] for a in _sample_articles()}
    dd = datasets.load_from_disk(str(work / "datasets" / "boilerplate"))
    names = dd["train"].features["label"].names
    seen = 0
    for split in dd.values():
        for row in split.select_columns(["article_id", "index", "label"]):
            assert names[row["label"]] == gold[row["article_id"]][row["index"]]
            seen += 1
    # every non-empty paragraph of the articles kept after dedup is one example
    articles = {row for split in dd.values() for row in split["article_id"]}
    assert seen == sum(1 for a in articles for label in gold[a] if label is not None)


# ---------------------------------------------------------------- bundles
def test_bundles_load_and_predict_their_test_split(demo):
    work, summary, _ = demo
    assert set(summary["models"]) == {*MODELS, "boilerplate_transformer"}
    datasets_by_bundle = {**MODELS, "boilerplate_transformer": "boilerplate"}
    for name, dataset in datasets_by_bundle.items():
        bundle = load_bundle(summary["models"][name]["bundle"])
        test = datasets.load_from_disk(str(work / "datasets" / dataset))["test"]
        assert bundle.task == ("stance" if dataset.startswith("stance") else dataset)
        assert bundle.labels == test.features["label"].names
        probs = bundle.predict_proba(split_rows(test, bundle.task))
        assert probs.shape == (len(test), len(bundle.labels))
        assert abs(probs.sum(axis=1) - 1).max() < 1e-4
    transformer = load_bundle(work / "bundles" / "boilerplate_transformer")
    assert transformer.meta["kind"] == "transformer"


# ---------------------------------------------------------------- MLflow
def test_runs_and_champions_in_the_demo_store(demo):
    from mlflow import MlflowClient

    work, summary, _ = demo
    uri = _uri(work)
    assert summary["tracking_uri"] == uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = list_runs(None, tracking_uri=uri)
    assert sorted(runs["task"]) == ["boilerplate", "boilerplate", "stance", "topic"]
    assert sorted(runs["model_kind"]) == ["sklearn"] * 3 + ["transformer"]
    assert "status" not in runs.columns  # every run FINISHED
    for task in MODELS:
        name = f"khabar-demo-{task}"
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert experiment.artifact_location == (work / "mlartifacts").as_uri()
        champion = client.get_model_version_by_alias(name, "champion")
        versions = client.search_model_versions(f"name = '{name}'")
        scores = {
            v.version: client.get_run(v.run_id).data.metrics["test_macro_f1"] for v in versions
        }
        assert scores[champion.version] == max(scores.values())
        assert f"{name}@champion" in runs.set_index("run_id").loc[champion.run_id[:8], "alias"]
    assert len(client.search_model_versions("name = 'khabar-demo-boilerplate'")) == 2


# ---------------------------------------------------------------- tagged output
def test_tagged_has_one_design_record_per_sample_article(demo):
    work, summary, _ = demo
    articles = _sample_articles()
    records = [json.loads(line) for line in (work / "tagged.jsonl").read_text("utf-8").splitlines()]
    assert [r["id"] for r in records] == [a["id"] for a in articles]
    assert summary["tagged"]["records"] == len(articles) and summary["tagged"]["errors"] == 0
    with _isolated_mlflow(_uri(work)):
        champions = {
            task: load_bundle(f"models:/khabar-demo-{task}@champion").version for task in MODELS
        }
    topic_labels = set(load_bundle(work / "bundles" / "topic").labels)
    agree = total = topic_right = 0
    for article, record in zip(articles, records, strict=True):
        assert set(record) == TAGGED_KEYS
        labels = record["boilerplate"]["labels"]
        assert len(labels) == len(article["paragraphs"])
        assert [lab is None for lab in labels] == [not p.strip() for p in article["paragraphs"]]
        assert record["boilerplate"]["removed"] == labels.count("boilerplate")
        assert record["topic"]["label"] in topic_labels and 0 <= record["topic"]["score"] <= 1
        [stance] = record["stance"]
        assert stance["target"] == STANCE_TARGET
        assert stance["label"] in {"agree", "disagree", "other"} and 0 <= stance["score"] <= 1
        assert record["models"] == champions
        agree += sum(p == g for p, g in zip(labels, article["labels"], strict=True) if g)
        total += sum(1 for g in article["labels"] if g)
        topic_right += record["topic"]["label"] == article["label"]
    # the champions saw most of these articles in training: they must get them (nearly) right
    assert agree / total >= 0.9
    assert topic_right / len(articles) >= 0.9


# ---------------------------------------------------------------- summary
def test_summary_file_and_console_name_the_mlflow_ui_command(demo):
    work, summary, console = demo
    saved = json.loads((work / "summary.json").read_text("utf-8"))
    assert saved == summary
    command = f"mlflow ui --backend-store-uri {_uri(work)}"
    assert summary["mlflow_ui"].startswith(command)
    assert command in console
    assert summary["workdir"] == str(work)


def test_printed_runs_command_works_from_another_folder(demo, tmp_path, monkeypatch, capsys):
    import shlex

    from training.cli import main

    work, summary, console = demo
    assert summary["runs"] in console
    monkeypatch.chdir(tmp_path)  # not the demo folder, no mlflow.db here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    capsys.readouterr()
    assert main([*shlex.split(summary["runs"])[1:], "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["task"] for r in rows} == {"boilerplate"} and len(rows) == 2
    assert not (tmp_path / "mlflow.db").exists()
    # an unknown experiment: one line, exit 2, no traceback
    assert main(["runs", "--experiment", "nope", "--tracking-uri", _uri(work)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no MLflow experiment named 'nope'") and "Traceback" not in err


# ---------------------------------------------------------------- CLI
def test_cli_demo_without_transformer(cli_demo):
    work, code = cli_demo
    assert code == 0
    summary = json.loads((work / "summary.json").read_text("utf-8"))
    assert set(summary["models"]) == set(MODELS)
    assert all(info["promoted"] for info in summary["models"].values())
    assert not (work / "tiny-bert").exists()
    assert len((work / "tagged.jsonl").read_text("utf-8").splitlines()) == len(_sample_articles())


# ---------------------------------------------------------------- notebook helpers on a real store
def test_reports_on_the_demo_store(cli_demo):
    from training import reports
    from training.tracking.runs import diff_runs

    work, _ = cli_demo
    assert reports.ensure_demo(work)["workdir"] == str(work)  # exists: not run again
    uri = reports.tracking_uri(work)
    with _isolated_mlflow(uri):
        variant = reports.ensure_variant(work, "stance", "stance-C0.1", ["model.C=0.1"])
        assert reports.ensure_variant(work, "stance", "stance-C0.1", ["model.C=0.1"]) == variant
    stance = list_runs("khabar-demo-stance", tracking_uri=uri)
    assert len(stance) == 2
    assert set(stance.columns) & {"model.C", "tracking.run_name"} == {
        "model.C",
        "tracking.run_name",
    }
    assert "tracking.tracking_uri" not in stance.columns  # the variant logs the demo's URI too
    champion = stance[stance["alias"].fillna("").str.contains("champion")]["run_id"].item()
    metrics = reports.evaluation_metrics(variant, uri)
    matrix = reports.confusion_frame(metrics)
    assert list(matrix.index) == ["agree", "disagree", "other"]
    assert int(matrix.to_numpy().sum()) == metrics["per_class"]["agree"]["support"] + sum(
        metrics["per_class"][k]["support"] for k in ("disagree", "other")
    )
    per_class = reports.per_class_f1(diff_runs(champion, variant, tracking_uri=uri))
    assert list(per_class.index) == ["agree", "disagree", "other"]
    assert per_class.columns[1] == "stance-C0.1"
    png = reports.artifact_file(variant, uri, "evaluation/confusion_matrix_test.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
