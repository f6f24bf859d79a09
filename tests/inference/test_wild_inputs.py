"""Inputs from the wild, one fault at a time: BOMs, broken Unicode, corrupt CSV, giant records,
output lines that cannot be encoded, a resume whose output disagrees with its checkpoint."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from inference.engines.csv_rows import MAX_RESYNCS, iter_rows, scan
from inference.engines.readers import ReadStats, iter_items
from inference.engines.runner import ResumeError, _batches, encode_record, run_tagging
from inference.tagger import load_tagger
from inference.text.schema import article_from_record
from training.cli import main

STORY = "أعلنت الوزارة اليوم عن خطة جديدة لدعم المزارعين في المناطق الريفية."
REC = {"id": "a1", "title": "خطة", "text": STORY + "\nالمصدر: وكالة الأنباء"}
ONE_LINE = {"id": "a1", "title": "خطة", "text": STORY}
BOM = b"\xef\xbb\xbf"


def _items(path: Path, **kw) -> list:
    return list(iter_items(path, stats=ReadStats(), **kw))


def _line(rec) -> bytes:
    return json.dumps(rec, ensure_ascii=False).encode() + b"\n"


def _csv(rows: list[dict], header=("id", "title", "text")) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


# ---------------------------------------------------------------- BOM, every format
def test_bom_is_skipped_in_every_format(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(BOM + _line(REC) + _line(dict(REC, id="a2")))
    (tmp_path / "b.csv").write_bytes(BOM + _csv([REC, dict(REC, id="a2")]))
    (tmp_path / "c.json").write_bytes(BOM + json.dumps([REC, dict(REC, id="a2")]).encode())
    (tmp_path / "d.json").write_bytes(BOM + _line(REC) + _line(dict(REC, id="a2")))  # JSONL
    for name in ("a.jsonl", "b.csv", "c.json", "d.json"):
        items = _items(tmp_path / name)
        assert [i.article.id for i in items] == ["a1", "a2"], (name, items[0].error)
        assert items[0].article.paragraphs[0] == STORY


# ---------------------------------------------------------------- surrogates, wrong types
def test_lone_surrogate_is_a_record_error_not_a_crash(tmp_path):
    no_id = {"text": "خبر مقطوع \ud83d"}
    path = tmp_path / "s.jsonl"
    # json.dumps escapes the surrogate as \ud83d, which json.loads turns back into one
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in (no_id, REC)))
    first, second = _items(path)
    assert first.error_type == "RecordError" and "lone surrogate" in first.error
    assert second.article.id == "a1"
    with pytest.raises(Exception, match="lone surrogate"):
        article_from_record({"id": "x\udc80", "text": STORY})


def test_deep_nesting_and_odd_json_are_record_errors(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n" + b"1e999999\n" + b'"str"\n' + _line(REC))
    items = _items(path)
    assert [i.article is None for i in items] == [True, True, True, False]


# ---------------------------------------------------------------- CSV
def test_row_splitter_agrees_with_the_csv_module():
    import random

    rng = random.Random(3)
    pieces = ['"', '""', ",", "a", "b c", "\n", '"x\ny"', "ع"]
    checked = 0
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14))) + "\n"
        rows = list(iter_rows(io.BytesIO(text.encode()), 1 << 20))
        if any(r.unterminated for r in rows):
            continue  # a field open at the end: the splitter resyncs where csv swallows the rest
        expected = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        assert [next(csv.reader([r.data.decode()])) for r in rows] == expected, repr(text)
        checked += 1
    assert checked > 1000
    assert scan(b'x",b,"open', 0) == scan(b'x",b,"open', 2, strict=True) == 2  # from both states
    assert scan(b'"x"y', 0) == 1 and scan(b'x"y', 2, strict=True) == 4  # DESYNC after a close


def test_csv_bad_rows_cost_one_record_each(tmp_path):
    good = _csv([ONE_LINE, dict(REC, id="a2", text="فقرة\nفقرة ثانية"), dict(ONE_LINE, id="a3")])
    head, r1, r2a, r2b, r3 = good.split(b"\n")[:5]
    rows = [
        head,
        r1,
        b"bad,\xff\xfe not utf-8,x",  # decode error
        b"nul,\x00,text with a NUL",  # accepted by csv: a record (no crash, no stop)
        b"cr,bare\rreturn,x",  # csv.Error
        r2a,
        r2b,  # a quoted field over two lines: one row
        b"   ",  # whitespace only: no record
        r3,
    ]
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    items = _items(path)
    assert len(items) == 6
    assert [i.article.id if i.article else i.error_type for i in items] == [
        "a1",
        "EncodingError",
        "nul",
        "CSVError",
        "a2",
        "a3",
    ]
    assert items[4].article.paragraphs == ["فقرة", "فقرة ثانية"] and items[4].line == 6


def test_csv_stray_quote_resyncs_on_the_next_line(tmp_path):
    body = _csv([ONE_LINE, dict(ONE_LINE, id="a2"), dict(ONE_LINE, id="a3")]).split(b"\n")
    rows = [body[0], body[1], b'stray,"never closed,x', body[2], body[3]]
    path = tmp_path / "stray.csv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    items = _items(path)
    assert [i.article.id if i.article else i.error_type for i in items] == [
        "a1",
        "CSVError",
        "a2",
        "a3",
    ]
    assert "stray quote" in items[1].error and items[1].line == 3


def test_csv_that_cannot_be_resynced_says_so_once_with_the_count(tmp_path):
    body = _csv([ONE_LINE]).split(b"\n")
    # Each of these opens a quoted field whether read from a row start or from inside quotes.
    strays = [b'q%d",b,"open' % i for i in range(MAX_RESYNCS + 1)]
    rest = [b"r%d,x,y" % i for i in range(10)]
    path = tmp_path / "hopeless.csv"
    path.write_bytes(b"\n".join([body[0], body[1], *strays, *rest]) + b"\n")
    items = _items(path)
    assert items[0].article.id == "a1"
    assert all("stray quote" in i.error for i in items[1:-1]) and len(items) == MAX_RESYNCS + 2
    assert "cannot be resynced" in items[-1].error and "10 more lines" in items[-1].error


def test_row_splitter_holds_big_rows_to_the_limit():
    data = b"id,text\n" + b"big," + b"x" * 5000 + b"\nsmall,y\n"
    rows = list(iter_rows(io.BytesIO(data), 1000))
    assert [(r.line, r.data is None, r.size) for r in rows] == [
        (1, False, 8),
        (2, True, 5005),
        (3, False, 8),
    ]


# ---------------------------------------------------------------- size limit, batches
def test_records_over_the_limit_are_too_large_errors(tmp_path):
    big = dict(REC, id="big", text=STORY * 2000)
    (tmp_path / "a.jsonl").write_bytes(_line(big) + _line(REC))
    (tmp_path / "b.csv").write_bytes(_csv([big, REC]))
    (tmp_path / "c.json").write_bytes(json.dumps([big, REC]).encode())
    for name in ("a.jsonl", "b.csv", "c.json"):
        items = _items(tmp_path / name, max_record_bytes=50_000)
        assert [i.error_type for i in items] == ["RecordTooLarge", None], name
        assert "limit 50,000" in items[0].error


def test_batches_are_capped_by_bytes():
    from inference.engines.items import Item

    items = [Item("f", i, size=s) for i, s in enumerate([10, 10, 100, 10, 10, 10])]
    sizes = [[i.size for i in b] for b in _batches(iter(items), 4, 100)]
    assert sizes == [[10, 10, 100], [10, 10, 10]]


# ---------------------------------------------------------------- output encoding
def test_a_record_that_cannot_be_encoded_becomes_an_error_record():
    line, error = encode_record({"id": "x\ud83d", "topic": {"label": "a", "score": 0.5}})
    rec = json.loads(line)
    assert error and rec["id"] == "x\\ud83d" and rec["error"]["type"] == "OutputError"
    line, error = encode_record({"id": "n", "topic": {"score": float("nan")}})
    assert error and json.loads(line)["error"]["type"] == "OutputError"
    line, error = encode_record({"id": "e\udc80", "error": {"type": "T", "message": "m\udc80"}})
    assert error and json.loads(line)["error"] == {"type": "T", "message": "m\\udc80"}


# ---------------------------------------------------------------- the tagger
@pytest.fixture(scope="module")
def tagger(sample_bundles):
    return load_tagger([str(p) for p in sample_bundles.values()])


def test_all_paragraphs_flagged_says_so_and_reads_the_unfiltered_text(tagger):
    furniture = {"id": "f", "title": "", "paragraphs": ["المصدر: وكالة الأنباء", "اقرأ أيضاً:"]}
    rec = tagger.tag(article_from_record(furniture))
    assert rec["boilerplate"]["labels"] == ["boilerplate", "boilerplate"]
    assert rec["boilerplate"]["all_removed"] is True
    assert rec["topic"]["unfiltered"] is True
    story = tagger.tag(article_from_record(REC))
    assert "all_removed" not in story["boilerplate"] and "unfiltered" not in story["topic"]


def test_run_survives_surrogates_and_writes_one_line_each(tagger, tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"text": "خبر \ud83d"}).encode() + b"\n", _line(REC), b"\xff\xfe\n"]
    path.write_bytes(b"".join(lines))
    summary = run_tagging(tagger, path, tmp_path / "out.jsonl", progress=False)
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert summary["records"] == 3 and summary["errors"] == 2 and len(out) == 3
    assert out[1]["id"] == "a1" and "error" not in out[1]


# ---------------------------------------------------------------- resume against the output
def test_resume_checks_the_output_against_its_checkpoint(tagger, tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(_line(dict(REC, id=f"a{i}")) for i in range(12)))
    out = tmp_path / "out.jsonl"
    run_tagging(tagger, path, out, batch_size=5, progress=False)
    full = out.read_bytes()
    out.unlink()  # deleted output: refused, not "records 12, resumed_from 12"
    with pytest.raises(ResumeError, match="does not exist"):
        run_tagging(tagger, path, out, resume=True, progress=False)
    out.write_bytes(full[:-40])  # shorter than the checkpoint
    with pytest.raises(ResumeError, match="fewer than"):
        run_tagging(tagger, path, out, resume=True, progress=False)
    out.write_bytes(full.replace(b'"a11"', b'"zz1"'))  # last checkpointed line changed
    with pytest.raises(ResumeError, match="last checkpointed line"):
        run_tagging(tagger, path, out, resume=True, progress=False)
    args = ["tag", "--input", str(path), "--output", str(out), "--resume"]
    models = [a for p in tagger.bundles.values() for a in ("--model", str(p.path))]
    assert main([*args, *models]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # a fresh run over the stale checkpoint starts clean
    summary = run_tagging(tagger, path, out, batch_size=5, progress=False)
    assert summary["resumed_from"] == 0 and out.read_bytes() == full


def test_resume_refuses_an_output_it_did_not_write(tagger, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(_line(REC))
    (tmp_path / "out.jsonl").write_text('{"id": "someone else"}\n')
    with pytest.raises(ResumeError, match="no checkpoint"):
        run_tagging(tagger, path, tmp_path / "out.jsonl", resume=True, progress=False)
    # nothing there yet: --resume simply starts
    summary = run_tagging(tagger, path, tmp_path / "new.jsonl", resume=True, progress=False)
    assert summary["records"] == 1


# ---------------------------------------------------------------- the CLI: user errors
def test_user_errors_are_one_line_exit_2(tagger, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "in.jsonl").write_bytes(_line(REC))
    (tmp_path / "folder").mkdir()
    (tmp_path / "bad.yaml").write_text("stance_targets: [a\n")
    models = [a for p in tagger.bundles.values() for a in ("--model", str(p.path))]
    tag = ["tag", *models, "--input", "in.jsonl"]
    cases = [
        [*tag, "--output", "folder"],
        [*tag, "--output", "o.jsonl", "--config", "bad.yaml"],
        [*tag, "--output", "o.jsonl", "--max-record-bytes", "0"],
        ["runs", "--experiment", "nope"],  # no store here: says so, creates none
        ["train", "--config", "bad.yaml"],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and len(err.splitlines()) <= 4, (argv, err)  # click: 4
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "folder.ckpt.json").exists()


def test_csv_stray_quote_before_quoted_multiline_rows_costs_one_record(tmp_path):
    rows = [dict(ONE_LINE, id=f"m{i}", text=f"فقرة {i}\nفقرة ثانية") for i in range(4)]
    body = _csv(rows).split(b"\n")  # header, then each row over two lines
    lines = [*body[:3], b'stray,"never closed,x', *body[3:]]
    path = tmp_path / "stray_multi.csv"
    path.write_bytes(b"\n".join(lines))
    items = _items(path)
    kinds = [i.article.id if i.article else i.error_type for i in items]
    assert kinds == ["m0", "CSVError", "m1", "m2", "m3"]
    assert items[4].article.paragraphs == ["فقرة 3", "فقرة ثانية"]
