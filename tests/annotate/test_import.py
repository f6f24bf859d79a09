"""``khabar annotate import``: Label Studio's JSON export -> the builder's annotation file. Majority
vote, ties and skips reported; every bad input is one error line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.annotate.helpers import choices_result, ls_export, write_json
from training.cli import main

STORED = Path(__file__).parent / "data" / "ls_export_boilerplate.json"


def run_import(capsys, export: Path, out: Path, corpus: Path | None = None) -> tuple[int, str]:
    args = ["annotate", "import", "--from", str(export), "--out", str(out)]
    code = main(args + (["--input", str(corpus)] if corpus else []))
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def read_lines(path: Path) -> dict[str, dict]:
    lines = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
    return {x["id"] if x["task"] != "stance" else (x["id"], x["claim"]): x for x in lines}


@pytest.fixture()
def exported(sample_bundles, articles_jsonl, tmp_path, capsys):
    """Exported tasks of each task kind (from the fixture corpus), by task."""

    def run(task: str, n: int, *extra: str) -> list[dict]:
        out = tmp_path / f"{task}_tasks.json"
        models = {"boilerplate", task}
        refs = [arg for name in sorted(models) for arg in ("--model", str(sample_bundles[name]))]
        args = [*refs, "--input", str(articles_jsonl), "--task", task, "--n", str(n)]
        assert main(["annotate", "export", *args, "--out", str(out), *extra]) == 0
        capsys.readouterr()
        return json.loads(out.read_text("utf-8"))

    return run


def gold(fixture_articles, task: dict) -> list[str]:
    """The fixture's own labels of the paragraphs a boilerplate task shows."""
    labels = {a["id"]: a["labels"] for a in fixture_articles}[task["data"]["id"]]
    return [labels[p["index"]] for p in task["data"]["paragraphs"]]


def flip(labels: list[str], k: int) -> list[str]:
    out = list(labels)
    out[k] = "content" if out[k] == "boilerplate" else "boilerplate"
    return out


def test_boilerplate_majority_vote_ties_skips_and_latest_annotation(
    exported, fixture_articles, tmp_path, capsys
):
    t1, t2, t3, t4 = exported("boilerplate", 4)
    g1, g2 = gold(fixture_articles, t1), gold(fixture_articles, t2)
    reviews = {
        # 2 of 3 reviewers give the gold labels; reviewer 1 corrected a first, wrong annotation
        t1["data"]["id"]: [
            {"by": 1, "result": choices_result(t1, flip(g1, 1))},
            {"by": 2, "result": choices_result(t1, g1)},
            {"by": 3, "result": choices_result(t1, flip(g1, 0))},
            {"by": 1, "result": choices_result(t1, g1)},
        ],
        # two reviewers disagree on the first paragraph: a tie, left unlabeled
        t2["data"]["id"]: [
            {"by": 1, "result": choices_result(t2, g2)},
            {"by": 2, "result": choices_result(t2, flip(g2, 0))},
        ],
        t3["data"]["id"]: [{"by": 1, "skip": True}, {"by": 2, "skip": True}],
    }  # t4: nobody reviewed it
    export = write_json(tmp_path / "export.json", ls_export([t1, t2, t3, t4], reviews))
    code, out = run_import(capsys, export, tmp_path / "ann.jsonl")
    assert code == 0, out
    report = json.loads(out)
    assert report["reviewed_tasks"] == 2 and report["written"] == 2
    assert report["skipped"] == [t3["data"]["id"]] and report["unreviewed"] == [t4["data"]["id"]]
    assert report["annotators"] == 3
    first = t2["data"]["paragraphs"][0]["index"]
    assert report["tied"] == [
        {"id": t2["data"]["id"], "paragraph": first, "votes": {"boilerplate": 1, "content": 1}}
    ]
    assert report["majority_not_unanimous"] == 1  # t1's first paragraph: 2 to 1
    lines = read_lines(tmp_path / "ann.jsonl")
    for task, labels in ((t1, g1), (t2, [None, *g2[1:]])):
        line = lines[task["data"]["id"]]
        shown = {p["index"]: lab for p, lab in zip(task["data"]["paragraphs"], labels, strict=True)}
        n = task["data"]["khabar"]["n_paragraphs"]
        assert line["labels"] == [shown.get(i) for i in range(n)]  # null: empty or tied
        assert line["origin"] == "review" and line["task"] == "boilerplate"
    assert lines[t1["data"]["id"]]["reviewers"] == 3


def test_topic_and_stance_one_label_per_article_or_pair(exported, tmp_path, capsys):
    t1, t2, t3 = exported("topic", 3)
    labels = t1["data"]["khabar"]["labels"]
    a, b = labels[0], labels[1]
    reviews = {
        t1["data"]["id"]: [{"by": k, "result": choices_result(t1, lab)} for k, lab in enumerate([a, a, b])],
        t2["data"]["id"]: [{"by": 1, "result": choices_result(t2, a)}, {"by": 2, "result": choices_result(t2, b)}],
        t3["data"]["id"]: [{"by": 1, "result": choices_result(t3, b)}],
    }  # fmt: skip
    export = write_json(tmp_path / "topic.json", ls_export([t1, t2, t3], reviews))
    code, out = run_import(capsys, export, tmp_path / "topic.jsonl")
    assert code == 0, out
    report = json.loads(out)
    assert report["tied"] == [{"id": t2["data"]["id"], "votes": {a: 1, b: 1}}]
    lines = read_lines(tmp_path / "topic.jsonl")
    assert set(lines) == {t1["data"]["id"], t3["data"]["id"]}
    assert lines[t1["data"]["id"]]["label"] == a and lines[t3["data"]["id"]]["label"] == b
    predicted = [t["data"]["khabar"]["predicted"] for t in (t1, t3)]
    assert report["changed_from_model"] == (predicted[0] != a) + (predicted[1] != b)

    (s1,) = exported("stance", 1, "--target", "الحكومة")
    export = write_json(tmp_path / "stance.json", ls_export([s1], {s1["data"]["id"]: [
        {"by": 1, "result": choices_result(s1, "disagree")}]}))  # fmt: skip
    code, out = run_import(capsys, export, tmp_path / "stance.jsonl")
    assert code == 0, out
    (line,) = read_lines(tmp_path / "stance.jsonl").values()
    assert (line["claim"], line["label"], line["origin"]) == ("الحكومة", "disagree", "review")


