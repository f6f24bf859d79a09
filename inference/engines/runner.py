"""Streaming archive tagging with exactly-once resume (``khabar tag --engine local``).

How a crash at any instant (kill -9) still ends with every input record exactly once in the output:
1. output lines are appended batch by batch, flushed and fsync'ed;
2. only then a checkpoint ``<output>.ckpt.json`` is replaced atomically (write temp + ``os.replace``)
   with (records consumed, output byte length, input fingerprint);
3. ``--resume`` checks the output against the checkpoint (``checkpoint.py``: it exists, holds at
   least the checkpointed bytes, its last checkpointed line is intact; else a one-line refusal),
   truncates it back to the checkpoint's byte length (dropping a batch written after the last
   checkpoint) and skips the records the checkpoint says are done.
Every record is isolated up to its output line: reading (``readers``), tagging (``Tagger``) and
encoding (``encode_record``) failures become that record's error record. Batches are capped by
records and by bytes (``BATCH_BYTES``), so a run of huge articles holds a few of them at a time.
Parquet output is staged as JSONL under the same protocol and converted at the end.

``workers > 1`` tags batches in forked worker processes (each inherits the loaded tagger) and
returns their output lines in input order; reading, writing and checkpoints stay in this process,
so the protocol above is unchanged. The default uses two workers for sklearn models on a
multi-core Linux machine and an input of more than a few batches (``default_workers``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from inference.engines.checkpoint import (
    CHECKPOINT_SUFFIX,
    ResumeError,
    input_fingerprint,
    last_line,
    start_state,
    write_checkpoint,
)
from inference.engines.readers import Item, ReadStats, iter_items, list_input_files
from inference.tagger import Tagger, error_record

__all__ = ["CHECKPOINT_SUFFIX", "ResumeError", "encode_record", "run_tagging", "tag_items"]

BATCH_BYTES = 16 << 20  # a batch holds at most this many bytes of records (as the Ray engine)


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


def _batches(items: Iterator[Item], size: int, max_bytes: int) -> Iterator[list[Item]]:
    """Batches of ``size`` items, or fewer when their records reach ``max_bytes`` together."""
    batch: list[Item] = []
    total = 0
    for item in items:
        batch.append(item)
        total += item.size
        if len(batch) >= size or total >= max_bytes:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def tag_items(tagger: Tagger, batch: list[Item]) -> list[dict]:
    """Output records for one batch of input items, in input order (rejected items -> errors)."""
    articles = [it.article for it in batch if it.article is not None]
    tagged = iter(tagger.tag_batch(articles))
    return [next(tagged) if it.article is not None else _item_record(it) for it in batch]


def _printable(value) -> str:
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def encode_record(record: dict) -> tuple[bytes, bool]:
    """One output line, and whether it is an error record. A record that cannot be written as
    UTF-8 JSON (a lone surrogate, a value JSON cannot hold) becomes an error record with the same
    id, so a line is always written."""
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        return line, "error" in record
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        if "error" in record and isinstance(record["error"], dict):
            kind = _printable(record["error"].get("type"))
            message = _printable(record["error"].get("message"))
        else:
            kind, message = "OutputError", f"the output record cannot be written as JSON: {exc}"
        fallback = error_record(_printable(record.get("id")), kind, message)
        return json.dumps(fallback, ensure_ascii=False).encode("utf-8") + b"\n", True


def _encode(records: list[dict]) -> tuple[bytes, int]:
    """The output lines of ``records`` and how many of them are error records."""
    encoded = [encode_record(r) for r in records]
    return b"".join(line for line, _ in encoded), sum(error for _, error in encoded)


# ---------------------------------------------------------------- worker processes
MAX_AUTO_WORKERS = 2
MIN_BATCHES_PER_WORKER = 2  # below this, starting workers costs more than it saves
_WORKER: dict = {}


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(tagger: Tagger, n_records: int | None, batch_size: int) -> int:
    """Processes for ``workers=None``: min(2, cores) for sklearn-only taggers on Linux.

    One when a transformer model is loaded (torch already uses every core, and its thread pools
    and GPU contexts are not fork-safe), when fork is unavailable, or when the input is so small
    that the workers would idle.
    """
    kinds = {b.meta.get("kind") for b in tagger.bundles.values()}
    if kinds - {"sklearn"} or not sys.platform.startswith("linux"):
        return 1
    workers = min(MAX_AUTO_WORKERS, _cpus())
    if n_records is not None and n_records < workers * MIN_BATCHES_PER_WORKER * batch_size:
        return 1
    return workers


def _init_worker(tagger: Tagger) -> None:
    _WORKER["tagger"] = tagger  # inherited through fork: nothing is pickled or reloaded


def _tag_encoded(batch: list[Item]) -> tuple[bytes, int]:
    return _encode(tag_items(_WORKER["tagger"], batch))


def _tagged(tagger: Tagger, batches: Iterator[list[Item]], workers: int) -> Iterator[tuple]:
    """(records in the batch, output lines, error count) per batch, in input order."""
    if workers <= 1:
        for batch in batches:
            yield (len(batch), *_encode(tag_items(tagger, batch)))
        return
    # fork, not spawn: workers start at once with the loaded models (shared copy-on-write), and a
    # caller's script is not re-imported in the children (no __main__ guard needed). The pool is
    # made before the progress bar's thread starts.
    with mp.get_context("fork").Pool(workers, _init_worker, (tagger,)) as pool:
        pending: deque = deque()
        # A bounded window: Pool.imap would read the whole input ahead into its task queue.
        for batch in batches:
            pending.append((len(batch), pool.apply_async(_tag_encoded, (batch,))))
            if len(pending) > 2 * workers:
                n, result = pending.popleft()
                yield (n, *result.get())
        while pending:
            n, result = pending.popleft()
            yield (n, *result.get())


class _Progress:
    def __init__(self, enabled: bool, total: int | None, done: int):
        self.bar = None
        if enabled:
            from rich.console import Console
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
                console=Console(stderr=True),  # stdout stays clean for piping
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


def run_tagging(
    tagger: Tagger,
    input_path: str | Path,
    output: str | Path,
    resume: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    encoding: str = "auto",
    workers: int | None = None,
    max_record_bytes: int | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> dict:
    """Tag every record under ``input_path`` into ``output`` (.jsonl or .parquet); return a summary.

    ``workers``: tagging processes; None picks ``default_workers``. A batch holds ``batch_size``
    records, or fewer when they reach ``batch_bytes`` together. A record over ``max_record_bytes``
    (default: the tagger config's ``max_record_bytes``) is a "too large" error record."""
    output = Path(output)
    if output.is_dir():
        raise IsADirectoryError(f"--output {output} is a folder; name a .jsonl or .parquet file")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging, ckpt = _staging_path(output), output.with_name(output.name + CHECKPOINT_SUFFIX)
    state = start_state(output, staging, ckpt, input_fingerprint(input_path), resume)
    limit = max_record_bytes or tagger.config.max_record_bytes
    t0, skipped = time.perf_counter(), state["records_done"]
    if not state.get("complete"):
        items = islice(iter_items(input_path, encoding, ReadStats(), limit), skipped, None)
        total = count_records(input_path) if progress or workers is None else None
        if workers is None:
            workers = default_workers(tagger, total and total - skipped, batch_size)
        chunks = _tagged(tagger, _batches(items, batch_size, batch_bytes), workers)
        bar = None
        try:
            with open(staging, "ab") as fh:
                for n, lines, errors in chunks:
                    if bar is None:  # started after the worker pool (see _tagged)
                        bar = _Progress(progress, total, skipped)
                    fh.write(lines)
                    fh.flush()
                    os.fsync(fh.fileno())
                    state["records_done"] += n
                    state["output_bytes"] = fh.tell()
                    state["errors"] += errors
                    if lines:
                        state["last_line"] = last_line(lines, state["output_bytes"])
                    write_checkpoint(ckpt, state)
                    bar.advance(n)
        finally:
            chunks.close()
            if bar is not None:
                bar.close()
        if output.suffix == ".parquet":
            jsonl_to_parquet(staging, output)
        state["complete"] = True
        write_checkpoint(ckpt, state)
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
    """Nested fields become JSON strings so every row shares one schema (error rows included).

    Written next to ``output`` and renamed over it at the end: a crash never leaves a half file."""
    tmp = output.with_name(output.name + ".tmp")
    _write_parquet(staging, tmp, rows_per_group)
    os.replace(tmp, output)


def _write_parquet(staging: Path, output: Path, rows_per_group: int) -> None:
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
