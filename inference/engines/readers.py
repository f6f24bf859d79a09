"""Streaming readers for parsed-article archives: JSONL(.gz), JSON, Parquet, CSV, folders of .txt/.json.

Every reader yields one :class:`Item` per input record, in input order: either an ``Article`` or the
reason it was rejected, with its file and line (or row). Nothing is dropped silently: ``ReadStats``
counts read = ok + rejected and keeps the first rejections for the manifest / error output.
Memory stays bounded: files are read line by line (Parquet batch by batch).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import RecordError
from inference.text.schema import Article, article_from_record

log = logging.getLogger(__name__)

# Read line by line (one record per line); the dataset builder splits these files the same way.
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
SUPPORTED = (*JSONL_SUFFIXES, ".json", ".json.gz", ".parquet", ".csv", ".txt")
SNIFF_BYTES = 1 << 16


class InputError(ValueError):
    """The input as a whole cannot be read (missing file, unknown format, undecodable encoding)."""


@dataclass
class Item:
    """One input record: where it came from, and the article or the reason it was rejected."""

    file: str
    line: int
    article: Article | None = None
    error: str | None = None
    error_type: str | None = None
    record_id: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class ReadStats:
    read: int = 0
    ok: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)
    max_kept: int = 1000

    def add(self, item: Item) -> None:
        self.read += 1
        if item.article is not None:
            self.ok += 1
            return
        self.rejected += 1
        if len(self.rejections) < self.max_kept:
            self.rejections.append(
                {"where": item.where, "id": item.record_id, "reason": item.error}
            )

    def as_dict(self) -> dict:
        return {
            "read": self.read,
            "ok": self.ok,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "encodings": self.encodings,
        }


def detect_encoding(head: bytes, path: str, encoding: str = "auto") -> str:
    """Return 'utf-8' or 'cp1256' for a file starting with ``head``; raise InputError otherwise.

    Windows-1256 is what older Arabic sites and Windows exports still produce. Arabic text in it is
    never valid UTF-8 (its letters are bytes 0xC1-0xFE standing alone), so a failed UTF-8 decode plus
    a clean cp1256 decode that yields Arabic letters identifies it reliably.
    """
    if encoding not in ("auto", "utf-8", "cp1256"):
        raise InputError(f"{path}: unsupported encoding {encoding!r} (use auto, utf-8 or cp1256)")
    if encoding != "auto":
        return encoding
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a multi-byte character cut by the sniff window
            return "utf-8"
    try:
        decoded = head.decode("cp1256")
    except UnicodeDecodeError:
        decoded = ""
    if sum("\u0600" <= ch <= "\u06ff" for ch in decoded) >= 3:
        log.warning("%s: not UTF-8; decoding as Windows-1256 (cp1256)", path)
        return "cp1256"
    raise InputError(
        f"{path}: text is neither UTF-8 nor Windows-1256 Arabic; convert it to UTF-8 "
        "or pass encoding='cp1256' explicitly"
    )


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _sniff(path: Path, encoding: str) -> str:
    with _open_binary(path) as fh:
        head = fh.read(SNIFF_BYTES)
    return detect_encoding(head, str(path), encoding)


def _item_from_record(record: Any, file: str, line: int) -> Item:
    rid = (
        str(record.get("id")) if isinstance(record, dict) and record.get("id") is not None else None
    )
    try:
        return Item(file, line, article=article_from_record(record), record_id=rid)
    except RecordError as exc:
        return Item(file, line, error=str(exc), error_type="RecordError", record_id=rid)


def _error(file: str, line: int, message: str, kind: str) -> Item:
    return Item(file, line, error=message, error_type=kind)


def jsonl_line_item(raw: bytes, enc: str, file: str, lineno: int) -> Item | None:
    """One JSONL line as an :class:`Item` (None for a blank line). Shared by every engine."""
    if not raw.strip():
        return None
    try:
        text = raw.decode(enc).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        reason = f"line is not valid {enc} ({exc.reason} at byte {exc.start})"
        return _error(file, lineno, reason, "EncodingError")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON: {exc.msg} at column {exc.colno}"
        return _error(file, lineno, reason, "JSONDecodeError")
    return _item_from_record(record, file, lineno)


def _iter_jsonl(path: Path, encoding: str) -> Iterator[Item]:
    enc = _sniff(path, encoding)
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            item = jsonl_line_item(raw, enc, str(path), lineno)
            if item is not None:
                yield item


def _iter_json(path: Path, encoding: str) -> Iterator[Item]:
    """A single JSON document: one object (news-please / trafilatura output) or an array of them."""
    enc = _sniff(path, encoding)
    with _open_binary(path) as fh:
        data = fh.read()
    try:
        doc = json.loads(data.decode(enc))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # JSON Lines saved with a .json name are common; fall back to line-by-line reading.
        if isinstance(exc, json.JSONDecodeError) and b"\n" in data.strip():
            yield from _iter_jsonl(path, encoding)
            return
        yield _error(str(path), 1, f"invalid JSON document: {exc}", type(exc).__name__)
        return
    records = doc if isinstance(doc, list) else [doc]
    for i, record in enumerate(records, start=1):
        yield _item_from_record(record, str(path), i)


def _cell(value: Any) -> Any:
    # CSV and Parquet store lists (paragraphs, labels) as JSON strings or arrays.
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value


def _decode_list_columns(record: dict) -> dict:
    for key in ("paragraphs", "labels", "kinds", "spans"):
        value = record.get(key)
        if isinstance(value, str) and value.startswith("["):
            try:
                record[key] = json.loads(value)
            except json.JSONDecodeError:
                raise RecordError(f"field {key!r} is not a JSON list") from None
    return record


def _table_row_item(record: dict, file: str, row: int) -> Item:
    """A CSV/Parquet row: list columns arrive JSON-encoded, then the usual record checks."""
    try:
        record = _decode_list_columns(record)
    except RecordError as exc:
        return _error(file, row, str(exc), "RecordError")
    return _item_from_record(record, file, row)


def _iter_csv(path: Path, encoding: str) -> Iterator[Item]:
    enc = _sniff(path, encoding)
    csv.field_size_limit(1 << 30)
    with _open_binary(path) as raw, io.TextIOWrapper(raw, encoding=enc, newline="") as fh:
        reader = csv.DictReader(fh)
        row = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield _error(
                    str(path), reader.line_num, f"unreadable CSV row: {exc}", type(exc).__name__
                )
                return
            row += 1
            record = {k: (v if v != "" else None) for k, v in record.items() if k is not None}
            yield _table_row_item(record, str(path), row)


def _iter_parquet(path: Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            yield _table_row_item({k: _cell(v) for k, v in record.items()}, str(path), row)


def _iter_txt(path: Path, encoding: str) -> Iterator[Item]:
    enc = _sniff(path, encoding)
    try:
        text = path.read_bytes().decode(enc).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        yield _error(str(path), 1, f"file is not valid {enc}: {exc.reason}", "EncodingError")
        return
    yield _item_from_record(
        {"id": path.stem, "text": text, "source": path.parent.name}, str(path), 1
    )


def _iter_file(path: Path, encoding: str) -> Iterator[Item]:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        yield from _iter_jsonl(path, encoding)
    elif name.endswith((".json", ".json.gz")):
        yield from _iter_json(path, encoding)
    elif name.endswith(".parquet"):
        yield from _iter_parquet(path)
    elif name.endswith(".csv"):
        yield from _iter_csv(path, encoding)
    elif name.endswith(".txt"):
        yield from _iter_txt(path, encoding)
    else:
        raise InputError(f"{path}: unsupported input format (supported: {', '.join(SUPPORTED)})")


def list_input_files(path: str | Path) -> list[Path]:
    """The files behind an input path: the file itself, or a folder's supported files, sorted."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(SUPPORTED))
    if not files:
        raise InputError(f"{p}: folder has no input files ({', '.join(SUPPORTED)})")
    return files


def iter_items(
    path: str | Path, encoding: str = "auto", stats: ReadStats | None = None
) -> Iterator[Item]:
    """Stream every record under ``path`` as an :class:`Item`, updating ``stats`` as it goes."""
    for file in list_input_files(path):
        if stats is not None and file.suffix != ".parquet":
            try:
                stats.encodings[str(file)] = _sniff(file, encoding)
            except InputError as exc:
                item = _error(str(file), 0, str(exc), "EncodingError")
                stats.add(item)
                yield item
                continue
        for item in _iter_file(file, encoding):
            if stats is not None:
                stats.add(item)
            yield item


def iter_articles(
    path: str | Path, encoding: str = "auto", stats: ReadStats | None = None
) -> Iterator[Article]:
    """Stream the valid articles under ``path``; rejections are logged and counted in ``stats``."""
    for item in iter_items(path, encoding, stats):
        if item.article is None:
            log.warning("%s: record rejected: %s", item.where, item.error)
            continue
        yield item.article
