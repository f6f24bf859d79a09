"""``khabar annotate export``: Label Studio tasks with the models' labels as pre-annotations, the
labeling configs (shipped and written), and the option errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from inference.predictors.bundle import load_bundle
from inference.tagger import load_tagger
from training.annotate.label_studio import label_config
from training.cli import main

REPO = Path(__file__).resolve().parents[2]


def export(capsys, *args: str) -> dict:
    assert main(["annotate", "export", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("task", ["boilerplate", "topic", "stance"])
def test_shipped_label_configs_are_the_generated_ones(task):
    shipped = (REPO / "configs" / "label_studio" / f"{task}.xml").read_text("utf-8")
    assert shipped == label_config(task)
    root = ET.fromstring(shipped)
    # Arabic reads right to left
    assert root.tag == "View" and "direction: rtl" in root.get("style")


def test_boilerplate_tasks_carry_the_taggers_labels(
    sample_bundles, articles_jsonl, tmp_path, capsys
):
    out = tmp_path / "review" / "tasks.json"
    bp = str(sample_bundles["boilerplate"])
    report = export(
        capsys, "--model", bp, "--input", str(articles_jsonl), "--task", "boilerplate",
        "--n", "4", "--out", str(out),
    )  # fmt: skip
    tasks = json.loads(out.read_text("utf-8"))
    assert report["tasks"] == len(tasks) == 4 and report["read"] == 12
    version = load_bundle(bp).version
    arts, records = _tag(articles_jsonl, [bp])  # what khabar tag says
    tagged = {a.id: r for a, r in zip(arts, records, strict=True)}
    config = ET.fromstring(Path(report["label_config"]).read_text("utf-8"))
    assert config.find(".//Repeater").get("on") == "$paragraphs"
    for rank, task in enumerate(tasks, start=1):
        data, meta = task["data"], task["data"]["khabar"]
        assert meta["task"] == "boilerplate" and meta["rank"] == rank
        assert meta["input"] == str(articles_jsonl.resolve())
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == version == meta["model_version"]
        labels = tagged[data["id"]]["boilerplate"]["labels"]
        assert [labels[p["index"]] for p in data["paragraphs"]] == meta["predicted"]
        assert all(p["text"].strip() for p in data["paragraphs"])  # empty ones are not shown
        assert [r["from_name"] for r in prediction["result"]] == [
            f"bp_{k}" for k in range(len(data["paragraphs"]))
        ]
        assert [r["value"]["choices"][0] for r in prediction["result"]] == meta["predicted"]
    by_margin = [t["data"]["khabar"] for t in tasks if t["data"]["khabar"]["reason"] == "margin"]
    assert [m["margin"] for m in by_margin] == sorted(m["margin"] for m in by_margin)


def _tag(path: Path, refs: list[str]):
    from inference.engines.readers import iter_articles

    arts = list(iter_articles(path))
    return arts, load_tagger(refs).tag_batch(arts)


def test_topic_tasks_and_a_config_with_the_bundles_labels(
    sample_bundles, articles_jsonl, tmp_path, capsys
):
    out = tmp_path / "topic.json"
    refs = [str(sample_bundles["boilerplate"]), str(sample_bundles["topic"])]
    report = export(
        capsys, "--model", refs[0], "--model", refs[1], "--input", str(articles_jsonl),
        "--task", "topic", "--n", "20", "--out", str(out),
    )  # fmt: skip
    tasks = json.loads(out.read_text("utf-8"))
    assert len(tasks) == 12 == report["tasks"]  # every article, least sure first
    margins = [t["data"]["khabar"]["margin"] for t in tasks]
    assert margins == sorted(margins)
    arts, tagged = _tag(articles_jsonl, refs)
    topic = {a.id: r["topic"]["label"] for a, r in zip(arts, tagged, strict=True)}
    for task in tasks:
        (item,) = task["predictions"][0]["result"]
        assert (item["from_name"], item["to_name"]) == ("topic", "text")
        assert item["value"]["choices"] == [topic[task["data"]["id"]]]
    bundle_labels = load_bundle(refs[1]).labels
    config = Path(report["label_config"]).read_text("utf-8")
    assert config == label_config("topic", bundle_labels)
    assert report["label_config"] == str(tmp_path / "topic.label_config.xml")


def test_stance_tasks_one_per_article_and_target(sample_bundles, articles_jsonl, tmp_path, capsys):
    out = tmp_path / "stance.json"
    export(
        capsys, "--model", str(sample_bundles["stance"]), "--input", str(articles_jsonl),
        "--task", "stance", "--n", "5", "--out", str(out), "--target", "الحكومة", "--target", "الاقتصاد",
    )  # fmt: skip
    tasks = json.loads(out.read_text("utf-8"))
    assert len(tasks) == 5
    assert {t["data"]["claim"] for t in tasks} <= {"الحكومة", "الاقتصاد"}
    assert all(t["predictions"][0]["result"][0]["from_name"] == "stance" for t in tasks)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "weather"], "unknown task 'weather'"),
        (["--task", "topic"], "needs a topic model"),
        (["--task", "boilerplate", "--n", "0"], "--n must be at least 1"),
        (["--task", "boilerplate", "--out", "tasks.csv"], "must be a .json file"),
        (["--task", "stance", "--model", "STANCE"], "no stance target"),
    ],
)
def test_export_option_errors(sample_bundles, articles_jsonl, tmp_path, capsys, args, message):
    args = [str(sample_bundles["stance"]) if a == "STANCE" else a for a in args]
    base = ["--model", str(sample_bundles["boilerplate"]), "--input", str(articles_jsonl)]
    if "--out" not in args:
        base += ["--out", str(tmp_path / "tasks.json")]
    else:
        args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    assert main(["annotate", "export", *base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.glob("tasks*"))
