"""training.reports (the notebooks' helpers) on small known inputs, and the notebooks' committed form.

The helpers that read a real MLflow store (``evaluation_metrics``, ``ensure_variant``) are checked in
``tests/test_demo.py`` against a demo run.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import datasets
import nbformat
import pandas as pd
import pytest
from matplotlib.figure import Figure

from training import reports

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

MANIFEST = {
    "outputs": {
        "boilerplate": {
            "task": "boilerplate",
            "splits": {
                "train": {"label": {"boilerplate": 5, "content": 7}},
                "test": {"label": {"boilerplate": 1, "content": 2}},
            },
            "provenance_by_label": {
                "boilerplate": {"rule:copyright": 2, "repetition": 4},
                "content": {"content:long": 9},
            },
        },
        "topic": {
            "task": "topic",
            "splits": {"train": {"label": {"sports": 3}}, "validation": {"label": {"sports": 1}}},
            "provenance_by_label": {"sports": {"gold": 4}},
        },
    }
}


# ---------------------------------------------------------------- the demo folder
def test_demo_dir_from_env_else_repo(monkeypatch, tmp_path):
    monkeypatch.setenv(reports.DEMO_DIR_ENV, str(tmp_path / "x" / ".." / "demo"))
    assert reports.demo_dir() == (tmp_path / "demo").resolve()
    monkeypatch.delenv(reports.DEMO_DIR_ENV)
    assert reports.demo_dir() == REPO / "khabar-demo"


def test_ensure_demo_runs_only_without_summary(monkeypatch, tmp_path):
    import training.demo

    calls = []

    def fake_run_demo(path, with_transformer=True):
        calls.append((path, with_transformer))
        return {"ran": True}

    monkeypatch.setattr(training.demo, "run_demo", fake_run_demo)
    work = tmp_path / "demo"
    assert reports.ensure_demo(work) == {"ran": True}
    assert calls == [(work, False)]
    work.mkdir()
    (work / "summary.json").write_text(json.dumps({"workdir": str(work)}), "utf-8")
    assert reports.ensure_demo(work) == {"workdir": str(work)}
    assert len(calls) == 1


def test_tracking_uri_is_absolute_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert reports.tracking_uri(Path("demo")) == f"sqlite:///{tmp_path.resolve()}/demo/mlflow.db"


def test_env_sets_and_restores(monkeypatch):
    monkeypatch.setenv("KHABAR_T_SET", "before")
    monkeypatch.delenv("KHABAR_T_UNSET", raising=False)
    with reports._env(KHABAR_T_SET="during", KHABAR_T_UNSET="during"):
        assert os.environ["KHABAR_T_SET"] == os.environ["KHABAR_T_UNSET"] == "during"
    assert os.environ["KHABAR_T_SET"] == "before"
    assert "KHABAR_T_UNSET" not in os.environ


# ---------------------------------------------------------------- manifest tables
def test_label_counts_flattens_every_split_and_label():
    counts = reports.label_counts(MANIFEST)
    assert list(counts.columns) == ["output", "task", "split", "label", "examples"]
    assert len(counts) == 6
    by_key = counts.set_index(["output", "split", "label"])["examples"]
    assert by_key[("boilerplate", "test", "content")] == 2
    assert by_key[("topic", "validation", "sports")] == 1
    assert counts.groupby("output")["examples"].sum().to_dict() == {"boilerplate": 15, "topic": 4}


def test_provenance_counts_biggest_first_per_label():
    prov = reports.provenance_counts(MANIFEST)
    assert list(prov.columns) == ["output", "label", "provenance", "examples"]
    furniture = prov[(prov["output"] == "boilerplate") & (prov["label"] == "boilerplate")]
    assert list(furniture["provenance"]) == ["repetition", "rule:copyright"]
    assert prov["examples"].sum() == 19
    assert reports.provenance_counts({"outputs": {"x": {"task": "topic"}}}).empty


def test_plot_label_counts_one_axis_per_output():
    fig = reports.plot_label_counts(reports.label_counts(MANIFEST))
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["boilerplate", "topic"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "validation", "test"]
    fig.savefig(os.devnull, format="png")  # renders without a display


# ---------------------------------------------------------------- dataset rows
def _boilerplate_dd(rows_by_split: dict[str, list[tuple]]) -> datasets.DatasetDict:
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "source": datasets.Value("string"),
            "text": datasets.Value("string"),
            "rule": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["content", "boilerplate"]),
            "provenance": datasets.Value("string"),
            "features": datasets.Sequence(datasets.Value("float64")),
        }
    )
    columns = ["id", "source", "text", "rule", "label", "provenance"]
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(
                [{**dict(zip(columns, row, strict=True)), "features": [0.0]} for row in rows],
                features=features,
            )
            for split, rows in rows_by_split.items()
        }
    )


GOLD_ROWS = {
    "train": [
        ("a#0", "s1", "الرئيسية", "breadcrumb", 1, "gold"),
        ("a#1", "s1", "story one", None, 0, "gold"),
        ("a#2", "s1", "© s1", "copyright", 1, "gold"),
        ("b#0", "s2", "تابعونا", None, 1, "gold"),
    ],
    "test": [("b#1", "s2", "story two", None, 0, "gold")],
}
WEAK_ROWS = {
    "train": [
        ("a#0", "s1", "الرئيسية", "breadcrumb", 1, "rule:breadcrumb"),
        ("a#1", "s1", "story one", None, 0, "content:long"),
        ("a#2", "s1", "© s1", "copyright", 1, "rule:copyright"),
        # b#0 abstained; b#1 mislabeled
    ],
    "test": [("b#1", "s2", "story two", None, 1, "repetition")],
}


def test_dataset_frame_names_labels_and_keeps_splits():
    frame = reports.dataset_frame(_boilerplate_dd(GOLD_ROWS))
    assert list(frame["split"]) == ["train"] * 4 + ["test"]
    assert list(frame["label"]) == [
        "boilerplate",
        "content",
        "boilerplate",
        "boilerplate",
        "content",
    ]
    assert "features" not in frame.columns  # not in FRAME_COLUMNS
    assert list(frame.columns) == ["split", "id", "source", "text", "rule", "label", "provenance"]


def test_weak_vs_gold_marks_abstain_and_disagreement():
    gold = reports.dataset_frame(_boilerplate_dd(GOLD_ROWS))
    weak = reports.dataset_frame(_boilerplate_dd(WEAK_ROWS))
    rows = reports.weak_vs_gold(gold, weak).set_index("id")
    assert list(rows.columns) == ["split", "source", "text", "rule", "gold", "weak", "provenance"]
    assert len(rows) == 5
    assert rows.loc["b#0", ["gold", "weak", "provenance"]].tolist() == [
        "boilerplate",
        "abstain",
        "abstain",
    ]
    assert rows.loc["b#1", ["gold", "weak", "provenance"]].tolist() == [
        "content",
        "boilerplate",
        "repetition",
    ]
    assert (rows["gold"] == rows["weak"]).sum() == 3


def test_furniture_examples_per_source_distinct_provenance_first():
    frame = pd.DataFrame(
        {
            "source": ["s1"] * 5 + ["s2"] * 2,
            "gold": ["boilerplate"] * 4 + ["content", "boilerplate", "content"],
            "provenance": ["rule:a", "rule:a", "rule:a", "repetition", "content:long"]
            + ["related_block", "content:long"],
            "text": [f"p{i}" for i in range(7)],
        }
    )
    picked = reports.furniture_examples(frame, per_source=2)
    assert (picked["gold"] == "boilerplate").all()
    assert picked.groupby("source").size().to_dict() == {"s1": 2, "s2": 1}
    assert sorted(picked[picked["source"] == "s1"]["provenance"]) == ["repetition", "rule:a"]
    three = reports.furniture_examples(frame, per_source=3)
    assert sorted(three[three["source"] == "s1"]["text"]) == ["p0", "p1", "p3"]


def test_build_weak_sample_labels_without_gold(tmp_path):
    manifest = reports.build_weak_sample(tmp_path / "weak")
    assert (tmp_path / "weak" / "manifest.json").is_file()
    assert manifest["config"]["boilerplate"]["weak"]["use_gold"] is False
    prov = reports.provenance_counts(manifest)
    boiler = prov[prov["output"] == "boilerplate"]
    assert "gold" not in set(boiler["provenance"])
    assert any(p.startswith("rule:") for p in boiler["provenance"])
    assert boiler["examples"].sum() == manifest["outputs"]["boilerplate"]["examples"]


# ---------------------------------------------------------------- runs
METRICS = {
    "confusion_matrix": {
        "labels": ["agree", "disagree", "other"],
        "matrix": [[2, 1, 0], [0, 3, 1], [0, 0, 2]],
    }
}


def test_confusion_frame_gold_down_predicted_across():
    frame = reports.confusion_frame(METRICS)
    assert frame.index.name == "gold" and frame.columns.name == "predicted"
    assert frame.loc["agree", "disagree"] == 1
    assert frame.loc["disagree", "other"] == 1
    assert int(frame.to_numpy().trace()) == 7


def test_plot_confusions_annotates_every_cell():
    frame = reports.confusion_frame(METRICS)
    fig = reports.plot_confusions({"champion": frame, "variant": frame})
    assert [ax.get_title() for ax in fig.axes] == ["champion", "variant"]
    assert [t.get_text() for t in fig.axes[0].texts] == [
        "2",
        "1",
        "0",
        "0",
        "3",
        "1",
        "0",
        "0",
        "2",
    ]
    fig.savefig(os.devnull, format="png")


def test_per_class_f1_uses_run_names():
    diff = {
        "a": {"name": "champ"},
        "b": {"name": "variant"},
        "per_class_f1": {
            "agree": {"a": 0.5, "b": 0.75, "delta": 0.25},
            "other": {"a": 0.8, "b": None, "delta": None},
        },
    }
    frame = reports.per_class_f1(diff)
    assert list(frame.columns) == ["champ", "variant", "delta"]
    assert frame.index.name == "label"
    assert frame.loc["agree"].tolist() == [0.5, 0.75, 0.25]
    assert pd.isna(frame.loc["other", "delta"])
    same = {**diff, "b": {"name": "champ"}}
    assert list(reports.per_class_f1(same).columns) == ["a", "b", "delta"]


# ---------------------------------------------------------------- the notebooks as committed
def test_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_datasets.ipynb", "02_experiments.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_stripped_and_parses(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, "commit notebooks stripped"
        ast.parse(cell.source)
    setup = code[0].source
    assert "reports.demo_dir()" in setup and "reports.ensure_demo(" in setup
