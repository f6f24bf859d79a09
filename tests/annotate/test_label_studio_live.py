"""The whole review round against a real Label Studio server: export -> Label Studio project with the
shipped config (label-studio-sdk) -> reviewers' annotations through the API -> Label Studio's JSON
export -> khabar annotate import -> build-dataset -> train.

Skipped, with the reason, only where Label Studio is not installed (``make setup`` installs it in
``.venv-ls``; ``KHABAR_LABEL_STUDIO`` may name another ``label-studio`` executable).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from datasets import load_from_disk

from tests.annotate.helpers import choices_result
from tests.annotate.label_studio_server import find_label_studio, label_studio
from training.annotate.label_studio import label_config
from training.cli import main

DRIVER = Path(__file__).with_name("ls_driver.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def label_studio_exe() -> Path:
    exe, why = find_label_studio()
    if exe is None:
        pytest.skip(why)
    return exe


def run(capsys, *args: str) -> dict:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


def build_config(tmp_path: Path, corpus: Path, annotations: list[str]) -> Path:
    return write_yaml(
        tmp_path / f"dataset{len(annotations)}.yaml",
        {
            "inputs": [{"name": "news", "path": str(corpus), "tasks": ["boilerplate"]}],
            "topic": {"enabled": False},
            "boilerplate": {"annotations": annotations},
            "split": {"fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}},
            "base_dir": str(tmp_path),
        },
    )


def train_config(tmp_path: Path, dataset: Path) -> Path:
    return write_yaml(
        tmp_path / f"train_{dataset.parent.name}.yaml",
        {
            "task": "boilerplate",
            "data": {"dataset_dir": str(dataset)},
            "model": {"kind": "sklearn", "min_df": 1, "calibrate": False, "C": 10.0},
            "tracking": {"enabled": False},
        },
    )


def test_review_round_through_label_studio(
    label_studio_exe, sample_bundles, fixture_articles, tmp_path, capsys
):
    # The corpus as scraped: no gold labels, so the builder's labels are weak ones.
    gold = {a["id"]: a["labels"] for a in fixture_articles}
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({k: v for k, v in a.items() if k != "labels"}, ensure_ascii=False) + "\n"
            for a in fixture_articles
        ),
        "utf-8",
    )
    # 1. the 4 articles the boilerplate model is least sure of, as Label Studio tasks
    tasks_file = tmp_path / "review" / "tasks.json"
    bp = str(sample_bundles["boilerplate"])
    exported = run(
        capsys, "annotate", "export", "--model", bp, "--input", str(corpus),
        "--task", "boilerplate", "--n", "4", "--out", str(tasks_file),
    )  # fmt: skip
    tasks = json.loads(tasks_file.read_text("utf-8"))
    config = Path(exported["label_config"]).read_text("utf-8")
    assert config == label_config("boilerplate")  # the shipped configs/label_studio/boilerplate.xml

    # 2. reviewers in Label Studio: two give the gold labels, a third disagrees on one paragraph
    #    of the first task; everyone skips the last task.
    def gold_of(task):
        return [gold[task["data"]["id"]][p["index"]] for p in task["data"]["paragraphs"]]

    reviews = {}
    for i, task in enumerate(tasks[:-1]):
        labels = gold_of(task)
        reviews[task["data"]["id"]] = [
            {"annotator": who, "result": choices_result(task, labels)}
            for who in ("amal@khabar.test", "bassem@khabar.test")
        ]
        if i == 0:
            other = ["content" if x == "boilerplate" else "boilerplate" for x in labels]
            result = choices_result(task, [other[0], *labels[1:]])
            reviews[task["data"]["id"]].append({"annotator": "carim@khabar.test", "result": result})
    reviews[tasks[-1]["data"]["id"]] = [{"annotator": "amal@khabar.test", "skip": True}]
    ls_export = tmp_path / "label_studio_export.json"
    with label_studio(label_studio_exe, tmp_path / "ls") as server:
        plan = {
            "url": server.url,
            "token": server.token,
            "title": "khabar boilerplate review",
            "label_config": config,
            "tasks": str(tasks_file),
            "reviews": reviews,
            "export": str(ls_export),
            # the shipped topic and stance configs, checked by the server too
            "other_configs": {t: label_config(t) for t in ("topic", "stance")},
        }
        (tmp_path / "plan.json").write_text(json.dumps(plan, ensure_ascii=False), "utf-8")
        done = subprocess.run(
            [str(server.python), str(DRIVER), str(tmp_path / "plan.json")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == 4 and summary["predictions"] == 4  # pre-annotations imported
    assert summary["annotations"] == 2 * 3 + 1 + 1
    assert summary["configs_accepted"] == ["topic", "stance"]

    # 3. Label Studio's export -> the annotation file
    report = run(
        capsys, "annotate", "import", "--from", str(ls_export), "--out", str(tmp_path / "r.jsonl")
    )
    assert (report["reviewed_tasks"], report["skipped"]) == (3, [tasks[-1]["data"]["id"]])
    assert report["annotators"] == 3 and report["majority_not_unanimous"] == 1
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text("utf-8").splitlines()]
    assert [x["id"] for x in lines] == [t["data"]["id"] for t in tasks[:-1]]
    for line in lines:  # the majority's labels: the gold ones (null: empty paragraph)
        assert line["labels"] == gold[line["id"]] and line["origin"] == "review"

    # 4. rebuild the dataset with the reviews, retrain; the reviewed articles keep their splits
    before = run(capsys, "build-dataset", "--config", str(build_config(tmp_path, corpus, [])),
                 "--out", str(tmp_path / "ds0"))  # fmt: skip
    after = run(capsys, "build-dataset", "--config",
                str(build_config(tmp_path, corpus, [str(tmp_path / "r.jsonl")])),
                "--out", str(tmp_path / "ds1"))  # fmt: skip
    info = after["outputs"]["boilerplate"]["annotations"]
    assert info["articles_from_review"] == 3 and info["unmatched_article_ids"] == 0
    assert info["examples_from_review"] > 0
    assert after["content_hash"] != before["content_hash"]

    def splits(ds: Path) -> dict:
        return {
            row["article_id"]: split
            for split, d in load_from_disk(str(ds / "boilerplate")).items()
            for row in d
        }

    assert splits(tmp_path / "ds1") == splits(tmp_path / "ds0")
    for tag in ("ds0", "ds1"):
        dataset = tmp_path / tag / "boilerplate"
        result = run(capsys, "train", "--config", str(train_config(tmp_path, dataset)),
                     "--out", str(tmp_path / f"bundle_{tag}"))  # fmt: skip
        assert (tmp_path / f"bundle_{tag}" / "bundle.json").exists(), result
    meta = json.loads((tmp_path / "bundle_ds1" / "bundle.json").read_text("utf-8"))
    assert meta["dataset"]["dir"] == str(tmp_path / "ds1" / "boilerplate")
