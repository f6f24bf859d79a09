"""Readers: every supported format, field aliases, Windows-1256, and bad input that loses nothing."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference.engines.readers import InputError, ReadStats, iter_articles, iter_items
from inference.errors import RecordError
from inference.text.schema import article_from_record

STORY = ["أعلنت الوزارة اليوم عن خطة جديدة لدعم المزارعين.", "", "المصدر: وكالة الأنباء"]
RECORD = {
    "id": "a1",
    "url": "https://x.example/a1",
    "source": "x",
    "title": "خطة",
    "paragraphs": STORY,
}


def _jsonl(path: Path, records: list, opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write((rec if isinstance(rec, str) else json.dumps(rec, ensure_ascii=False)) + "\n")
    return path


def _read(path, **kw):
    stats = ReadStats()
    items = list(iter_items(path, stats=stats, **kw))
    return items, stats


def test_jsonl_and_gzip(tmp_path):
    for name, opener in (("a.jsonl", open), ("a.jsonl.gz", gzip.open)):
        items, stats = _read(_jsonl(tmp_path / name, [RECORD], opener))
        assert [i.article.id for i in items] == ["a1"]
        assert items[0].article.paragraphs == STORY
        assert (stats.read, stats.ok, stats.rejected) == (1, 1, 0)


def test_text_body_is_split_on_newlines_empty_kept(tmp_path):
    rec = {"id": "t", "text": "سطر أول\n\nسطر ثالث"}
    (item,), _ = _read(_jsonl(tmp_path / "a.jsonl", [rec]))
    assert item.article.paragraphs == ["سطر أول", "", "سطر ثالث"]


def test_parquet_and_csv(tmp_path):
    rows = [dict(RECORD, id=f"p{i}") for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    items, stats = _read(tmp_path / "a.parquet")
    assert [i.article.id for i in items] == ["p0", "p1", "p2"]
    assert items[0].article.paragraphs == STORY
    with open(tmp_path / "a.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "title", "text", "label"])
        writer.writeheader()
        writer.writerow(
            {"id": "c1", "title": "عنوان", "text": "فقرة\nفقرة ثانية", "label": "sports"}
        )
        writer.writerow({"id": "c2", "title": "عنوان", "text": "", "label": "sports"})
    items, stats = _read(tmp_path / "a.csv")
    assert items[0].article.paragraphs == ["فقرة", "فقرة ثانية"]
    assert items[0].article.label == "sports"
    # A CSV row's line is the physical line it starts on (row c1 spans lines 2-3).
    assert items[1].article is None and items[1].line == 4 and "no body" in items[1].error
    assert (stats.read, stats.ok, stats.rejected) == (2, 1, 1)


def test_txt_folder(tmp_path):
    folder = tmp_path / "arch" / "site"
    folder.mkdir(parents=True)
    (folder / "one.txt").write_text("فقرة أولى\nفقرة ثانية\n", "utf-8")
    (folder / "two.txt").write_text("\ufeffقصة أخرى", "utf-8")
    items, stats = _read(tmp_path / "arch")
    assert [i.article.id for i in items] == ["one", "two"]
    assert items[0].article.paragraphs == ["فقرة أولى", "فقرة ثانية", ""]
    assert items[1].article.paragraphs == ["قصة أخرى"]
    assert items[0].article.source == "site"


def test_news_please_and_trafilatura_fields(tmp_path):
    news_please = {
        "maintext": "نص الخبر\nفقرة",
        "date_publish": "2024-01-02 10:00:00",
        "source_domain": "site.example",
        "title": "ع",
        "url": "https://site.example/n",
    }
    trafilatura = {
        "text": "نص\nآخر",
        "hostname": "t.example",
        "categories": ["رياضة"],
        "source": "https://t.example/x",
        "date": "2024-03-04",
        "title": "ت",
    }
    (tmp_path / "np.json").write_text(json.dumps(news_please, ensure_ascii=False), "utf-8")
    (tmp_path / "tr.json").write_text(json.dumps([trafilatura], ensure_ascii=False), "utf-8")
    a = next(iter_articles(tmp_path / "np.json"))
    assert (a.source, a.published, a.paragraphs) == (
        "site.example",
        "2024-01-02 10:00:00",
        ["نص الخبر", "فقرة"],
    )
    assert a.id.startswith("h-")  # derived from the URL
    b = next(iter_articles(tmp_path / "tr.json"))
    assert (b.source, b.url, b.section, b.published) == (
        "t.example",
        "https://t.example/x",
        "رياضة",
        "2024-03-04",
    )


def test_derived_id_is_stable():
    rec = {"url": "https://x.example/1", "text": "نص"}
    assert article_from_record(rec).id == article_from_record(dict(rec)).id


def test_windows_1256_is_detected(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_bytes((json.dumps(RECORD, ensure_ascii=False) + "\n").encode("cp1256"))
    items, stats = _read(path)
    assert items[0].article.paragraphs == STORY
    assert stats.encodings[str(path)] == "cp1256"


def test_windows_1256_rejected_when_utf8_demanded(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_bytes((json.dumps(RECORD, ensure_ascii=False) + "\n").encode("cp1256"))
    items, stats = _read(path, encoding="utf-8")
    assert items[0].article is None and "not valid utf-8" in items[0].error
    assert stats.rejected == 1


def test_undecodable_file_says_so_per_line(tmp_path, caplog):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b"caf\xe9 cr\xe8me br\xfbl\xe9e " * 50 + b"\n" + b'{"id": "x"}\n')
    items, stats = _read(path)  # neither UTF-8 nor cp1256: read as UTF-8, line by line
    assert "neither UTF-8 nor Windows-1256" in caplog.text
    assert stats.read == 2 and "not valid utf-8" in items[0].error
    assert "no body" in items[1].error


def test_utf8_file_with_a_damaged_line_stays_utf8(tmp_path, caplog):
    path = tmp_path / "damaged.jsonl"
    good = json.dumps(RECORD, ensure_ascii=False).encode()
    path.write_bytes(b"caf\xe9 cr\xe8me br\xfbl\xe9e " * 50 + b"\n" + good + b"\n")
    items, stats = _read(path)
    assert stats.encodings[str(path)] == "utf-8" and "undecodable bytes" in caplog.text
    assert "not valid utf-8" in items[0].error
    assert items[1].article.paragraphs == STORY  # not cp1256 mojibake


def test_bad_records_are_reported_with_file_and_line(tmp_path):
    lines = [
        RECORD,
        "{not json",
        {"id": "nobody", "title": "t"},
        {"id": "x", "paragraphs": "str"},
        {"id": "y", "text": 5},
        [1, 2],
        {"id": "z", "text": "نص", "labels": ["content", "x"]},
        dict(RECORD, id="last"),
    ]
    path = _jsonl(tmp_path / "bad.jsonl", lines)
    items, stats = _read(path)
    assert (stats.read, stats.ok, stats.rejected) == (8, 2, 6)
    errors = {i.line: i.error for i in items if i.article is None}
    assert "invalid JSON" in errors[2]
    assert "no body" in errors[3]
    assert "'paragraphs' must be a list" in errors[4]
    assert "'text' must be a string" in errors[5]
    assert "must be a JSON object" in errors[6]
    assert "'labels'" in errors[7]
    assert all(r["where"].startswith(str(path)) for r in stats.rejections)
    assert [i.article.id for i in items if i.article] == ["a1", "last"]


def test_labels_must_align_with_paragraphs():
    with pytest.raises(RecordError, match="2 entries for 3 paragraphs"):
        article_from_record(dict(RECORD, labels=["content", None]))


def test_empty_file_and_missing_path(tmp_path):
    (tmp_path / "empty.jsonl").write_text("", "utf-8")
    items, stats = _read(tmp_path / "empty.jsonl")
    assert items == [] and stats.read == 0
    with pytest.raises(InputError, match="not found"):
        list(iter_items(tmp_path / "nope.jsonl"))
    with pytest.raises(InputError, match="unsupported"):
        (tmp_path / "a.xml").write_text("<a/>")
        list(iter_items(tmp_path / "a.xml"))


def test_five_megabyte_article(tmp_path):
    para = "هذه فقرة طويلة من خبر كبير جدا تتكرر لاختبار الحجم. " * 40
    rec = {"id": "big", "paragraphs": [para] * 1400}
    path = _jsonl(tmp_path / "big.jsonl", [rec, RECORD])
    assert path.stat().st_size > 5_000_000
    items, stats = _read(path)
    assert [i.article.id for i in items] == ["big", "a1"]
    assert len(items[0].article.paragraphs) == 1400


def test_claim_only_record_uses_claim_as_text():
    art = article_from_record({"id": "c", "claim": "ادعاء قصير", "fake_flag": "1"})
    assert art.paragraphs == ["ادعاء قصير"] and art.claim == "ادعاء قصير"


@pytest.mark.data
def test_every_shared_file_loads_as_is(shared_data):
    files = sorted(shared_data.glob("*/*.jsonl"))
    assert files
    for path in files:
        stats = ReadStats()
        for n, _ in enumerate(iter_items(path, stats=stats)):
            if n >= 3000:
                break
        assert stats.ok > 0, path
        assert stats.read == stats.ok + stats.rejected
        # The only rejections in the reference data are records with an empty body.
        assert all("no body" in r["reason"] for r in stats.rejections), (path, stats.rejections[:3])
