"""training.tracking.runs: list, diff and render khabar runs on a tmp sqlite store with known
values."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console

from training.tracking.runs import (
    RunsError,
    diff_runs,
    list_runs,
    metric_key,
    render_runs,
    resolve_run,
)

START = 1_700_000_000_000  # ms; every run starts here, durations come from END_OFFSETS

# name -> (task, model kind, params, metrics, run duration in ms)
TOPIC_COMMON = {"task": "topic", "data.dataset_dir": "out/ds/topic", "training.seed": "13"}
RUNS = {
    "lr-c1": (
        "topic",
        "sklearn",
        {**TOPIC_COMMON, "model.C": "1.0", "model.word_ngrams": "1,2"},
        {
            "test_accuracy": 0.8,
            "test_macro_f1": 0.7,
            "val_macro_f1": 0.72,
            "test_f1_politics": 0.6,
            "test_f1_sports": 0.8,
        },
        12_500,
    ),
    "lr-c4": (
        "topic",
        "sklearn",
        {**TOPIC_COMMON, "model.C": "4.0", "model.word_ngrams": "1,2"},
        {
            "test_accuracy": 0.85,
            "test_macro_f1": 0.75,
            "val_macro_f1": 0.7,
            "test_f1_politics": 0.7,
            "test_f1_sports": 0.8,
        },
        20_000,
    ),
    "lr-c4-tri": (
        "topic",
        "sklearn",
        {**TOPIC_COMMON, "model.C": "4.0", "model.word_ngrams": "1,3"},
        {
            "test_accuracy": 0.9,
            "test_macro_f1": 0.65,
            "val_macro_f1": 0.78,
            "test_f1_politics": 0.5,
            "test_f1_sports": 0.8,
        },
        7_000,
    ),
    "bp-gbm": (
        "boilerplate",
        "sklearn",
        {"task": "boilerplate", "data.dataset_dir": "out/ds/boilerplate", "training.seed": "13"},
        {
            "test_accuracy": 0.95,
            "test_macro_f1": 0.9,
            "test_furniture_f1": 0.88,
            "test_content_recall": 0.97,
        },
        3_000,
    ),
}


def _experiment(client: MlflowClient, task: str, tmp_path) -> str:
    name = f"khabar-{task}"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=(tmp_path / "art" / task).as_uri())


def _log_run(client: MlflowClient, tmp_path, name: str, spec: tuple) -> str:
    task, kind, params, metrics, duration = spec
    tags = {"khabar.task": task, "khabar.model_kind": kind, "git_commit": "abc1234"}
    run = client.create_run(
        _experiment(client, task, tmp_path), start_time=START, tags=tags, run_name=name
    )
    run_id = run.info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, timestamp=START)
    client.set_terminated(run_id, end_time=START + duration)
    return run_id


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """An empty store and one with RUNS, as sqlite files to copy (the schema is the slow part)."""
    root = tmp_path_factory.mktemp("templates")
    MlflowClient(f"sqlite:///{root / 'empty.db'}").search_experiments()  # creates the schema
    shutil.copyfile(root / "empty.db", root / "runs.db")
    client = MlflowClient(f"sqlite:///{root / 'runs.db'}")
    ids = {name: _log_run(client, root, name, spec) for name, spec in RUNS.items()}
    return root / "empty.db", root / "runs.db", ids


@pytest.fixture()
def empty_store(mlflow_uri, tmp_path, templates) -> str:
    """A store with no khabar experiment, at ``mlflow_uri``."""
    shutil.copyfile(templates[0], tmp_path / "mlflow.db")
    return mlflow_uri


@pytest.fixture()
def store(mlflow_uri, tmp_path, templates) -> dict[str, str]:
    """This test's own copy of the store with RUNS, at ``mlflow_uri``; ``{name: run_id}``."""
    shutil.copyfile(templates[1], tmp_path / "mlflow.db")
    return templates[2]


def _short(ids: dict[str, str], *names: str) -> list[str]:
    return [ids[name][:8] for name in names]


def _text(fmt: str, df, **console_kwargs) -> str:
    buffer = io.StringIO()
    render_runs(df, fmt, Console(file=buffer, width=250, **console_kwargs))
    return buffer.getvalue()


