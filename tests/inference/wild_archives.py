"""Random archives from the wild for the property tests: valid articles mixed with random bytes,
truncated lines, BOMs, lone surrogates, wrong types, huge and empty records, in JSONL, CSV, JSON.

The generator knows what it wrote: ``Archive.expected`` has one entry per input record, in order,
counted here and never by the readers. What one record is, per format (the readers' contract):
- ``jsonl``: a line; a record never holds a newline and is never blank;
- ``csv``: a row after the header (``csv.writer`` quotes text with newlines: one row over several
  lines); a junk row holds no ``"`` (a stray quote makes rows merge, as in any CSV reader) and no
  newline;
- ``json``: an element of the array;
- ``json_lines``: JSON Lines saved as ``.json`` (not one JSON document: its first line is an article
  and there are two records at least), read line by line.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import dataclass

from hypothesis import strategies as st

BOM = b"\xef\xbb\xbf"
LIMIT = 20_000  # --max-record-bytes in the tests; HUGE records are over it
FORMATS = ("jsonl", "csv", "json", "json_lines")
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "json": ".json", "json_lines": ".json"}
HEADER = ["id", "title", "text", "paragraphs"]

words = st.lists(
    st.sampled_from("خبر الوزارة أعلنت اليوم خطة جديدة المصدر: وكالة اقرأ أيضاً الأسعار".split()),
    min_size=1,
    max_size=12,
).map(" ".join)


@dataclass
class Spec:
    """One record to write: its kind, its content, and what its output must be."""

    kind: str
    record: object = None  # a dict / JSON value, or raw bytes for junk
    rid: str | None = None  # the id its output record must carry (None: not checked)
    outcome: str = "any"  # "ok" (tagged), "error", "any"

    def __repr__(self) -> str:  # huge records stay readable in a failure report
        return f"Spec({self.kind}, {str(self.record)[:80]!r}, rid={self.rid}, {self.outcome})"


@st.composite
def specs(draw) -> Spec:
    kind = draw(
        st.sampled_from(
            ["valid", "valid", "noid", "junk", "truncated", "surrogate", "wrong", "huge", "empty"]
        )
    )
    title = draw(words)
    paragraphs = draw(st.lists(words, min_size=1, max_size=5))
    story = {"title": title, "text": "\n".join(paragraphs)}
    if kind == "valid":
        if draw(st.booleans()):
            story = {"title": title, "paragraphs": paragraphs}
        return Spec(kind, {"id": "", **story}, outcome="ok")
    if kind == "noid":
        return Spec(kind, story, outcome="ok")
    if kind == "junk":
        return Spec(kind, draw(st.binary(min_size=1, max_size=120)))
    if kind == "truncated":
        return Spec(kind, (story, draw(st.floats(0.0, 0.99))), outcome="error")
    if kind == "surrogate":
        cut = "\ud83d" if draw(st.booleans()) else "\udc80"
        record = {"text": paragraphs[0] + cut + " " + title}
        if draw(st.booleans()):
            record["id"] = ""
        return Spec(kind, record, outcome="error")
    if kind == "wrong":
        return Spec(kind, draw(st.integers(0, 7)), outcome="error")
    if kind == "huge":
        return Spec(
            kind, {"id": "", "title": title, "text": "كلمة " * (LIMIT // 4)}, outcome="error"
        )
    return Spec(kind, {}, outcome="error")  # empty


def _wrong(i: int, rid: str):
    """Records of the wrong shape or types, every one an error record."""
    return [
        {"id": rid, "text": 5},
        {"id": rid, "paragraphs": "not a list"},
        {"id": [1], "text": "نص"},
        {"id": rid, "title": {"a": 1}, "text": "نص"},
        [1, 2],
        7,
        "a string",
        None,
    ][i]


@dataclass
class Archive:
    fmt: str
    data: bytes
    expected: list[Spec]

    @property
    def suffix(self) -> str:
        return SUFFIX[self.fmt]


def _junk(raw: bytes, fmt: str) -> bytes:
    raw = raw.replace(b"\n", b"~")
    if fmt == "csv":
        raw = raw.replace(b'"', b"'")
    return raw if raw.removeprefix(BOM).strip() else b"z" + raw


def _line(spec: Spec, fmt: str) -> bytes:
    if spec.kind == "junk":
        return _junk(spec.record, fmt)
    if spec.kind == "truncated":
        story, frac = spec.record
        full = json.dumps(story, ensure_ascii=False).encode()
        return full[: max(1, int(len(full) * frac))]
    if spec.kind == "wrong":
        return json.dumps(_wrong(spec.record, spec.rid or "x")).encode()
    return json.dumps(spec.record).encode()  # \ud83d stays an escape: valid JSON, lone surrogate


def _csv_row(spec: Spec) -> bytes:
    if spec.kind == "junk":
        return _junk(spec.record, "csv")
    rec = spec.record
    if spec.kind == "truncated":  # a row cut short: its text column is missing
        rec = {"title": spec.record[0]["title"]}
    elif spec.kind == "wrong":
        rec = {"id": spec.rid, "paragraphs": ['["a", 1]', "[broken"][spec.record % 2]}
    elif spec.kind == "empty":
        rec = {}
    elif "paragraphs" in rec:
        rec = dict(rec, paragraphs=json.dumps(rec["paragraphs"], ensure_ascii=False))
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n").writerow(rec)
    # surrogatepass: a lone surrogate lands in the file as bytes that are not valid UTF-8
    return buf.getvalue().encode("utf-8", "surrogatepass").removesuffix(b"\n")


def _element(spec: Spec):
    if spec.kind in ("junk", "truncated"):  # inside a valid document: a string, not an object
        return spec.record.decode("latin-1") if spec.kind == "junk" else "cut"
    if spec.kind == "wrong":
        return _wrong(spec.record, spec.rid or "x")
    return spec.record


@st.composite
def archives(draw, fmt: str | None = None, max_records: int = 25, repeat: int = 1) -> Archive:
    """An archive; ``repeat``: the drawn records written that many times over (a longer run)."""
    fmt = fmt or draw(st.sampled_from(FORMATS))
    items = draw(st.lists(specs(), min_size=1, max_size=max_records))
    if fmt == "json_lines":  # an article first and two records at least: never one JSON document
        items = [Spec("valid", {"id": "", "title": "خبر", "text": "نص الخبر"}, outcome="ok")]
        items += draw(st.lists(specs(), min_size=1, max_size=max_records))
    items = [copy.deepcopy(spec) for _ in range(repeat) for spec in items]
    for i, spec in enumerate(items):
        if isinstance(spec.record, dict) and "id" in spec.record:
            spec.record["id"] = f"r{i}"
            # a record over the limit is never parsed: its error record is named file:line
            spec.rid = f"r{i}" if spec.kind != "huge" else None
        elif spec.kind == "wrong" and spec.record in (0, 1, 3):
            spec.rid = f"r{i}"
    if fmt == "json":
        data = json.dumps([_element(s) for s in items]).encode()
    elif fmt == "csv":
        data = b"\n".join([",".join(HEADER).encode(), *map(_csv_row, items)]) + b"\n"
    else:
        data = b"".join(_line(s, fmt) + b"\n" for s in items)
    if draw(st.booleans()):
        data = BOM + data
    return Archive(fmt, data, items)


def check_output(archive: Archive, out: list[dict], ordered: bool = True) -> None:
    """Exactly one output record per input record; ids and outcomes where the spec knows them."""
    expected = archive.expected
    assert len(out) == len(expected), (len(out), len(expected), [s.kind for s in expected])
    if ordered:
        pairs = list(zip(expected, out, strict=True))
    else:  # the Ray engine: by id where the record has one, the rest only counted
        by_id = {rec["id"]: rec for rec in out}
        pairs = [(s, by_id[s.rid]) for s in expected if s.rid is not None]
    for spec, rec in pairs:
        if spec.rid is not None:
            assert rec["id"] == spec.rid, (spec, rec)
        if spec.outcome == "ok":
            assert "error" not in rec, (spec, rec)
        elif spec.outcome == "error":
            assert "error" in rec, (spec, rec)
    errors = sum("error" in rec for rec in out)
    assert errors >= sum(s.outcome == "error" for s in expected)
