"""Streaming writers for built datasets: one Arrow file per split, then one ``DatasetDict`` on disk.

Rows never pile up in memory: they arrive as Arrow record batches (``training.dataset.row_parts``,
built in the worker processes), are written a few thousand at a time with ``datasets``'
``ArrowWriter`` to a temporary folder, then memory-mapped back and saved with ``save_to_disk``. The
writer also keeps what the manifest reports about an output: counts per split / label / provenance
and a sha256 over the examples in write order.

``datasets`` is imported when a writer is made, not with this module: the worker processes import
the builder but never write, and ``datasets`` is a second of start-up for each of them.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import threading
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

from training.dataset.examples import COLUMNS
from training.dataset.row_parts import OutputFormat, RowsPart, encode_rows, row_bytes  # noqa: F401
from training.dataset.splits import SPLITS

_MAX_SHARD_BYTES = 500 * 1024 * 1024


def preload() -> None:
    """Import ``datasets`` in a background thread: started when the worker processes take the CPU
    work, it is done by the time the writers are made (between the passes, when nothing else runs
    and the ~1 s import would be on the critical path)."""
    threading.Thread(target=_import_datasets, name="import-datasets", daemon=True).start()


def _import_datasets() -> None:
    import datasets.arrow_writer  # noqa: F401


def task_features(task: str, labels: list[str]):
    """The column types of a task's dataset (``label`` is a ``ClassLabel``): ``datasets.Features``."""
    from datasets import ClassLabel, Features, List, Value

    text = Value("string")
    types = {
        "id": text, "article_id": text, "source": text, "index": Value("int32"), "text": text,
        "prev_text": text, "next_text": text, "features": List(Value("float64")), "rule": text,
        "target": text, "provenance": text, "dataset": text, "label": ClassLabel(names=labels),
    }  # fmt: skip
    return Features({col: types[col] for col in COLUMNS[task]})


class OutputWriter:
    """Writes one output's examples split by split; ``close`` saves the ``DatasetDict``."""

    def __init__(
        self, name: str, task: str, labels: list[str], tmp_dir: Path, batch_rows: int = 2000
    ):
        from datasets.arrow_writer import ArrowWriter

        self.name, self.task, self.labels = name, task, labels
        self.columns = COLUMNS[task]
        self.features = task_features(task, labels)
        self.format = OutputFormat(name, self.columns, tuple(labels), self.features.arrow_schema)
        self._tmp = tmp_dir / name
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._writers = {
            split: ArrowWriter(features=self.features, path=str(self._tmp / f"{split}.arrow"))
            for split in SPLITS
        }
        self._pending: dict[str, list[pa.RecordBatch]] = {split: [] for split in SPLITS}
        self._pending_rows = dict.fromkeys(SPLITS, 0)
        self._batch_rows = batch_rows
        self._hash = hashlib.sha256()
        self._hash.update(f"{task}\x1f{'|'.join(labels)}".encode())
        self.counts: dict[str, dict[str, Counter]] = {
            split: {"label": Counter(), "provenance": Counter()} for split in SPLITS
        }
        self.provenance_by_label: dict[str, Counter] = defaultdict(Counter)
        self.closed = False

    def add(self, split: str, row: dict) -> None:
        """One example (the builder adds whole ``RowsPart``s; this is the same for one row)."""
        self.add_part(encode_rows(self.format, [(split, row)]))

    def add_part(self, part: RowsPart) -> None:
        """Rows encoded by :func:`training.dataset.row_parts.encode_rows`, in build order."""
        self._hash.update(part.digest)
        for (split, label, provenance), n in part.tally.items():
            counts = self.counts[split]
            counts["label"][label] += n
            counts["provenance"][provenance] += n
            self.provenance_by_label[label][provenance] += n
        for split, batch in part.batches.items():
            self._pending[split].append(batch)
            self._pending_rows[split] += batch.num_rows
            while self._pending_rows[split] >= self._batch_rows:
                self._flush(split, self._batch_rows)

    def _flush(self, split: str, n_rows: int | None = None) -> None:
        """Write the first ``n_rows`` pending rows (all of them by default) of ``split``.

        The Arrow files get the same batches of ``batch_rows`` rows whatever the chunks were.
        """
        if not self._pending_rows[split]:
            return
        table = pa.Table.from_batches(self._pending[split], schema=self.format.schema)
        n_rows = table.num_rows if n_rows is None else n_rows
        self._writers[split].write_table(table.slice(0, n_rows))
        rest = table.slice(n_rows)
        self._pending[split] = rest.to_batches() if rest.num_rows else []
        self._pending_rows[split] = rest.num_rows

    @property
    def content_hash(self) -> str:
        return self._hash.hexdigest()

    def close(self, out_dir: Path):
        """Finish the Arrow files and save them as ``out_dir/<name>`` (replacing an old build);
        returns the ``DatasetDict``."""
        import datasets
        from datasets import Dataset, DatasetDict

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
        self.closed = True
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
