"""Streaming archive tagging with exactly-once resume (``khabar tag --engine local``).

How a crash at any instant (kill -9) still ends with every input record exactly once in the output:
1. output lines are appended batch by batch, flushed and fsync'ed;
2. only then a checkpoint ``<output>.ckpt.json`` is replaced atomically (write temp + ``os.replace``)
   with (records consumed, output byte length, input fingerprint);
3. ``--resume`` truncates the output back to the checkpoint's byte length (dropping a batch written
   after the last checkpoint) and skips the records the checkpoint says are done.
Parquet output is staged as JSONL under the same protocol and converted at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from inference.readers import Item, ReadStats, iter_items, list_input_files
from inference.tagger import Tagger, error_record

CHECKPOINT_SUFFIX = ".ckpt.json"


class ResumeError(ValueError):
    """--resume was asked for but the checkpoint does not match this input/output."""


def input_fingerprint(path: str | Path) -> list[list]:
    return [[str(f), f.stat().st_size, int(f.stat().st_mtime)] for f in list_input_files(path)]


def _write_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _item_record(item: Item) -> dict:
    rid = item.record_id or f"{item.file}:{item.line}"
    return error_record(rid, item.error_type or "RecordError", f"{item.where}: {item.error}")


def count_records(path: str | Path) -> int | None:
    """Line count of JSONL inputs, for the progress bar's ETA (None when not cheap to know)."""
    total = 0
    for f in list_input_files(path):
        if not f.name.endswith((".jsonl", ".ndjson")):
            return None
        with open(f, "rb") as fh:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return total


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while batch := list(islice(items, size)):
        yield batch


def tag_items(tagger: Tagger, batch: list[Item]) -> list[dict]:
    """Output records for one batch of input items, in input order (rejected items -> errors)."""
    articles = [it.article for it in batch if it.article is not None]
    tagged = iter(tagger.tag_batch(articles))
    return [next(tagged) if it.article is not None else _item_record(it) for it in batch]


class _Progress:
    def __init__(self, enabled: bool, total: int | None, done: int):
        self.bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("tagging"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} art/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("tag", total=total, completed=done, rate="-")
            self.bar.start()
        self.t0, self.n = time.perf_counter(), 0

    def advance(self, n: int) -> None:
        self.n += n
        if self.bar is not None:
            rate = f"{self.n / max(time.perf_counter() - self.t0, 1e-9):,.0f}"
            self.bar.update(self.task, advance=n, rate=rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _staging_path(output: Path) -> Path:
    return (
        output.with_name(output.name + ".partial.jsonl") if output.suffix == ".parquet" else output
    )


def _start_state(output: Path, staging: Path, ckpt: Path, fingerprint: list, resume: bool) -> dict:
    if resume and ckpt.exists():
        state = json.loads(ckpt.read_text("utf-8"))
        if state.get("input") != fingerprint:
            raise ResumeError(
                f"{ckpt}: the input changed since the interrupted run; rerun without --resume"
            )
        if state.get("complete"):
            return state
        if not staging.exists() or staging.stat().st_size < state["output_bytes"]:
            raise ResumeError(
                f"{staging}: output is shorter than its checkpoint; rerun without --resume"
            )
        with open(staging, "r+b") as fh:  # drop whatever was written after the last checkpoint
            fh.truncate(state["output_bytes"])
        return state
    for stale in (staging, output, ckpt):
        if stale.exists() and stale.is_file():
            stale.unlink()
    return {
        "input": fingerprint,
        "records_done": 0,
        "output_bytes": 0,
        "errors": 0,
        "complete": False,
    }


def run_tagging(
    tagger: Tagger,
    input_path: str | Path,
    output: str | Path,
    resume: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    encoding: str = "auto",
) -> dict:
    """Tag every record under ``input_path`` into ``output`` (.jsonl or .parquet); return a summary."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging, ckpt = _staging_path(output), output.with_name(output.name + CHECKPOINT_SUFFIX)
    state = _start_state(output, staging, ckpt, input_fingerprint(input_path), resume)
    t0, skipped = time.perf_counter(), state["records_done"]
    if not state.get("complete"):
        items = islice(iter_items(input_path, encoding, ReadStats()), skipped, None)
        bar = _Progress(progress, count_records(input_path) if progress else None, skipped)
        try:
            with open(staging, "ab") as fh:
                for batch in _batches(items, batch_size):
                    records = tag_items(tagger, batch)
                    fh.write(
                        b"".join(
                            json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records
                        )
                    )
                    fh.flush()
                    os.fsync(fh.fileno())
                    state["records_done"] += len(batch)
                    state["output_bytes"] = fh.tell()
                    state["errors"] += sum("error" in r for r in records)
                    _write_checkpoint(ckpt, state)
                    bar.advance(len(batch))
        finally:
            bar.close()
        if output.suffix == ".parquet":
            jsonl_to_parquet(staging, output)
        state["complete"] = True
        _write_checkpoint(ckpt, state)
        if staging != output:
            staging.unlink()
    seconds = time.perf_counter() - t0
    new = state["records_done"] - skipped
    return {
        "records": state["records_done"],
        "errors": state["errors"],
        "resumed_from": skipped,
        "seconds": round(seconds, 3),
        "articles_per_s": round(new / seconds, 1) if seconds else None,
        "output": str(output),
        "models": tagger.models,
    }


def jsonl_to_parquet(staging: Path, output: Path, rows_per_group: int = 10_000) -> None:
    """Nested fields become JSON strings so every row shares one schema (error rows included)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = ("id", "boilerplate", "topic", "stance", "models", "error")
    schema = pa.schema([(c, pa.string()) for c in cols])
    with pq.ParquetWriter(output, schema) as writer, open(staging, encoding="utf-8") as fh:
        while lines := list(islice(fh, rows_per_group)):
            recs = [json.loads(line) for line in lines]
            table = {
                c: [
                    r["id"]
                    if c == "id"
                    else (json.dumps(r[c], ensure_ascii=False) if c in r else None)
                    for r in recs
                ]
                for c in cols
            }
            writer.write_table(pa.table(table, schema=schema))