# ---------------------------------------------------------------- list_runs
def test_list_runs_shows_only_differing_params_sorted_by_metric(store):
    df = list_runs("khabar-topic")
    assert list(df.columns) == [
        "run_id",
        "name",
        "task",
        "model_kind",
        "alias",
        "test_accuracy",
        "test_macro_f1",
        "duration_s",
        "model.C",
        "model.word_ngrams",
    ]
    assert list(df["name"]) == ["lr-c4", "lr-c1", "lr-c4-tri"]
    assert list(df["run_id"]) == _short(store, "lr-c4", "lr-c1", "lr-c4-tri")
    assert list(df["test_macro_f1"]) == [0.75, 0.7, 0.65]
    assert list(df["model.C"]) == ["4.0", "1.0", "4.0"]
    assert list(df["model.word_ngrams"]) == ["1,2", "1,2", "1,3"]
    assert list(df["duration_s"]) == [20.0, 12.5, 7.0]
    assert set(df["task"]) == {"topic"} and set(df["model_kind"]) == {"sklearn"}
    assert df.attrs["metric"] == "test_macro_f1"


@pytest.mark.parametrize(
    ("metric", "order"),
    [
        ("macro_f1", ["lr-c4", "lr-c1", "lr-c4-tri"]),
        ("test_macro_f1", ["lr-c4", "lr-c1", "lr-c4-tri"]),
        ("accuracy", ["lr-c4-tri", "lr-c4", "lr-c1"]),
        ("val_macro_f1", ["lr-c4-tri", "lr-c1", "lr-c4"]),
    ],
)
def test_list_runs_sorts_by_the_chosen_metric(store, metric, order):
    df = list_runs("topic", metric=metric)  # "topic" is short for "khabar-topic"
    assert list(df["name"]) == order
    if metric == "val_macro_f1":
        assert "val_macro_f1" in df.columns


def test_metric_spellings():
    assert metric_key("macro_f1") == "test_macro_f1"
    assert metric_key("test_macro_f1") == "test_macro_f1"
    assert metric_key("metrics.val_macro_f1") == "val_macro_f1"


def test_all_khabar_experiments_and_boilerplate_metrics(store, mlflow_uri):
    MlflowClient(mlflow_uri).create_experiment("other-project")
    df = list_runs(None)
    assert list(df["name"]) == ["bp-gbm", "lr-c4", "lr-c1", "lr-c4-tri"]
    assert list(df.columns[5:9]) == [
        "test_accuracy",
        "test_macro_f1",
        "test_furniture_f1",
        "test_content_recall",
    ]
    bp = df.iloc[0]
    assert (bp["task"], bp["test_furniture_f1"], bp["test_content_recall"]) == (
        "boilerplate",
        0.88,
        0.97,
    )
    # dataset dir and task now differ (topic vs boilerplate); the seed is still constant.
    # The "task" param would clash with the task column: it is shown as "params.task".
    assert list(df.columns[9:]) == [
        "duration_s",
        "data.dataset_dir",
        "model.C",
        "model.word_ngrams",
        "params.task",
    ]
    assert list(df["params.task"]) == ["boilerplate", "topic", "topic", "topic"]
    assert pd.isna(bp["model.C"])


