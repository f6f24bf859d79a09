"""The checkpoint of ``khabar tag --engine local`` and how ``--resume`` checks it (see ``runner``).

``<output>.ckpt.json`` holds (records consumed, output byte length, the last output line's offset
and hash, input fingerprint, errors, complete). It is written before the first output byte, so an
output without a checkpoint is never an interrupted local run, and replaced atomically after every
fsync'ed batch. ``--resume`` refuses, with a one-line ``ResumeError``, when the output disagrees
with it: missing, shorter than the checkpointed bytes, or its last checkpointed line changed (a
complete Parquet output: its row count); or when the input changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from inference.engines.readers import list_input_files

CHECKPOINT_SUFFIX = ".ckpt.json"


class ResumeError(ValueError):
    """--resume was asked for but the checkpoint does not match this input/output."""


def input_fingerprint(path: str | Path) -> list[list]:
    return [[str(f), f.stat().st_size, int(f.stat().st_mtime)] for f in list_input_files(path)]


def write_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def last_line(lines: bytes, end: int) -> dict:
    """Where the last of ``lines`` (ending at byte ``end`` of the output) starts, and its hash."""
    last = lines[lines.rfind(b"\n", 0, len(lines) - 1) + 1 :]
    return {"offset": end - len(last), "sha1": hashlib.sha1(last).hexdigest()}


def _output_mismatch(path: Path, state: dict) -> str | None:
    """Why the JSONL ``path`` disagrees with its checkpoint ``state`` (None when it agrees)."""
    done = state["output_bytes"]
    if not path.is_file():
        return f"{path} does not exist" if done else None
    size = path.stat().st_size
    if size < done:
        return f"{path} has {size:,} bytes, fewer than the {done:,} its checkpoint recorded"
    last = state.get("last_line")
    if last and not 0 <= last["offset"] < done:
        return f"its checkpoint is inconsistent (last line at {last['offset']}, {done} bytes)"
    if last:
        with open(path, "rb") as fh:
            fh.seek(last["offset"])
            tail = fh.read(done - last["offset"])
        if hashlib.sha1(tail).hexdigest() != last["sha1"]:
            return f"{path}: the last checkpointed line (at byte {last['offset']:,}) was changed"
    return None


def _complete_mismatch(output: Path, state: dict) -> str | None:
    if output.suffix != ".parquet":
        return _output_mismatch(output, state)
    if not output.is_file():
        return f"{output} does not exist"
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(output).metadata.num_rows
    if rows != state["records_done"]:
        return f"{output} has {rows:,} rows, its checkpoint {state['records_done']:,}"
    return None


def _resume_state(output: Path, staging: Path, ckpt: Path, fingerprint: list) -> dict | None:
    """The checkpoint to continue from, after checking the output against it; None: start anew."""
    if not ckpt.exists():
        if any(p.is_file() and p.stat().st_size for p in {output, staging}):
            raise ResumeError(
                f"cannot resume: {output} exists but has no checkpoint ({ckpt.name}), so it is "
                "not an interrupted local run; rerun without --resume to overwrite it"
            )
        return None
    try:
        state = json.loads(ckpt.read_text("utf-8"))
        state["output_bytes"], state["records_done"]  # noqa: B018 (required keys)
    except (ValueError, KeyError, TypeError) as exc:
        raise ResumeError(
            f"cannot resume: {ckpt} is unreadable ({exc}); rerun without --resume"
        ) from None
    if state.get("input") != fingerprint:
        raise ResumeError(
            f"{ckpt}: the input changed since the interrupted run; rerun without --resume"
        )
    why = _complete_mismatch(output, state) if state.get("complete") else None
    why = why or (None if state.get("complete") else _output_mismatch(staging, state))
    if why:
        raise ResumeError(f"cannot resume: {why}; rerun without --resume to start over")
    if not state.get("complete"):
        with open(staging, "r+b") as fh:  # drop whatever was written after the last checkpoint
            fh.truncate(state["output_bytes"])
    return state


def start_state(output: Path, staging: Path, ckpt: Path, fingerprint: list, resume: bool) -> dict:
    if resume and (state := _resume_state(output, staging, ckpt, fingerprint)) is not None:
        return state
    for stale in (staging, output, ckpt):
        if stale.exists() and stale.is_file():
            stale.unlink()
    state = {
        "input": fingerprint,
        "records_done": 0,
        "output_bytes": 0,
        "errors": 0,
        "complete": False,
    }
    # Before any output byte: an output without a checkpoint is then never one of ours.
    write_checkpoint(ckpt, state)
    return state
