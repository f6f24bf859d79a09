"""``evaluate_model`` on labeled files in the input formats of DESIGN.md, and on ../shared/data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from inference.engines.readers import iter_articles
from inference.text.preprocess import stance_row, topic_row
from tests.fit.test_sklearn_train import (
    CLAIMS,
    UNRELATED,
    _topic_articles,
    boilerplate_articles,
    make_config,
    make_dataset,
)
from training.fit.train import train
from training.tracking.evaluate import EvaluateError, evaluate_model

METRIC_KEYS = {"accuracy", "macro_f1", "per_class", "confusion_matrix", "n", "model_version"}


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    return {
        task: train(make_config(task, make_dataset(task, root)), root / task).bundle_dir
        for task in ("topic", "stance", "boilerplate")
    }


def _topic_records() -> list[dict]:
    rng = random.Random(7)
    return [
        {"id": a.id, "title": a.title, "text": "\n".join(a.paragraphs), "label": y}
        for a, y in _topic_articles(3, rng)
    ]


def _stance_records() -> list[dict]:
    records = []
    for i, (claim, agree) in enumerate(CLAIMS):
        records.append({"id": f"a{i}", "claim": claim, "text": agree, "label": "agree"})
        records.append(
            {
                "id": f"d{i}",
                "claim": claim,
                "label": "disagree",
                "text": "نفت مصادر رسمية " + claim + " ولم يحدث ذلك",
            }
        )
        records.append({"id": f"o{i}", "claim": claim, "text": UNRELATED[i % 4], "label": "other"})
    return records


def test_evaluate_topic_file(bundles, tmp_path):
    path = _jsonl(tmp_path / "topic.jsonl", [*_topic_records(), {"id": "x", "text": "بلا تصنيف"}])
    result = evaluate_model(bundles["topic"], path, "topic")
    assert METRIC_KEYS <= set(result) and result["n"] == 9 and result["unlabeled"] == 1
    assert result["macro_f1"] >= 0.8
    assert set(result["per_class"]) == {"sports", "economy", "politics"}


def test_evaluate_stance_file(bundles, tmp_path):
    result = evaluate_model(
        bundles["stance"], _jsonl(tmp_path / "s.jsonl", _stance_records()), "stance"
    )
    assert result["n"] == 18 and result["macro_f1"] >= 0.8


def test_evaluate_boilerplate_file_scores_each_labeled_paragraph(bundles, tmp_path):
    records = boilerplate_articles(3, 11)
    result = evaluate_model(
        bundles["boilerplate"], _jsonl(tmp_path / "b.jsonl", records), "boilerplate"
    )
    # 8 paragraphs per article, one of them empty (null label): 7 scored each.
    assert result["n"] == 21 and result["per_class"]["boilerplate"]["support"] == 9
    assert result["furniture_f1"] >= 0.8 and result["content_recall"] >= 0.9


def test_evaluate_csv_input(bundles, tmp_path):
    import csv

    path = tmp_path / "s.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "claim", "text", "label"])
        writer.writeheader()
        writer.writerows(_stance_records())
    assert evaluate_model(bundles["stance"], path, "stance")["n"] == 18


def test_unknown_labels_and_task_mismatch_are_clear_errors(bundles, tmp_path):
    records = [*_stance_records(), {"id": "u", "claim": "ادعاء", "text": "نص", "label": "Favor"}]
    with pytest.raises(EvaluateError, match=r"\['Favor'\] are not known"):
        evaluate_model(bundles["stance"], _jsonl(tmp_path / "u.jsonl", records), "stance")
    with pytest.raises(EvaluateError, match="'topic' model"):
        evaluate_model(bundles["topic"], _jsonl(tmp_path / "s.jsonl", _stance_records()), "stance")
    with pytest.raises(EvaluateError, match="no gold labels"):
        evaluate_model(bundles["topic"], _jsonl(tmp_path / "n.jsonl", [{"text": "خبر"}]), "topic")


# ---------------------------------------------------------------- real data (../shared/data)
def _sample_lines(path: Path, n: int, seed: int) -> list[str]:
    lines = path.read_text("utf-8").splitlines()
    return random.Random(seed).sample(lines, min(n, len(lines)))


def _real_model(task: str, lines: list[str], root: Path) -> Path:
    """A tiny model trained on real records (disjoint from the evaluated slice)."""
    tmp = root / "train.jsonl"
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    rows = []
    for article in iter_articles(tmp):
        if task == "topic":
            rows.append({**topic_row(article), "label": article.label})
        else:
            rows.append(
                {**stance_row(article.id, article.claim, article.text), "label": article.label}
            )
    cut = len(rows) * 3 // 4
    return _train_rows(task, rows[:cut], rows[cut:], root)


def _train_rows(task: str, train_rows: list[dict], test_rows: list[dict], root: Path) -> Path:
    import datasets

    names = sorted({r["label"] for r in train_rows + test_rows})
    splits = {}
    for name, rows in (("train", train_rows), ("test", test_rows)):
        ds = datasets.Dataset.from_list([{**r, "label": names.index(r["label"])} for r in rows])
        splits[name] = ds.cast_column("label", datasets.ClassLabel(names=names))
    path = root / "ds"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    cfg = make_config(task, path, char_ngrams=None, max_features=20000, C=1.0)
    return train(cfg, root / "bundle").bundle_dir


def _sane(result: dict, task: str) -> None:
    assert METRIC_KEYS <= set(result) and result["n"] > 0
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["macro_f1"] <= 1.0
    assert sum(s["support"] for s in result["per_class"].values()) == result["n"]
    if task == "boilerplate":
        assert {"furniture_f1", "content_recall"} <= set(result)


@pytest.mark.data
def test_shared_boilerplate_gold_dev(shared_data, bundles):
    result = evaluate_model(
        bundles["boilerplate"], shared_data / "boilerplate_gold_dev" / "dev.jsonl", "boilerplate"
    )
    _sane(result, "boilerplate")
    assert result["per_class"]["boilerplate"]["support"] == 29  # README: 29 boilerplate


@pytest.mark.data
@pytest.mark.parametrize(
    "relpath",
    [
        "ans_stance/stance.jsonl",
        "mawqif_stance/stance.jsonl",
        "ant_corpus_multisource_v2_1/topic.jsonl",
    ],
)
def test_shared_labeled_slices(shared_data, tmp_path, relpath):
    task = "topic" if relpath.endswith("topic.jsonl") else "stance"
    lines = _sample_lines(shared_data / relpath, 600 if task == "stance" else 300, seed=5)
    eval_lines, train_lines = lines[:200], lines[200:]
    # The model must know every label of the slice: keep only slice lines with trained labels.
    bundle_dir = _real_model(task, train_lines, tmp_path)
    known = set(json.loads((bundle_dir / "bundle.json").read_text("utf-8"))["labels"])
    kept = [ln for ln in eval_lines if json.loads(ln)["label"] in known]
    path = tmp_path / "slice.jsonl"
    path.write_text("\n".join(kept) + "\n", "utf-8")
    result = evaluate_model(bundle_dir, path, task)
    _sane(result, task)
    assert result["n"] == len(kept)
    print(relpath, "macro_f1", round(result["macro_f1"], 3), "n", result["n"])
