"""Streaming readers for parsed-article archives: JSONL(.gz), JSON, Parquet, CSV, folders of .txt/.json.

Every reader yields one :class:`Item` per input record, in input order: either an ``Article`` or the
reason it was rejected, with its file and line (or row). Nothing is dropped silently: ``ReadStats``
counts read = ok + rejected and keeps the first rejections for the manifest / error output.

What one record is: a non-blank line of a JSON Lines file; a CSV row (``csv_rows``: quoted fields
may span lines, a whitespace-only row is none); an element of a JSON array (a JSON object alone is
one record; a ``.json`` file that is not valid JSON is read as JSON Lines); a Parquet row; a
``.txt`` file. A UTF-8 byte-order mark at the start of a file is skipped in every format. A
decode error, bad JSON, a CSV error, a lone surrogate or a record over ``max_record_bytes`` is an
error record for that record only, and reading goes on with the next.

Memory stays bounded: files are read line by line (CSV row by row, Parquet batch by batch), and a
record over the limit is read through without being kept. JSON documents are read whole.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

from inference.engines.csv_rows import iter_csv
from inference.engines.items import (
    BOM,
    DEFAULT_MAX_RECORD_BYTES,
    Item,
    ReadStats,
    cell,
    error_item,
    record_item,
    salvage_id,
    table_row_item,
    too_large,
)
from inference.text.schema import Article

__all__ = [
    "BOM",
    "DEFAULT_MAX_RECORD_BYTES",
    "InputError",
    "Item",
    "ReadStats",
    "detect_encoding",
    "iter_articles",
    "iter_items",
    "jsonl_items",
    "jsonl_line_item",
    "list_input_files",
]

log = logging.getLogger(__name__)

# Read line by line (one record per line); the dataset builder splits these files the same way.
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
SUPPORTED = (*JSONL_SUFFIXES, ".json", ".json.gz", ".parquet", ".csv", ".txt")
SNIFF_BYTES = 1 << 16
LINE_CHUNK = 1 << 20


class InputError(ValueError):
    """The input as a whole cannot be read (missing path, unknown format or encoding name)."""


def detect_encoding(head: bytes, path: str, encoding: str = "auto") -> str:
    """Return 'utf-8' or 'cp1256' for a file starting with ``head`` (InputError for an unknown
    ``encoding`` name).

    Windows-1256 is what older Arabic sites and Windows exports still produce. Arabic text in it is
    never valid UTF-8 (its letters are bytes 0xC1-0xFE standing alone), so a failed UTF-8 decode plus
    a clean cp1256 decode that yields Arabic letters identifies it reliably -- unless the head is
    mostly valid UTF-8 with a few broken bytes: that is a UTF-8 file with damaged records, read as
    UTF-8 with those records as errors. Anything else is read as UTF-8 too, with a warning: every
    line or row that does not decode is an error record, never the whole file.
    """
    if encoding not in ("auto", "utf-8", "cp1256"):
        raise InputError(f"{path}: unsupported encoding {encoding!r} (use auto, utf-8 or cp1256)")
    if encoding != "auto":
        return encoding
    if head.startswith(BOM):
        return "utf-8"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a multi-byte character cut by the sniff window
            return "utf-8"
    as_utf8 = head.decode("utf-8", "replace")
    broken = as_utf8.count("\ufffd")
    valid = sum(not ch.isascii() for ch in as_utf8) - broken
    # Arabic in cp1256 almost never forms a valid UTF-8 sequence: valid ones mean UTF-8 text.
    if valid >= 2 * broken or valid >= 32:
        log.warning("%s: UTF-8 with undecodable bytes; those records become errors", path)
        return "utf-8"
    try:
        decoded = head.decode("cp1256")
    except UnicodeDecodeError:
        decoded = ""
    if sum("\u0600" <= ch <= "\u06ff" for ch in decoded) >= 3:
        log.warning("%s: not UTF-8; decoding as Windows-1256 (cp1256)", path)
        return "cp1256"
    log.warning(
        "%s: text is neither UTF-8 nor Windows-1256 Arabic; reading it as UTF-8, records that do "
        "not decode become errors (convert the file to UTF-8, or pass encoding='cp1256')",
        path,
    )
    return "utf-8"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _sniff(path: Path, encoding: str) -> str:
    head = b""
    with _open_binary(path) as fh:
        try:  # in small reads: a truncated gzip keeps what it had before the break
            while len(head) < SNIFF_BYTES and (chunk := fh.read(8192)):
                head += chunk
        except (EOFError, zlib.error):
            pass  # the records before the break are read, then one error record says where
    return detect_encoding(head[:SNIFF_BYTES], str(path), encoding)


def read_line(fh, limit: int) -> tuple[bytes | None, int]:
    """The next line of a binary file (b"" at its end) and its length; a line longer than
    ``limit`` is read through to its end without being kept, and comes back as None."""
    raw = fh.readline(limit + 1)
    if len(raw) <= limit or raw.endswith(b"\n"):
        return raw, len(raw)
    size = len(raw)
    while chunk := fh.readline(LINE_CHUNK):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return None, size


def jsonl_line_item(raw: bytes, enc: str, file: str, lineno: int) -> Item | None:
    """One JSONL line as an :class:`Item` (None for a blank line). Shared by every engine."""
    if lineno == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if not raw.strip():
        return None
    try:
        text = raw.decode(enc).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        reason = f"line is not valid {enc} ({exc.reason} at byte {exc.start})"
        item = error_item(file, lineno, reason, "EncodingError", len(raw))
        item.record_id = salvage_id(raw.decode(enc, "replace"), json.loads)
        return item
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON: {exc.msg} at column {exc.colno}"
        return error_item(file, lineno, reason, "JSONDecodeError", len(raw))
    except (ValueError, RecursionError) as exc:  # nesting too deep, huge integers
        return error_item(file, lineno, f"invalid JSON: {exc}", type(exc).__name__, len(raw))
    return record_item(record, file, lineno, len(raw))


def jsonl_items(
    fh,
    enc: str,
    file: str,
    first_line: int = 1,
    end: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    start: int = 0,
) -> Iterator[Item]:
    """The records of the JSON Lines in ``fh`` from its position (``start``) up to byte ``end``."""
    pos, lineno = start, first_line
    while end is None or pos < end:
        raw, size = read_line(fh, max_record_bytes)
        if not size:
            return
        if raw is None:
            yield too_large(file, lineno, size, max_record_bytes)
        elif (item := jsonl_line_item(raw, enc, file, lineno)) is not None:
            yield item
        pos += size
        lineno += 1


def _iter_jsonl(path: Path, encoding: str, limit: int) -> Iterator[Item]:
    enc = _sniff(path, encoding)
    with _open_binary(path) as fh:
        yield from jsonl_items(fh, enc, str(path), max_record_bytes=limit)


def _iter_json(path: Path, encoding: str, limit: int) -> Iterator[Item]:
    """A single JSON document: one object (news-please / trafilatura output) or an array of them.

    One record per array element (a single object is one record). A file that is not one valid
    JSON document is read as JSON Lines: one record per non-blank line, bad lines as errors."""
    enc = _sniff(path, encoding)
    with _open_binary(path) as fh:
        data = fh.read()
    try:
        doc = json.loads(data.removeprefix(BOM).decode(enc))
    except (ValueError, RecursionError):  # decode and JSON errors: JSON Lines saved as .json
        del data
        yield from _iter_jsonl(path, encoding, limit)
        return
    del data
    records = doc if isinstance(doc, list) else [doc]
    for i, record in enumerate(records, start=1):
        item = record_item(record, str(path), i)
        yield too_large(str(path), i, item.size, limit) if item.size > limit else item


def _iter_parquet(path: Path, limit: int) -> Iterator[Item]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            item = table_row_item({k: cell(v) for k, v in record.items()}, str(path), row)
            yield too_large(str(path), row, item.size, limit) if item.size > limit else item


def _iter_txt(path: Path, encoding: str, limit: int) -> Iterator[Item]:
    size = path.stat().st_size
    if size > limit:
        yield too_large(str(path), 1, size, limit)
        return
    enc = _sniff(path, encoding)
    try:
        text = path.read_bytes().removeprefix(BOM).decode(enc)
    except UnicodeDecodeError as exc:
        yield error_item(str(path), 1, f"file is not valid {enc}: {exc.reason}", "EncodingError")
        return
    record = {"id": path.stem, "text": text, "source": path.parent.name}
    yield record_item(record, str(path), 1, size)


def _iter_format(path: Path, encoding: str, limit: int) -> Iterator[Item]:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        yield from _iter_jsonl(path, encoding, limit)
    elif name.endswith((".json", ".json.gz")):
        yield from _iter_json(path, encoding, limit)
    elif name.endswith(".parquet"):
        yield from _iter_parquet(path, limit)
    elif name.endswith(".csv"):
        with _open_binary(path) as fh:
            yield from iter_csv(fh, _sniff(path, encoding), str(path), limit)
    elif name.endswith(".txt"):
        yield from _iter_txt(path, encoding, limit)
    else:
        raise InputError(f"{path}: unsupported input format (supported: {', '.join(SUPPORTED)})")


def _iter_file(path: Path, encoding: str, limit: int) -> Iterator[Item]:
    """The records of one file; a file that breaks off (truncated gzip, unreadable Parquet, an
    I/O error) ends with one error record saying where, and the next file is read."""
    last = 0
    try:
        for item in _iter_format(path, encoding, limit):
            last = item.line
            yield item
    except InputError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        message = f"file unreadable after record {last}: {type(exc).__name__}: {exc}"
        yield error_item(str(path), last + 1, message, "FileError")


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
    path: str | Path,
    encoding: str = "auto",
    stats: ReadStats | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[Item]:
    """Stream every record under ``path`` as an :class:`Item`, updating ``stats`` as it goes."""
    for file in list_input_files(path):
        if stats is not None and file.suffix != ".parquet":
            try:
                stats.encodings[str(file)] = _sniff(file, encoding)
            except (InputError, OSError, EOFError, zlib.error) as exc:
                kind = "EncodingError" if isinstance(exc, InputError) else "FileError"
                item = error_item(str(file), 0, str(exc), kind)
                stats.add(item)
                yield item
                continue
        for item in _iter_file(file, encoding, max_record_bytes):
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
