"""The input records of a dataset build, read so that parsing can happen in a worker process.

Both passes of the builder number the records of every input the same way (an *ordinal*: one per
record the readers yield, errors included), and the parent process must do that in input order.
Parsing is most of the reading cost, so for JSON Lines files the parent only splits the file into
lines and a :class:`Record` carries the raw line to wherever it is used; it is parsed there with
the readers' own ``jsonl_line_item`` (the same Item, errors and all, as ``iter_items`` gives).
Other formats (JSON, CSV, Parquet, text folders) are parsed by ``inference.engines.readers`` here.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inference.engines.readers import (
    JSONL_SUFFIXES,
    SNIFF_BYTES,
    InputError,
    Item,
    ReadStats,
    detect_encoding,
    iter_items,
    jsonl_line_item,
    list_input_files,
)
from inference.text.schema import Article
from training.config import InputSpec


@dataclass
class Record:
    """One input record: a raw JSONL line (parsed by :meth:`item`) or an already parsed Item."""

    file: str
    line: int
    raw: bytes | None = None
    encoding: str | None = None
    parsed: Item | None = None

    def item(self) -> Item:
        if self.parsed is not None:
            return self.parsed
        item = jsonl_line_item(self.raw, self.encoding, self.file, self.line)
        if item is None:  # blank lines are never made records
            raise ValueError(f"{self.file}:{self.line}: a blank line is no record")
        return item


def light_item(item: Item) -> Item:
    """``item`` without the article's text: the fields the parent plans with (ids, labels, claim,
    source, date, section, URL, record split), so a worker sends back a few hundred bytes."""
    art = item.article
    if art is None:
        return item
    light = Article(
        id=art.id,
        paragraphs=[],
        url=art.url,
        source=art.source,
        published=art.published,
        section=art.section,
        label=art.label,
        claim=art.claim,
        split=art.split,
    )
    return Item(item.file, item.line, light, item.error, item.error_type, item.record_id)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _sniff(path: Path, encoding: str) -> str:
    """The file's encoding, exactly as ``iter_items`` detects it (raises InputError)."""
    with _open(path) as fh:
        head = fh.read(SNIFF_BYTES)
    return detect_encoding(head, str(path), encoding)


def _file_records(path: Path, encoding: str, stats: ReadStats | None) -> Iterator[Record]:
    if path.suffix != ".parquet":
        try:
            enc = _sniff(path, encoding)
        except InputError as exc:  # as iter_items: one error record for the file, then go on
            yield Record(
                str(path), 0, parsed=Item(str(path), 0, error=str(exc), error_type="EncodingError")
            )
            return
        if stats is not None:
            stats.encodings[str(path)] = enc
        if path.name.lower().endswith(JSONL_SUFFIXES):
            with _open(path) as fh:
                for lineno, raw in enumerate(fh, start=1):
                    if raw.strip():  # blank lines are no records (jsonl_line_item -> None)
                        yield Record(str(path), lineno, raw=raw, encoding=enc)
            return
    for item in iter_items(path, encoding):
        yield Record(item.file, item.line, parsed=item)


def iter_records(spec: InputSpec, path: Path, stats: ReadStats | None = None) -> Iterator[Record]:
    """Every record of one input in order (``spec.limit`` of them at most); the file encodings
    go to ``stats`` (records are counted where they are parsed: ``stats.add(record.item())``)."""
    n = 0
    for file in list_input_files(path):
        for record in _file_records(file, spec.encoding, stats):
            yield record
            n += 1
            if spec.limit is not None and n >= spec.limit:
                return