def test_all_params_and_tracking_uri_argument(store, mlflow_uri, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    df = list_runs("khabar-topic", tracking_uri=mlflow_uri, all_params=True)
    assert not elsewhere.exists()  # the argument wins over the environment
    assert list(df.columns[-5:]) == [
        "data.dataset_dir",
        "model.C",
        "model.word_ngrams",
        "params.task",
        "training.seed",
    ]
    assert set(df["training.seed"]) == {"13"}


def test_alias_column(store, mlflow_uri):
    client = MlflowClient(mlflow_uri)
    client.create_registered_model("khabar-topic")
    for name in ("lr-c1", "lr-c4"):
        run = client.get_run(store[name])
        client.create_model_version(
            "khabar-topic", f"{run.info.artifact_uri}/model", run_id=store[name]
        )
    client.set_registered_model_alias("khabar-topic", "champion", "2")  # lr-c4
    client.set_registered_model_alias("khabar-topic", "candidate", "2")
    df = list_runs("khabar-topic").set_index("name")
    assert df.loc["lr-c4", "alias"] == "khabar-topic@candidate, khabar-topic@champion"
    assert pd.isna(df.loc["lr-c1", "alias"])  # registered, but no alias
    assert pd.isna(df.loc["lr-c4-tri", "alias"])


def test_unknown_experiment_and_metric(store):
    with pytest.raises(RunsError, match="no MLflow experiment named 'nope'.*khabar-topic"):
        list_runs("nope")
    with pytest.raises(RunsError, match="no run has metric 'test_bleu'"):
        list_runs("topic", metric="bleu")


def test_empty_store(empty_store):
    df = list_runs(None)
    assert df.empty
    assert _text("table", df) == "no runs found\n"


# ---------------------------------------------------------------- rendering
def test_csv_output(store):
    df = list_runs("khabar-topic")
    c4, c1, tri = _short(store, "lr-c4", "lr-c1", "lr-c4-tri")
    assert _text("csv", df) == (
        "run_id,name,task,model_kind,alias,test_accuracy,test_macro_f1,duration_s,"
        "model.C,model.word_ngrams\n"
        f'{c4},lr-c4,topic,sklearn,,0.85,0.75,20.0,4.0,"1,2"\n'
        f'{c1},lr-c1,topic,sklearn,,0.8,0.7,12.5,1.0,"1,2"\n'
        f'{tri},lr-c4-tri,topic,sklearn,,0.9,0.65,7.0,4.0,"1,3"\n'
    )
    assert _text("auto", df) == _text("csv", df)  # not a terminal: CSV


def test_json_output(store):
    rows = json.loads(_text("json", list_runs("khabar-topic", metric="val_macro_f1")))
    assert rows[0] == {
        "run_id": store["lr-c4-tri"][:8],
        "name": "lr-c4-tri",
        "task": "topic",
        "model_kind": "sklearn",
        "alias": None,
        "test_accuracy": 0.9,
        "test_macro_f1": 0.65,
        "val_macro_f1": 0.78,
        "duration_s": 7.0,
        "model.C": "4.0",
        "model.word_ngrams": "1,3",
    }
    assert [row["name"] for row in rows] == ["lr-c4-tri", "lr-c1", "lr-c4"]


def test_table_output_on_a_terminal(store):
    text = _text("auto", list_runs("khabar-topic"), force_terminal=True, color_system=None)
    assert "best test_macro_f1 first" in text
    assert "┃ run_id" in text and "model.word_ngrams" in text
    lines = [line for line in text.splitlines() if "lr-c" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["lr-c4", "lr-c1", "lr-c4-tri"]
    assert "0.7500" in lines[0] and "20.0" in lines[0]
    with pytest.raises(RunsError, match="unknown format 'xml'"):
        _text("xml", list_runs("khabar-topic"))


# ---------------------------------------------------------------- diff_runs
def test_diff_runs_per_class_deltas(store):
    diff = diff_runs(store["lr-c1"], store["lr-c4"])
    assert diff["a"]["name"] == "lr-c1" and diff["b"]["run_id"] == store["lr-c4"]
    assert diff["a"]["experiment"] == "khabar-topic" and diff["b"]["model_kind"] == "sklearn"
    assert diff["params"] == {"model.C": {"a": "1.0", "b": "4.0"}}
    assert diff["per_class_f1"] == {
        "politics": {"a": 0.6, "b": 0.7, "delta": 0.1},
        "sports": {"a": 0.8, "b": 0.8, "delta": 0.0},
    }
    assert diff["metrics"] == {
        "test_accuracy": {"a": 0.8, "b": 0.85, "delta": 0.05},
        "test_macro_f1": {"a": 0.7, "b": 0.75, "delta": 0.05},
        "val_macro_f1": {"a": 0.72, "b": 0.7, "delta": -0.02},
    }
    everything = diff_runs(store["lr-c1"], store["lr-c4"], all_params=True)["params"]
    assert sorted(everything) == [
        "data.dataset_dir",
        "model.C",
        "model.word_ngrams",
        "task",
        "training.seed",
    ]


def test_diff_across_tasks_missing_sides(store):
    diff = diff_runs("lr-c4", "bp-gbm")
    assert diff["metrics"]["test_furniture_f1"] == {"a": None, "b": 0.88, "delta": None}
    assert diff["per_class_f1"]["politics"] == {"a": 0.7, "b": None, "delta": None}
    assert diff["params"]["model.C"] == {"a": "4.0", "b": None}
    assert diff["params"]["task"] == {"a": "topic", "b": "boilerplate"}


def test_resolve_by_prefix_and_name(store):
    c4 = store["lr-c4"]
    assert resolve_run(c4).info.run_id == c4
    assert resolve_run(c4[:10]).info.run_id == c4
    assert resolve_run("lr-c4-tri").info.run_id == store["lr-c4-tri"]
    diff = diff_runs(store["lr-c1"][:8], "lr-c4")
    assert (diff["a"]["run_id"], diff["b"]["run_id"]) == (store["lr-c1"], c4)


def test_unknown_and_ambiguous_runs(store, mlflow_uri, tmp_path):
    with pytest.raises(RunsError, match="no MLflow run matches 'zzz-no-such-run'"):
        diff_runs("zzz-no-such-run", "lr-c1")
    with pytest.raises(RunsError, match="no MLflow run matches"):
        resolve_run("0" * 32 + "x")
    _log_run(MlflowClient(mlflow_uri), tmp_path, "lr-c1", RUNS["lr-c1"])
    with pytest.raises(RunsError, match="'lr-c1' is ambiguous: it matches 2 runs"):
        diff_runs("lr-c1", "lr-c4")
