"""Archive tagging on Ray Data (``khabar tag --engine ray``): same records as the local engine.

Pipeline: ``read_datasource(ArchiveDatasource)`` -> ``map_batches(TaggerActor)`` on an actor pool
-> the driver appends the returned JSON lines to one output file.

Reading. The records and error records must be exactly those of
``inference.engines.readers.iter_items`` (bad lines, Windows-1256, field aliases, ``file:line`` in
errors), so the datasource does not use ``read_json``/``read_text`` (they drop line numbers and fail
a whole file on one bad line). Input is planned on the driver into *pieces*:
- a plain ``.jsonl``/``.ndjson`` file larger than ``split_bytes`` is cut into byte ranges at line
  ends; a newline count during planning gives every range its first line number, and each range is
  parsed line by line with the local reader's own per-record helpers (one archive file scales
  across many read tasks);
- any other file (``.jsonl.gz``, JSON, Parquet, CSV, ``.txt``) is one piece read by ``iter_items``
  itself; many small files are grouped into one read task.
Read tasks stream blocks of pickled ``Item`` objects, so memory stays bounded.

Tagging. Each actor loads the tagger once (``load_tagger``) and turns a batch of items into output
lines with ``inference.engines.runner.tag_items``, the function the local engine uses; lines are
serialized in the actors, the driver only writes bytes. Output order follows completion, not input
(DESIGN.md promises input order under ``--engine local`` only); every input record yields exactly
one line. The output is staged as ``<output>.partial.jsonl`` and renamed (or converted to Parquet)
at the end, so a crashed run never leaves a file that looks complete. There is no ``--resume`` on
this engine.

On a cluster (``address``), khabar must be installed on every node and the input files and bundle
directories must be readable at the same paths (MLflow URIs are resolved by each actor).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inference.engines.readers import (
    DEFAULT_MAX_RECORD_BYTES,
    SNIFF_BYTES,
    InputError,
    Item,
    ReadStats,
    detect_encoding,
    iter_items,
    jsonl_items,
    list_input_files,
)
from inference.engines.runner import CHECKPOINT_SUFFIX, encode_record, jsonl_to_parquet, tag_items
from inference.tagger import TaggerConfig, load_tagger

log = logging.getLogger(__name__)

SPLIT_BYTES = 64 << 20  # plain JSONL files larger than this are read by several tasks
BLOCK_ROWS = 1024  # items per block emitted by a read task
BLOCK_BYTES = 16 << 20  # ... or fewer, when the articles are long
READ_CPUS = 0.5  # parsing is light next to tagging: let actors have the whole cores
_SPLITTABLE = (".jsonl", ".ndjson")


# ---------------------------------------------------------------- planning the read
@dataclass(frozen=True)
class Piece:
    """A unit of reading: a whole file, or a byte range of a plain JSONL file."""

    file: str
    size: int
    start: int = 0
    end: int | None = None  # None: the whole file through ``iter_items``
    first_line: int = 1
    encoding: str = "utf-8"  # sniffed on the whole file; ranges only


def _count_newlines(fh, start: int, end: int) -> int:
    fh.seek(start)
    count, left = 0, end - start
    while left > 0:
        block = fh.read(min(left, 1 << 20))
        if not block:
            break
        count += block.count(b"\n")
        left -= len(block)
    return count


def _jsonl_ranges(path: Path, size: int, split_bytes: int, enc: str) -> list[Piece]:
    """Byte ranges that start right after a newline, each with its first line number."""
    pieces: list[Piece] = []
    start, line = 0, 1
    with open(path, "rb") as fh:
        while start < size:
            end = size
            if start + split_bytes < size:
                fh.seek(start + split_bytes)
                fh.readline()  # finish the line that straddles the cut
                end = fh.tell()
            pieces.append(Piece(str(path), end - start, start, end, line, enc))
            line += _count_newlines(fh, start, end)
            start = end
    return pieces


def plan_pieces(
    input_path: str | Path, encoding: str = "auto", split_bytes: int = SPLIT_BYTES
) -> list[Piece]:
    """The pieces of ``input_path`` in input order (raises InputError like the local reader)."""
    pieces: list[Piece] = []
    for file in list_input_files(input_path):
        size = file.stat().st_size
        if size > split_bytes and file.name.lower().endswith(_SPLITTABLE):
            with open(file, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
            try:
                enc = detect_encoding(head, str(file), encoding)
            except InputError:
                pieces.append(Piece(str(file), size))  # iter_items reports it as a record
                continue
            pieces.extend(_jsonl_ranges(file, size, split_bytes, enc))
        else:
            pieces.append(Piece(str(file), size))
    return pieces


# ---------------------------------------------------------------- reading a piece
def _range_items(piece: Piece, max_record_bytes: int) -> Iterator[Item]:
    # Lines split on b"\n" only and keep it, exactly like the local reader's.
    with open(piece.file, "rb") as fh:
        fh.seek(piece.start)
        yield from jsonl_items(
            fh,
            piece.encoding,
            piece.file,
            first_line=piece.first_line,
            end=piece.end,
            max_record_bytes=max_record_bytes,
            start=piece.start,
        )


def read_piece(
    piece: Piece, encoding: str = "auto", max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[Item]:
    if piece.end is None:
        # ReadStats makes iter_items report an unreadable file as an error record, as run_tagging.
        yield from iter_items(piece.file, encoding, ReadStats(), max_record_bytes)
    else:
        yield from _range_items(piece, max_record_bytes)


def _blocks(pieces: list[Piece], encoding: str, max_record_bytes: int):
    import pyarrow as pa

    rows: list[bytes] = []
    size = 0
    for piece in pieces:
        for item in read_piece(piece, encoding, max_record_bytes):
            blob = pickle.dumps(item, protocol=5)
            rows.append(blob)
            size += len(blob)
            if len(rows) >= BLOCK_ROWS or size >= BLOCK_BYTES:
                yield pa.table({"item": pa.array(rows, type=pa.binary())})
                rows, size = [], 0
    if rows:
        yield pa.table({"item": pa.array(rows, type=pa.binary())})


def group_pieces(pieces: list[Piece], parallelism: int) -> list[list[Piece]]:
    """Contiguous groups of about equal bytes; a range piece (already ~split_bytes) stays alone."""
    target = max(sum(p.size for p in pieces) / max(parallelism, 1), 1)
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    size = 0
    for piece in pieces:
        if current and (size + piece.size > target or piece.end is not None):
            groups.append(current)
            current, size = [], 0
        current.append(piece)
        size += piece.size
    if current:
        groups.append(current)
    return groups


def _archive_datasource(pieces: list[Piece], encoding: str, max_record_bytes: int):
    # Defined in a function so importing this module does not import Ray.
    import pyarrow as pa
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    schema = pa.schema([("item", pa.binary())])

    class ArchiveDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(p.size for p in pieces)

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
            tasks = []
            for group in group_pieces(pieces, parallelism):
                meta = BlockMetadata(
                    num_rows=None,
                    size_bytes=sum(p.size for p in group),
                    input_files=sorted({p.file for p in group}),
                    exec_stats=None,
                )
                tasks.append(
                    ReadTask(
                        lambda g=group: _blocks(g, encoding, max_record_bytes),
                        meta,
                        schema=schema,
                        per_task_row_limit=per_task_row_limit,
                    )
                )
            return tasks

    return ArchiveDatasource()


# ---------------------------------------------------------------- tagging
class TaggerActor:
    """Loads the tagger once per actor; a batch of pickled Items -> JSON output lines."""

    def __init__(self, model_refs: list[str], config: TaggerConfig, backend: str):
        self.tagger = load_tagger(model_refs, config, backend=backend)

    def __call__(self, batch):
        import pyarrow as pa

        items = [pickle.loads(blob) for blob in batch.column("item").to_pylist()]
        # Bytes, not strings: encode_record turns a record that is not valid UTF-8 JSON into an
        # error record, and Arrow never sees a lone surrogate.
        encoded = [encode_record(r) for r in tag_items(self.tagger, items)]
        return pa.table(
            {
                "line": pa.array([line for line, _ in encoded], type=pa.binary()),
                "error": [error for _, error in encoded],
            }
        )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _connect(address: str | None) -> bool:
    """Join the Ray runtime; True when this call started (and so must stop) it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=available_cpus(), include_dashboard=False, logging_level=logging.WARNING)
    return True


