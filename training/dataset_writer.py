"""Streaming writers for built datasets: one Arrow file per split, then one ``DatasetDict`` on disk.

Rows never pile up in memory: they are buffered a few thousand at a time and written with
``datasets``' ``ArrowWriter`` to a temporary folder, then memory-mapped back and saved with
``save_to_disk``. The writer also keeps what the manifest reports about an output: counts per
split / label / provenance and a sha256 over the examples in write order.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from array import array
from collections import Counter, defaultdict
from pathlib import Path

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from datasets.arrow_writer import ArrowWriter

from training.examples import COLUMNS
from training.splits import SPLITS

_MAX_SHARD_BYTES = 500 * 1024 * 1024
_FIELD_SEP, _ROW_SEP = b"\x1f", b"\x1e"


def task_features(task: str, labels: list[str]) -> Features:
    """The column types of a task's dataset (``label`` is a ``ClassLabel``)."""
    text = Value("string")
    types = {
        "id": text, "article_id": text, "source": text, "index": Value("int32"), "text": text,
        "prev_text": text, "next_text": text, "features": List(Value("float64")), "rule": text,
        "target": text, "provenance": text, "dataset": text, "label": ClassLabel(names=labels),
    }  # fmt: skip
    return Features({col: types[col] for col in COLUMNS[task]})


def row_bytes(row: dict, columns: tuple[str, ...]) -> bytes:
    """A canonical byte form of one example for the content hash (floats as IEEE-754 doubles)."""
    parts = []
    for col in columns:
        value = row[col]
        if isinstance(value, list):
            parts.append(array("d", value).tobytes())
        else:
            parts.append(str(value).encode("utf-8"))
    return _FIELD_SEP.join(parts) + _ROW_SEP


class OutputWriter:
    """Writes one output's examples split by split; ``close`` saves the ``DatasetDict``."""

    def __init__(
        self, name: str, task: str, labels: list[str], tmp_dir: Path, batch_rows: int = 2000
    ):
        self.name, self.task, self.labels = name, task, labels
        self.columns = COLUMNS[task]
        self.features = task_features(task, labels)
        self._label_ids = {label: i for i, label in enumerate(labels)}
        self._tmp = tmp_dir / name
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._writers = {
            split: ArrowWriter(features=self.features, path=str(self._tmp / f"{split}.arrow"))
            for split in SPLITS
        }
        self._buffers: dict[str, list[dict]] = {split: [] for split in SPLITS}
        self._batch_rows = batch_rows
        self._hash = hashlib.sha256()
        self._hash.update(f"{task}\x1f{'|'.join(labels)}".encode())
        self.counts: dict[str, dict[str, Counter]] = {
            split: {"label": Counter(), "provenance": Counter()} for split in SPLITS
        }
        self.provenance_by_label: dict[str, Counter] = defaultdict(Counter)

    def add(self, split: str, row: dict) -> None:
        label = row["label"]
        if label not in self._label_ids:
            raise ValueError(f"{self.name}: label {label!r} is not one of {self.labels}")
        self._hash.update(split.encode() + _FIELD_SEP + row_bytes(row, self.columns))
        counts = self.counts[split]
        counts["label"][label] += 1
        counts["provenance"][row["provenance"]] += 1
        self.provenance_by_label[label][row["provenance"]] += 1
        buffer = self._buffers[split]
        buffer.append(row)
        if len(buffer) >= self._batch_rows:
            self._flush(split)

    def _flush(self, split: str) -> None:
        rows = self._buffers[split]
        if not rows:
            return
        batch = {col: [r[col] for r in rows] for col in self.columns}
        batch["label"] = [self._label_ids[label] for label in batch["label"]]
        self._writers[split].write_batch(batch)
        rows.clear()

    @property
    def content_hash(self) -> str:
        return self._hash.hexdigest()

    def close(self, out_dir: Path) -> DatasetDict:
        """Finish the Arrow files and save them as ``out_dir/<name>`` (replacing an old build)."""
        parts = {}
        for split in SPLITS:
            self._flush(split)
            self._writers[split].finalize()
            parts[split] = Dataset.from_file(str(self._tmp / f"{split}.arrow"))
        dd = DatasetDict(parts)
        target = out_dir / self.name
        if target.exists():
            shutil.rmtree(target)
        shards = {s: max(1, math.ceil(ds.data.nbytes / _MAX_SHARD_BYTES)) for s, ds in dd.items()}
        # One shard at least: datasets cannot load back a split saved with zero shards.
        was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            dd.save_to_disk(str(target), num_shards=shards)
        finally:
            if was_enabled:
                datasets.enable_progress_bars()
        shutil.rmtree(self._tmp, ignore_errors=True)
        return dd

    def summary(self) -> dict:
        splits = {}
        for split in SPLITS:
            c = self.counts[split]
            splits[split] = {
                "examples": sum(c["label"].values()),
                "label": dict(sorted(c["label"].items())),
                "provenance": dict(sorted(c["provenance"].items())),
            }
        total_label = sum((self.counts[s]["label"] for s in SPLITS), Counter())
        total_prov = sum((self.counts[s]["provenance"] for s in SPLITS), Counter())
        return {
            "task": self.task,
            "labels": self.labels,
            "examples": sum(total_label.values()),
            "splits": splits,
            "label": dict(sorted(total_label.items())),
            "provenance": dict(sorted(total_prov.items())),
            "provenance_by_label": {
                k: dict(sorted(v.items())) for k, v in sorted(self.provenance_by_label.items())
            },
            "content_hash": self.content_hash,
        }