def test_a_stored_label_studio_export(articles_jsonl, tmp_path, capsys):
    """A real Label Studio 1.23 export (tests/annotate/ls_driver.py against the server): three
    reviewers on three fixture articles; a 2-to-1 majority, a tie, a task every reviewer skipped."""
    code, out = run_import(capsys, STORED, tmp_path / "ann.jsonl", corpus=articles_jsonl)
    assert code == 0, out
    report = json.loads(out)
    assert (report["tasks"], report["reviewed_tasks"], report["written"]) == (3, 2, 2)
    assert report["skipped"] == ["fx-007"] and report["annotators"] == 3
    assert report["tied"] == [
        {"id": "fx-009", "paragraph": 2, "votes": {"boilerplate": 1, "content": 1}}
    ]
    assert report["majority_not_unanimous"] == 1
    lines = read_lines(tmp_path / "ann.jsonl")
    assert lines["fx-005"]["labels"] == ["boilerplate", "content", "content", "boilerplate"]
    assert lines["fx-009"]["labels"] == ["content", "content", None, "boilerplate", "boilerplate"]
    assert lines["fx-005"]["reviewers"] == 3 and lines["fx-009"]["reviewers"] == 2


def _bad_exports(tasks: list[dict], review: dict, corpus: Path) -> dict:
    """Name -> (export content, corpus to check against, expected message)."""
    good = ls_export(tasks, review)
    unknown_label = json.loads(json.dumps(good))
    unknown_label[0]["annotations"][0]["result"][0]["value"]["choices"] = ["sidebar"]
    unknown_control = json.loads(json.dumps(good))
    unknown_control[0]["annotations"][0]["result"][0]["from_name"] = "paragraph_0"
    not_khabar = json.loads(json.dumps(good))
    del not_khabar[1]["data"]["khabar"]
    missing = json.loads(json.dumps(good))
    missing[0]["data"]["id"] = "fx-404"
    records = [json.loads(x) for x in corpus.read_text("utf-8").splitlines()]
    reviewed_id = tasks[0]["data"]["id"]

    def changed(edit) -> list[dict]:
        """The corpus with the first reviewed article's paragraphs edited."""
        out = []
        for r in records:
            if r["id"] == reviewed_id:
                paragraphs = r.get("paragraphs") or r["text"].split("\n")
                r = {k: v for k, v in r.items() if k not in ("text", "labels")}
                r["paragraphs"] = edit(paragraphs)
            out.append(r)
        return out

    shorter = changed(lambda ps: ps[:-1])
    edited = changed(lambda ps: [p + " (محدَّث)" for p in ps])
    as_topic = json.loads(json.dumps(tasks[0]))
    as_topic["data"]["khabar"]["task"] = "topic"
    mixed = good + ls_export([as_topic], {})
    return {
        "invalid JSON": ("[{not json", None, "invalid JSON at line 1"),
        "not a list": ({"tasks": good}, None, "expected a list of tasks"),
        "JSON_MIN": ([{"id": 1, "bp_0": "content"}], None, "no 'data' object"),
        "not from khabar": (not_khabar, None, "not made by annotate export"),
        "unknown label": (unknown_label, None, "unknown label 'sidebar'"),
        "unknown control": (unknown_control, None, "unknown control 'paragraph_0'"),
        "mixed tasks": (mixed, None, "mixes tasks"),
        "article not in corpus": (missing, None, "article 'fx-404' is not in the corpus"),
        "paragraph count": (good, shorter, "was exported with"),
        "paragraph text": (good, edited, "is not the one in"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "invalid JSON", "not a list", "JSON_MIN", "not from khabar", "unknown label",
        "unknown control", "mixed tasks", "article not in corpus", "paragraph count",
        "paragraph text",
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_exit_2_nothing_written(
    exported, fixture_articles, articles_jsonl, tmp_path, capsys, case
):
    tasks = exported("boilerplate", 2)
    review = {
        t["data"]["id"]: [{"by": 1, "result": choices_result(t, gold(fixture_articles, t))}]
        for t in tasks
    }
    content, corpus_records, message = _bad_exports(tasks, review, articles_jsonl)[case]
    export = tmp_path / "export.json"
    export.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    corpus = articles_jsonl
    if corpus_records is not None:
        corpus = tmp_path / "changed.jsonl"
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus_records)
        corpus.write_text(text, "utf-8")
    out = tmp_path / "ann.jsonl"
    out.write_text("previous round\n", "utf-8")
    code, err = run_import(capsys, export, out, corpus=corpus)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert out.read_text("utf-8") == "previous round\n"  # untouched
    assert sorted(p.name for p in tmp_path.glob("ann.jsonl*")) == ["ann.jsonl"]  # no temp file