def _actor_plan(num_actors: int | None) -> tuple[int, float]:
    """Pool size and CPUs per actor, leaving room for the read tasks so they never starve."""
    import ray

    total = float(ray.cluster_resources().get("CPU", 1.0))
    size = num_actors or max(1, int(total) - 1)
    cpus = min(1.0, max(total - READ_CPUS, 0.1) / size)
    return size, cpus


def _staging(output: Path) -> Path:
    return output.with_name(output.name + ".partial.jsonl")


def run_tagging_ray(
    model_refs: list[str],
    input_path: str | Path,
    output: str | Path,
    config: str | Path | TaggerConfig | None = None,
    address: str | None = None,
    batch_size: int = 256,
    backend: str = "auto",
    num_actors: int | None = None,
    encoding: str = "auto",
    progress: bool = True,
    split_bytes: int = SPLIT_BYTES,
    max_record_bytes: int | None = None,
) -> dict:
    """Tag every record under ``input_path`` into ``output`` (.jsonl or .parquet) on Ray Data.

    A record over ``max_record_bytes`` (default: the tagger config's) is a "too large" error."""
    import ray

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Fail fast on the driver, with the local engine's errors (bad bundle, bad config, no input).
    tagger = load_tagger(model_refs, config, backend=backend)
    models, tagger_config = tagger.models, tagger.config
    limit = max_record_bytes or tagger_config.max_record_bytes
    pieces = plan_pieces(input_path, encoding, split_bytes)
    started = _connect(address)
    # On a runtime started here the actors reuse the folders this process resolved (MLflow
    # downloads); elsewhere the nodes may not see them, so each actor resolves the refs itself.
    local = started and not address
    refs = [str(b.path) for b in tagger.bundles.values()] if local else list(model_refs)
    del tagger
    staging = _staging(output)
    t0 = time.perf_counter()
    records = errors = 0
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        size, cpus = _actor_plan(num_actors)
        ds = ray.data.read_datasource(
            _archive_datasource(pieces, encoding, limit), num_cpus=READ_CPUS
        )
        ds = ds.map_batches(
            TaggerActor,
            fn_constructor_kwargs={"model_refs": refs, "config": tagger_config, "backend": backend},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=cpus,
        )
        with open(staging, "wb") as fh:
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                lines = batch.column("line").to_pylist()
                fh.write(b"".join(lines))
                records += len(lines)
                errors += sum(batch.column("error").to_pylist())
    except BaseException:
        staging.unlink(missing_ok=True)  # the previous output (if any) is left untouched
        raise
    finally:
        if started:
            ray.shutdown()
    if output.suffix == ".parquet":
        jsonl_to_parquet(staging, output)
        staging.unlink()
    else:
        os.replace(staging, output)
    # A checkpoint from an earlier local run describes a file that no longer exists.
    output.with_name(output.name + CHECKPOINT_SUFFIX).unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    return {
        "records": records,
        "errors": errors,
        "resumed_from": 0,
        "seconds": round(seconds, 3),
        "articles_per_s": round(records / seconds, 1) if seconds else None,
        "output": str(output),
        "models": models,
        "engine": "ray",
        "actors": size,
    }
