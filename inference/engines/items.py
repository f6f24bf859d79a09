"""Input records as the readers yield them: :class:`Item` (an article, or why a record was
rejected, with its file and line), :class:`ReadStats`, and the per-record helpers every format shares.

A record is whatever one input unit holds (a JSONL line, a CSV row, a JSON array element, a Parquet
row, a ``.txt`` file); whatever goes wrong with it -- bad JSON, a wrong type, a lone surrogate, a
size over the limit -- is that record's error only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inference.errors import RecordError
from inference.text.schema import MAX_RECORD_BYTES, Article, article_from_record

BOM = b"\xef\xbb\xbf"
# A record (JSONL line, CSV row, JSON array element, .txt file) larger than this becomes a "too
# large" error record without being parsed: ``khabar tag --max-record-bytes``, tagger config
# ``max_record_bytes``.
DEFAULT_MAX_RECORD_BYTES = MAX_RECORD_BYTES


@dataclass
class Item:
    """One input record: where it came from, and the article or the reason it was rejected."""

    file: str
    line: int
    article: Article | None = None
    error: str | None = None
    error_type: str | None = None
    record_id: str | None = None
    size: int = 0  # bytes of the record as read (an estimate for JSON and Parquet records)

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


def _text_size(article: Article) -> int:
    return 2 * (sum(map(len, article.paragraphs)) + len(article.title))


def record_item(record: Any, file: str, line: int, size: int | None = None) -> Item:
    """One parsed record as an :class:`Item`; whatever goes wrong is this record's error only."""
    rid = None
    if isinstance(record, dict) and record.get("id") is not None:
        rid = str(record.get("id"))
    try:
        article = article_from_record(record)
    except Exception as exc:  # RecordError, and anything unforeseen: one record, never the run
        kind = "RecordError" if isinstance(exc, RecordError) else type(exc).__name__
        return Item(file, line, error=str(exc), error_type=kind, record_id=rid, size=size or 0)
    return Item(file, line, article=article, record_id=rid, size=size or _text_size(article))


def error_item(file: str, line: int, message: str, kind: str, size: int = 0) -> Item:
    return Item(file, line, error=message, error_type=kind, size=size)


def salvage_id(text: str, parse) -> str | None:
    """The id of a record whose bytes did not decode, read from its text decoded with
    replacement characters; None unless it parses and the id itself came through intact."""
    try:
        record = parse(text)
    except Exception:  # whatever the damage, this is a best effort for the error record's id
        return None
    rid = record.get("id") if isinstance(record, dict) else None
    if isinstance(rid, (str, int)) and not isinstance(rid, bool) and "\ufffd" not in str(rid):
        return str(rid)
    return None


def too_large(file: str, line: int, size: int, limit: int) -> Item:
    message = f"record too large: {size:,} bytes (limit {limit:,}; see --max-record-bytes)"
    return error_item(file, line, message, "RecordTooLarge", size)


def cell(value: Any) -> Any:
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
            except (ValueError, RecursionError):
                raise RecordError(f"field {key!r} is not a JSON list") from None
    return record


def table_row_item(record: dict, file: str, row: int, size: int | None = None) -> Item:
    """A CSV/Parquet row: list columns arrive JSON-encoded, then the usual record checks."""
    try:
        record = _decode_list_columns(record)
    except RecordError as exc:
        item = error_item(file, row, str(exc), "RecordError", size or 0)
        item.record_id = None if record.get("id") is None else str(record["id"])
        return item
    return record_item(record, file, row, size)
