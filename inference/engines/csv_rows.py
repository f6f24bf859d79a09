"""CSV read row by row from bytes, so that one bad row costs one error record, never the rest.

``csv.DictReader`` over a decoded text stream stops at the first decode error, and after an
unbalanced quote it swallows the rest of the file into one field. Here the file is split into
*rows* on the bytes first, with the quote rules of the ``csv`` module's default dialect (a field
that starts with ``"`` is quoted until a ``"`` not followed by another ``"``; a ``"`` anywhere else
is a plain character; a row ends at a ``\\n`` outside quotes). Each row is then decoded and parsed
on its own, so a decode error, a ``csv.Error`` or an oversized row is an error record for that row
and reading goes on with the next.

A row counts as one input record; a row of only whitespace is no record (like a blank JSONL line).
A stray quote shows as a quoted field still open at the end of the file, or as one that closes on a
later line with text glued to its closing quote (what a stray quote does to the next row's quoted
field; no CSV writer produces it): the row's first line becomes an error record and reading starts
again on the next line. After ``MAX_RESYNCS`` restarts from the end of the file (each one scans to
it), the file is given up with one error record that says how many lines were not read.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from inference.engines.items import (
    BOM,
    Item,
    error_item,
    salvage_id,
    table_row_item,
    too_large,
)

CHUNK = 1 << 20  # bytes read at once: a 50 MB one-line row is scanned without holding it twice
MAX_RESYNCS = 5
QUOTE, COMMA, CR = ord('"'), ord(","), ord("\r")
START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED, DESYNC = range(5)


@dataclass
class Row:
    """One CSV row: its first physical line, its bytes (None when over the size limit) and size.

    ``unterminated``: a quoted field was still open at the end of the file (``data`` holds the
    row's first line only). ``lost_lines``: set on the last row of a file given up on."""

    line: int
    data: bytes | None
    size: int
    unterminated: bool = False
    lost_lines: int = 0


def scan(chunk: bytes, state: int, strict: bool = False) -> int:
    """The quote state after ``chunk`` (no newline in it) given the state before it.

    ``strict``: text glued to a closing quote is DESYNC (for quoted fields from earlier lines)."""
    i, n = 0, len(chunk)
    while i < n:
        if state == QUOTED:
            j = chunk.find(b'"', i)
            if j < 0:
                return QUOTED
            i, state = j + 1, QUOTE_IN_QUOTED
        elif state == QUOTE_IN_QUOTED:
            if chunk[i] == QUOTE:  # "" inside a quoted field: a literal quote
                i, state = i + 1, QUOTED
            elif chunk[i] == COMMA:
                i, state = i + 1, START
            elif strict and chunk[i] != CR:
                return DESYNC
            else:  # text after the closing quote belongs to the field (non-strict csv)
                state = UNQUOTED
        elif state == START:
            if chunk[i] == QUOTE:
                i, state = i + 1, QUOTED
            else:
                state = UNQUOTED
        else:
            j = chunk.find(b",", i)
            if j < 0:
                return UNQUOTED
            i, state = j + 1, START
    return state


def _count_lines(fh) -> int:
    """Non-blank physical lines from the current position to the end of the file."""
    count, pending = 0, False
    while chunk := fh.readline(CHUNK):
        pending = pending or bool(chunk.strip())
        if chunk.endswith(b"\n"):
            count += pending
            pending = False
    return count + pending


def iter_rows(fh, max_bytes: int, first_line: int = 1) -> Iterator[Row]:
    """The rows of a seekable binary file from its current position, in order."""
    line, resyncs = first_line, 0
    while True:
        start_line, state, parts, size = line, START, [], 0
        first_end, first_part = None, b""  # where the row's first physical line ends; its bytes
        while chunk := fh.readline(CHUNK):
            size += len(chunk)
            if size <= max_bytes:
                parts.append(chunk)
            else:
                parts = []
            whole_line = chunk.endswith(b"\n")
            state = scan(chunk[:-1] if whole_line else chunk, state, first_end is not None)
            if state == DESYNC:
                break
            if not whole_line:
                continue
            line += 1
            if first_end is None:
                first_end, first_part = fh.tell(), b"".join(parts)
            if state != QUOTED:
                break
        if size == 0:
            return
        if state == DESYNC:  # a stray quote on the row's first line: skip that line only
            fh.seek(first_end)
            line = start_line + 1
            yield Row(start_line, first_part, len(first_part), True)
            continue
        if state != QUOTED:
            data = b"".join(parts) if size <= max_bytes else None
            if data is None or data.strip():
                yield Row(start_line, data, size)
            continue
        # A quoted field open at the end of the file: a stray quote on the row's first line.
        if first_end is None:  # that line is the file's last, with no newline
            yield Row(start_line, b"".join(parts) if size <= max_bytes else None, size, True)
            return
        resyncs += 1
        fh.seek(first_end)
        line = start_line + 1
        lost = _count_lines(fh) if resyncs > MAX_RESYNCS else 0
        yield Row(start_line, first_part, len(first_part), True, lost_lines=lost)
        if lost:
            return


def parse_row(text: str) -> list[str]:
    """The fields of one row's text (raises csv.Error, e.g. a bare carriage return)."""
    rows = list(csv.reader([text]))
    if len(rows) != 1:
        raise csv.Error(f"row parses as {len(rows)} rows")
    return rows[0]


def _header(fh, enc: str) -> tuple[list[str] | None, int, str]:
    """The column names and the line the data starts on, or None, the line and what is wrong."""
    for row in iter_rows(fh, CHUNK):
        if row.data is None or row.unterminated:
            return None, row.line, "unreadable CSV header (unbalanced quotes or over 1 MiB)"
        try:
            names = parse_row(row.data.removeprefix(BOM).decode(enc))
        except (UnicodeDecodeError, csv.Error) as exc:
            return None, row.line, f"unreadable CSV header: {exc}"
        if not any(name.strip() for name in names):
            return None, row.line, "unreadable CSV header: no column names"
        return names, row.line + row.data.count(b"\n"), ""
    return [], 1, ""


def _row_item(row: Row, names: list[str], enc: str, file: str, limit: int) -> Item:
    if row.data is None:
        return too_large(file, row.line, row.size, limit)
    if row.lost_lines:
        message = (
            f"CSV cannot be resynced: quoted fields never close from line {row.line} on; "
            f"{row.lost_lines:,} more lines to the end of the file were not read"
        )
        return error_item(file, row.line, message, "CSVError", row.size)
    if row.unterminated:
        message = (
            "a quoted field that does not close where it should (a stray quote?); this line is "
            "skipped, reading goes on with the next"
        )
        return error_item(file, row.line, message, "CSVError", row.size)
    try:
        fields = parse_row(row.data.decode(enc))
    except UnicodeDecodeError as exc:
        reason = f"row is not valid {enc} ({exc.reason} at byte {exc.start})"
        item = error_item(file, row.line, reason, "EncodingError", row.size)
        fields = lambda text: dict(zip(names, parse_row(text), strict=False))  # noqa: E731
        item.record_id = salvage_id(row.data.decode(enc, "replace"), fields)
        return item
    except csv.Error as exc:
        return error_item(file, row.line, f"unreadable CSV row: {exc}", "CSVError", row.size)
    # As csv.DictReader: missing fields are empty, extra fields are dropped.
    record = {k: (v if v != "" else None) for k, v in zip(names, fields, strict=False)}
    return table_row_item(record, file, row.line, row.size)


def iter_csv(fh, enc: str, file: str, max_bytes: int) -> Iterator[Item]:
    """One :class:`Item` per row of a CSV file open in binary mode (its header first)."""
    if fh.read(len(BOM)) != BOM:
        fh.seek(0)
    names, next_line, problem = _header(fh, enc)
    if names is None:
        message = f"{problem}; {_count_lines(fh):,} more lines of the file were not read"
        yield error_item(file, next_line, message, "CSVError")
        return
    for row in iter_rows(fh, max_bytes, first_line=next_line):
        yield _row_item(row, names, enc, file, max_bytes)
