"""benchmarks/boilerplate_looo.py and the enlarged gold (benchmarks/gold): what they exclude and load."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import boilerplate_looo as looo  # noqa: E402
from benchmarks.gold.extra_gold import LABELS, load_extra_gold  # noqa: E402
from inference.text.preprocess import FEATURE_NAMES  # noqa: E402
from training.config import SklearnModel  # noqa: E402


class Cfg:
    model = SklearnModel(kind="sklearn", min_df=1, char_ngrams=None)


def row(source: str, text: str, label: int) -> dict:
    features = [0.0] * len(FEATURE_NAMES)
    return {
        "source": source,
        "text": text,
        "prev_text": "",
        "next_text": "",
        "features": features,
        "label": label,
        "rule": "",
    }


def test_a_fold_never_sees_the_held_out_outlet_nor_its_text(monkeypatch):
    seen = {}

    def fake_fit(task, cfg, frame, y, sample_weight=None):
        seen["texts"] = list(frame["text"])
        return None

    monkeypatch.setattr(looo, "fit_pipeline", fake_fit)
    rows = [
        row("a", "قصة من المصدر أ", 0),
        row("b", "قصة من المصدر ب", 0),
        row("b", "قصة من المصدر أ", 1),  # another outlet's page that borrowed a's paragraph
        row("c", "سطر من الذهب", 0),  # text of a gold paragraph of outlet a
        row("c", "خبر آخر", 1),
    ]
    gold = [{"source": "A", "paragraphs": ["سطر من الذهب", ""], "labels": ["content", None]}]
    looo.fit_pipeline_without(Cfg(), rows, ["content", "boilerplate"], ["a"], gold)
    assert seen["texts"] == ["قصة من المصدر ب", "خبر آخر"]


def test_gold_weight_adds_only_the_other_outlets_gold_with_its_weight(monkeypatch):
    seen = {}

    def fake_fit(task, cfg, frame, y, sample_weight=None):
        seen.update(texts=list(frame["text"]), y=list(y), w=sample_weight)

    monkeypatch.setattr(looo, "fit_pipeline", fake_fit)
    rows = [row("b", "قصة من المصدر ب", 0)]
    gold = [
        {"id": "a1", "source": "A", "paragraphs": ["سطر أ"], "labels": ["content"]},
        {
            "id": "b1",
            "source": "B",
            "paragraphs": ["سطر ب", "", "المصدر: وكالات"],
            "labels": ["content", None, "boilerplate"],
        },
    ]
    looo.fit_pipeline_without(Cfg(), rows, ["content", "boilerplate"], ["a"], gold, 20.0)
    assert seen["texts"] == ["قصة من المصدر ب", "سطر ب", "المصدر: وكالات"]
    assert seen["y"] == ["content", "content", "boilerplate"]
    assert list(seen["w"]) == [1.0, 20.0, 20.0]
    looo.fit_pipeline_without(Cfg(), rows, ["content", "boilerplate"], ["a"], gold)
    assert seen["texts"] == ["قصة من المصدر ب"] and seen["w"] is None


def test_proxy_pages_append_a_trailer_with_another_outlets_story():
    gold = [
        {
            "id": f"g{i}",
            "source": f"s{i % 3}",
            "title": f"عنوان {i}",
            "paragraphs": [f"فقرة {i}-{k}" for k in range(4)],
            "labels": ["content"] * 4,
        }
        for i in range(9)
    ]
    pages = list(looo.proxy_pages(gold[:2], gold))
    assert [p["id"] for p in pages] == ["g0~proxy", "g1~proxy"]
    for page, host in zip(pages, gold[:2], strict=True):
        assert page["paragraphs"][:4] == host["paragraphs"]
        assert len(page["labels"]) == len(page["paragraphs"])
        assert set(page["labels"][4:]) == {"boilerplate"}
        inlined = [p for p in page["paragraphs"][4:] if p.startswith("فقرة")]
        assert inlined and all(not p.startswith(f"فقرة {host['id'][1:]}-") for p in inlined)


def test_score_pools_paragraphs():
    import numpy as np

    score = looo.Score()
    score.add("content", np.float64(0.7) >= 0.5)  # what predict_proba comparisons give
    assert json.dumps(score.as_dict())  # the report is JSON
    score = looo.Score()
    for gold, flagged in [
        ("boilerplate", True),
        ("boilerplate", False),
        ("content", False),
        ("content", True),
    ]:
        score.add(gold, flagged)
    assert score.as_dict() == {
        "P": 0.5,
        "R": 0.5,
        "F1": 0.5,
        "content_recall": 0.5,
        "tp": 1,
        "fp": 1,
        "fn": 1,
    }


def test_labels_file_is_aligned_and_covers_twenty_outlets():
    rows = [json.loads(x) for x in LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 160 and len({r["id"] for r in rows}) == 160
    assert len(Counter(r["source"] for r in rows)) == 20
    for r in rows:
        assert len(r["labels"]) == len(r["kinds"]) == len(r["spans"]) == r["n_paragraphs"]
        assert all(
            (k is not None) == (lab == "boilerplate")
            for lab, k in zip(r["labels"], r["kinds"], strict=True)
        )


@pytest.mark.data
def test_extra_gold_joins_the_shared_data(shared_data):
    gold = load_extra_gold(shared_data)
    assert len(gold) == 160
    for g in gold:
        assert len(g["paragraphs"]) == len(g["labels"])
        assert all(
            (lab is None) == (not p.strip())
            for p, lab in zip(g["paragraphs"], g["labels"], strict=True)
        )
        assert all(s is None or s in p for p, s in zip(g["paragraphs"], g["spans"], strict=True))
