"""Tiny sklearn bundles trained on the shipped sample corpus (gold labels), for tagger tests.

Datasets are made here with the same ``inference.text.preprocess`` row functions the builder uses;
the split is a fixed hash of the article id so every test run sees the same bundles.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from inference.text.preprocess import boilerplate_inputs, boilerplate_row, stance_row, topic_row
from inference.text.schema import Article, article_from_record


def sample_file(name: str) -> Path:
    return Path(str(resources.files("training").joinpath("sample_data", name)))


def sample_articles() -> list[Article]:
    lines = sample_file("articles.jsonl").read_text("utf-8").splitlines()
    return [article_from_record(json.loads(line)) for line in lines if line.strip()]


def _split(key: str) -> str:
    return "test" if int(hashlib.md5(key.encode()).hexdigest(), 16) % 5 == 0 else "train"


def _save(rows_by_split: dict, labels: list[str], out: Path) -> Path:
    from datasets import ClassLabel, Dataset, DatasetDict

    dsd = {}
    for split, rows in rows_by_split.items():
        ds = Dataset.from_list(rows)
        dsd[split] = ds.cast_column("label", ClassLabel(names=labels))
    dsd["validation"] = dsd["test"]
    DatasetDict(dsd).save_to_disk(str(out))
    return out


def build_sample_datasets(root: Path) -> dict[str, Path]:
    arts = sample_articles()
    bp: dict[str, list] = {"train": [], "test": []}
    topic: dict[str, list] = {"train": [], "test": []}
    for art in arts:
        split = _split(art.id)
        for p in boilerplate_inputs(art):
            bp[split].append({**boilerplate_row(p), "label": art.labels[p.index]})
        topic[split].append({**topic_row(art, art.labels), "label": art.label})
    stance: dict[str, list] = {"train": [], "test": []}
    for line in sample_file("stance.jsonl").read_text("utf-8").splitlines():
        rec = json.loads(line)
        row = stance_row(rec["id"], rec["claim"], rec["text"])
        stance[_split(rec["claim"] + rec["id"][-1])].append({**row, "label": rec["label"]})
    topics = sorted({a.label for a in arts})
    return {
        "boilerplate": _save(bp, ["content", "boilerplate"], root / "boilerplate"),
        "topic": _save(topic, topics, root / "topic"),
        "stance": _save(stance, ["agree", "disagree", "other"], root / "stance"),
    }


def train_sample_bundles(root: Path) -> dict[str, Path]:
    """Train one small sklearn bundle per task under ``root``; no MLflow tracking."""
    from training.config import TrainConfig
    from training.fit.train import train

    data = build_sample_datasets(root / "datasets")
    bundles = {}
    for task, path in data.items():
        cfg = TrainConfig.model_validate(
            {
                "task": task,
                "data": {"dataset_dir": str(path)},
                "model": {"kind": "sklearn", "min_df": 1, "calibrate": False, "C": 10.0},
                "tracking": {"enabled": False},
            }
        )
        bundles[task] = train(cfg, root / "bundles" / task).bundle_dir
    return bundles
