"""Uncertainty sampling (training/annotate/select.py) with stub models whose margins are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.annotate.helpers import stub_tagger
from training.annotate.select import select_least_sure, top_two_margin

STORY = "وأضاف الوزير أن المشروع سيكتمل العام المقبل بعد استكمال الدراسات الفنية والمالية اللازمة."
CREDIT = "المصدر: وكالة الأنباء الرسمية"  # a furniture rule fires on it


def write_articles(path, articles: dict[str, list[str]]):
    with path.open("w", encoding="utf-8") as fh:
        for aid, paragraphs in articles.items():
            record = {"id": aid, "title": "عنوان", "source": "site", "paragraphs": paragraphs}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def test_top_two_margin():
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
    assert top_two_margin(probs) == pytest.approx([0.2, 0.4, 1.0])
    assert top_two_margin(np.ones((2, 1))).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("batch_size", [2, 256])
def test_topic_least_sure_first(tmp_path, batch_size):
    labels = ["politics", "economy", "sports"]
    table = {  # article id -> probabilities; margins in the comments
        "t1": [0.5, 0.3, 0.2],  # 0.20
        "t2": [0.34, 0.33, 0.33],  # 0.01
        "t3": [0.9, 0.05, 0.05],  # 0.85
        "t4": [0.45, 0.45, 0.10],  # 0.00
        "t5": [0.6, 0.39, 0.01],  # 0.21
    }
    tagger = stub_tagger("topic", labels, table, [1.0, 0.0, 0.0])
    corpus = write_articles(tmp_path / "a.jsonl", {aid: [STORY] for aid in table})
    picked, stats = select_least_sure(tagger, "topic", corpus, 3, batch_size=batch_size)
    assert [c.article.id for c in picked] == ["t4", "t2", "t1"]
    assert [round(c.margin, 2) for c in picked] == [0.0, 0.01, 0.2]
    assert picked[2].label == "politics" and picked[2].score == pytest.approx(0.5)
    assert stats.read == 5
    everything, _ = select_least_sure(tagger, "topic", corpus, 10, batch_size=batch_size)
    assert [c.article.id for c in everything] == ["t4", "t2", "t1", "t5", "t3"]


def test_stance_pairs_least_sure_first(tmp_path):
    corpus = write_articles(tmp_path / "a.jsonl", {"s1": [STORY], "s2": [STORY]})
    table = {"s1|هدف أ": [0.5, 0.4, 0.1], "s1|هدف ب": [0.9, 0.1, 0.0], "s2|هدف أ": [0.4, 0.4, 0.2]}
    tagger = stub_tagger(
        "stance",
        ["agree", "disagree", "other"],
        table,
        [1, 0, 0],
        stance_targets=["هدف أ", "هدف ب"],
    )
    picked, _ = select_least_sure(tagger, "stance", corpus, 3)
    assert [(c.article.id, c.target) for c in picked] == [
        ("s2", "هدف أ"),
        ("s1", "هدف أ"),
        ("s1", "هدف ب"),  # 0.8; s2 toward it: 1.0
    ]


def test_boilerplate_interleaves_nearest_threshold_and_rule_disagreements(tmp_path):
    # P(boilerplate) per paragraph ("<article>#<index>"); every other paragraph is sure content.
    articles = {
        "A": [STORY, STORY],  # a paragraph at 0.55: margin 0.05
        "B": [STORY, CREDIT],  # the rule fires, the model keeps it (0.2): 1 disagreement, 0.30
        "C": [STORY, STORY],  # 0.40: margin 0.10
        "D": [STORY, STORY, STORY],  # the model drops two rule-less paragraphs (0.95): 2, 0.45
        "E": [STORY, "", STORY],  # 0.10: margin 0.40 (the empty paragraph is not scored)
    }
    p_bp = {"A#1": 0.55, "B#1": 0.2, "C#1": 0.4, "D#1": 0.95, "D#2": 0.95, "E#2": 0.1}
    table = {key: [1 - p, p] for key, p in p_bp.items()}
    tagger = stub_tagger("boilerplate", ["content", "boilerplate"], table, [1.0, 0.0])
    corpus = write_articles(tmp_path / "a.jsonl", articles)
    picked, _ = select_least_sure(tagger, "boilerplate", corpus, 4)
    assert [(c.article.id, c.reason) for c in picked] == [
        ("A", "margin"),
        ("D", "rules"),
        ("C", "margin"),
        ("B", "rules"),
    ]
    d = picked[1]
    assert d.disagreements == 2 and d.labels == ["content", "boilerplate", "boilerplate"]
    assert d.margin == pytest.approx(0.45)
    picked, _ = select_least_sure(tagger, "boilerplate", corpus, 5)
    assert [c.article.id for c in picked] == ["A", "D", "C", "B", "E"]
    assert picked[-1].labels == ["content", None, "content"]


def test_boilerplate_margin_is_measured_from_the_bundle_threshold(tmp_path):
    corpus = write_articles(tmp_path / "a.jsonl", {"X": [STORY], "Y": [STORY]})
    table = {"X#0": [0.3, 0.7], "Y#0": [0.55, 0.45]}
    tagger = stub_tagger(
        "boilerplate", ["content", "boilerplate"], table, [1, 0], boilerplate_threshold=0.75
    )
    picked, _ = select_least_sure(tagger, "boilerplate", corpus, 2)
    assert [(c.article.id, round(c.margin, 2)) for c in picked] == [("X", 0.05), ("Y", 0.3)]
    assert picked[0].labels == ["content"]  # 0.7 < 0.75: kept
