"""Reviewed labels in the builder (``boilerplate.annotations``, ``topic.annotations``): they override
the weak and record labels, carry provenance "review", are counted in the manifest, and never move
an article to another split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from tests.dataset.test_build_dataset import TOPICS, build, config, make_article, write_jsonl


def splits_of(out: Path, output: str, key: str) -> dict[str, str]:
    """Article (or example) id -> its split in a built output."""
    return {
        row[key]: split for split, ds in load_from_disk(str(out / output)).items() for row in ds
    }


def rows_of(out: Path, output: str) -> list[dict]:
    """Every row of a built output, with its split and its label by name."""
    rows = []
    for split, ds in load_from_disk(str(out / output)).items():
        names = ds.features["label"].names
        rows += [dict(row, split=split, label=names[row["label"]]) for row in ds]
    return rows


@pytest.fixture()
def news(tmp_path) -> Path:
    write_jsonl(tmp_path / "news.jsonl", [make_article(i, label=TOPICS[i % 3]) for i in range(60)])
    write_jsonl(tmp_path / "pairs.jsonl", [])
    return tmp_path


def review(path: Path, lines: list) -> str:
    write_jsonl(path, lines)
    return path.name


def test_reviewed_paragraph_labels_override_weak_labels_in_the_same_split(news):
    # art-004's furniture line (its 4th paragraph) is reviewed as content, art-007's first
    # paragraph as boilerplate; art-010's review is only partial (null: keep the weak label).
    ann = review(
        news / "bp_review.jsonl",
        [
            {"id": "art-004", "task": "boilerplate", "labels": ["content"] * 4, "origin": "review"},
            {"id": "art-007", "task": "boilerplate", "origin": "review",
             "labels": ["boilerplate", "content", "content", "boilerplate"]},
            {"id": "art-010", "task": "boilerplate", "origin": "review",
             "labels": [None, None, None, "content"]},
        ],
    )  # fmt: skip
    before, out0 = build(news, config(news), "before")
    after, out1 = build(news, config(news, boilerplate={"annotations": [ann]}), "after")

    assert splits_of(out1, "boilerplate", "article_id") == splits_of(
        out0, "boilerplate", "article_id"
    )
    rows = {(r["article_id"], r["index"]): r for r in rows_of(out1, "boilerplate")}
    assert rows[("art-004", 3)]["label"] == "content"
    assert rows[("art-004", 3)]["provenance"] == "review"
    assert rows[("art-007", 0)]["label"] == "boilerplate"
    assert rows[("art-010", 3)]["provenance"] == "review"
    assert rows[("art-010", 0)]["provenance"] != "review"  # null: the weak label stays
    info = after["outputs"]["boilerplate"]["annotations"]
    assert info["articles_from_review"] == 3
    assert info["examples_from_review"] == 4 + 4 + 1
    assert after["outputs"]["boilerplate"]["provenance"]["review"] == 9
    assert "review" not in before["outputs"]["boilerplate"]["provenance"]
    # The topic text of a reviewed article is cleaned with the reviewed labels.
    # (the weak labels dropped its last paragraph; the review drops its first one as well)
    text0 = {r["id"]: r["text"] for r in rows_of(out0, "topic")}["art-007"]
    text1 = {r["id"]: r["text"] for r in rows_of(out1, "topic")}["art-007"]
    title, *story0 = text0.split("\n")
    assert text1.split("\n") == [title, *story0[1:]]


def test_reviewed_topic_label_wins_and_keeps_the_split(news):
    # Every article has a gold label; the reviews change two of them.
    ann = review(
        news / "topic_review.jsonl",
        [
            {"id": "art-001", "task": "topic", "label": "sports", "origin": "review"},
            {"id": "art-002", "task": "topic", "label": "politics", "origin": "review"},
        ],
    )
    _, out0 = build(news, config(news), "before")
    cfg = config(news, topic={"labels": TOPICS, "annotations": [ann]})
    manifest, out1 = build(news, cfg, "after")
    assert splits_of(out1, "topic", "id") == splits_of(out0, "topic", "id")
    rows = {r["id"]: r for r in rows_of(out1, "topic")}
    assert (rows["art-001"]["label"], rows["art-001"]["provenance"]) == ("sports", "review")
    assert (rows["art-002"]["label"], rows["art-002"]["provenance"]) == ("politics", "review")
    assert manifest["outputs"]["topic"]["provenance"]["review"] == 2
    assert manifest["outputs"]["topic"]["annotations"]["articles_from_review"] == 2


def test_bad_annotation_lines_are_rejected_or_skipped_and_reported(news):
    ann = review(
        news / "bp_review.jsonl",
        [
            {"id": "art-003", "task": "boilerplate", "labels": ["content"] * 3},  # 3 of 4
            {"id": "art-005", "task": "topic", "label": "sports"},  # another task
            {"id": "art-006", "labels": ["content", "sidebar", None, None]},  # unknown label
            {"id": "no-such-article", "labels": ["content"]},
            "{not json",
        ],
    )
    manifest, out = build(news, config(news, boilerplate={"annotations": [ann]}))
    entry = manifest["outputs"]["boilerplate"]
    info = entry["annotations"]
    assert info["rejected_total"] == 3
    reasons = " | ".join(r["reason"] for r in info["rejected"])
    assert "task 'topic'" in reasons and "sidebar" in reasons and "invalid JSON" in reasons
    assert info["unmatched_listed"] == ["no-such-article"]
    assert entry["skipped"]["annotation_paragraphs_mismatch"] == 1
    assert info["articles_from_review"] == 0 and info["examples_from_review"] == 0
    assert "annotation" not in entry["provenance"]  # the mismatched lines were not used


def test_the_annotation_file_of_khabar_annotate_import_is_read_as_is(news, tmp_path):
    """The line format of ``training.annotate.reviews`` is the builder's (documented in both)."""
    line = {
        "id": "art-012",
        "task": "boilerplate",
        "labels": ["content", "content", "content", "boilerplate"],
        "origin": "review",
        "reviewers": 3,
        "model_version": "abc123",
    }
    (news / "review.jsonl").write_text(json.dumps(line) + "\n", "utf-8")
    manifest, _ = build(news, config(news, boilerplate={"annotations": ["review.jsonl"]}))
    assert manifest["outputs"]["boilerplate"]["annotations"]["examples_from_review"] == 4
