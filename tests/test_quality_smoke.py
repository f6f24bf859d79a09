"""Smoke test of benchmarks/quality.py helpers: no training, no shared data, a few seconds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("khabar_quality", REPO / "benchmarks/quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


STORY = (
    "وقال وزير المالية في مؤتمر صحفي عقده اليوم في العاصمة إن الحكومة سوف تواصل العمل على تنفيذ "
    "جميع المشاريع التي أعلنت عنها في الأشهر الماضية، وإن هذه المشاريع من شأنها أن تحسن الخدمات "
    "التي تقدم إلى المواطنين في كل المناطق، كما أنها سوف تساعد على خلق فرص عمل جديدة للشباب."
)


def test_justext_page_keeps_one_p_per_paragraph(quality):
    page = quality.justext_page(["a <b>", "", "c"])
    assert page.count("<p>") == 3
    assert "a &lt;b&gt;" in page


def test_justext_flags_map_back_per_paragraph(quality):
    pytest.importorskip("lxml")
    paragraphs = ["اقرأ أيضا", "", STORY, STORY, "حقوق النشر محفوظة"]
    flags = quality.justext_flags(paragraphs)
    assert len(flags) == len(paragraphs)
    assert flags[1] is None  # empty paragraph: no jusText block
    assert all(isinstance(f, bool) for i, f in enumerate(flags) if i != 1)
    assert flags[0] is True  # a short link line is boilerplate to jusText
    assert flags[2] is False and flags[3] is False  # long stopword-rich story text is kept


def test_binary_scores(quality):
    gold = ["content", "boilerplate", "boilerplate", "content"]
    pred = ["content", "boilerplate", "content", "boilerplate"]
    s = quality.binary_scores(gold, pred)
    assert s["furniture_precision"] == 0.5
    assert s["furniture_recall"] == 0.5
    assert s["furniture_f1"] == 0.5
    assert s["content_recall"] == 0.5


def test_choose_threshold_respects_content_recall(quality):
    probs = [0.9, 0.8, 0.3, 0.2, 0.1, 0.05]
    gold = ["boilerplate", "boilerplate", "content", "content", "content", "content"]
    t, table = quality.choose_threshold(probs, gold)
    assert t is not None and 0.3 < t <= 0.8
    assert table[t]["furniture_f1"] == 1.0


def test_render_markdown_tables(quality):
    results = {
        "models": {
            "boilerplate_sklearn": {
                "task": "boilerplate",
                "slot": "boilerplate",
                "system": "boilerplate_sklearn",
                "kind": "sklearn",
                "config": "configs/train/boilerplate_sklearn.yaml",
                "bundle": "out/boilerplate",
                "train_seconds": 12.3,
                "size_bytes": 2048,
                "gold_dev": {
                    "furniture_precision": 1.0,
                    "furniture_recall": 0.9,
                    "furniture_f1": 0.947,
                    "content_recall": 1.0,
                },
                "variants": {
                    "threshold": 0.3,
                    "at_threshold": {
                        "furniture_precision": 0.9,
                        "furniture_recall": 0.95,
                        "furniture_f1": 0.92,
                        "content_recall": 0.99,
                    },
                },
            },
            "topic_sklearn": {
                "task": "topic",
                "slot": "topic",
                "system": "topic_sklearn",
                "kind": "sklearn",
                "dataset": "topic_ant_multisource",
                "config": "configs/train/topic_sklearn.yaml",
                "bundle": "out/topic",
                "train_seconds": 60.0,
                "size_bytes": 10 * 1024 * 1024,
                "validation": {"macro_f1": 0.91},
                "test": {"macro_f1": 0.88, "accuracy": 0.9},
            },
        },
        "peers": {
            "boilerplate": {
                "justext": {
                    "furniture_precision": 0.2,
                    "furniture_recall": 0.8,
                    "furniture_f1": 0.32,
                    "content_recall": 0.8,
                }
            },
            "topic": {
                "tfidf_svc": {
                    "validation": {"macro_f1": 0.9},
                    "test": {"macro_f1": 0.89, "accuracy": 0.9},
                    "train_seconds": 30.0,
                    "size_bytes": 1000,
                }
            },
        },
        "runs": [{"command": ".venv/bin/python benchmarks/quality.py", "configs": ["x"]}],
    }
    md = quality.render_markdown(results)
    assert (
        "| **boilerplate_sklearn** (`khabar evaluate`) | 1.000 | 0.900 | 0.947 | 1.000 | met; met"
        in md
    )
    assert "P≥0.3" in md and "missed by 0.005" in md  # content recall 0.99 < 0.995
    assert "peer: jusText" in md
    assert (
        "| topic | topic_ant_multisource | **topic_sklearn** | 0.910 | 0.880 | 0.900 | missed by 0.020"
        in md
    )
    assert "peer: TF-IDF + LinearSVC | 0.900 | 0.890" in md
    assert "10.0 MB" in md
    assert "benchmarks/quality.py" in md
