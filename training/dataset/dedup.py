"""Exact and near-duplicate detection: MinHash over word shingles with LSH banding, numpy-vectorized.

Why our own: the dataset builder needs a streaming index whose memory stays at a few hundred bytes
per kept document (archives run to millions of articles) and whose answers are deterministic across
processes (the dataset content hash depends on which copy is kept), which rules out Python's salted
``hash``. Everything here is seeded by constants, so two builds of the same input agree exactly.

How it works (fingerprints: ``training.dataset.minhash``):
- each document gets a MinHash signature over its word shingles, cut into ``bands`` band keys,
  plus an exact-text key (same words in the same order; whitespace and ASCII case do not count);
- documents sharing any band key are candidates, and a candidate is a near-duplicate when the
  estimated similarity (the fraction of equal signature entries) reaches ``threshold``; equal
  exact-text keys are exact duplicates;
- band keys of kept documents live in sorted numpy runs merged like an LSM tree (12 bytes per band
  per document), not in Python dicts (~100 bytes per entry).

The first document seen of a cluster is its canonical copy; later ones are reported as duplicates
of it and are not indexed (so a chain A~B~C with A !~ C keeps C: C is no near-duplicate of A).
An optional ``scope`` restricts matching to documents of the same scope (e.g. stance pairs only
match pairs with the same target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from training.config import DedupConfig
from training.dataset.minhash import (  # noqa: F401  (minhash_signatures: this module's API)
    Fingerprints,
    fingerprints,
    minhash_signatures,
)


def dedup_text(paragraphs: Sequence[str], min_words: int) -> str:
    """The text an article is compared on: its paragraphs of ``min_words``+ words (else all).

    A story republished by another site keeps its paragraphs but gets that site's furniture
    (credits, promos, related links: short lines), which would otherwise pull the similarity of
    two copies of one story well below any useful threshold.
    """
    long = [p for p in paragraphs if len(p.split()) >= min_words]
    return "\n".join(long or paragraphs)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of equal MinHash entries: an unbiased estimate of shingle-set Jaccard."""
    return float(np.mean(sig_a == sig_b))


@dataclass
class _Run:
    """One sorted run of band keys, all columns in one array: ``keys`` sorted, with the column
    (band, or the exact-text column) and the canonical ordinal of each key aligned with it.

    One array, not one per column: a batch is looked up with one ``searchsorted`` per run instead
    of one per run and column (a key only counts when its column matches too).
    """

    keys: np.ndarray  # (m * columns,) uint64, sorted
    cols: np.ndarray  # (m * columns,) uint8
    ords: np.ndarray  # (m * columns,) int64
    size: int  # documents

    @classmethod
    def from_unsorted(cls, keys: np.ndarray, ords: np.ndarray) -> _Run:
        m, columns = keys.shape
        flat = keys.ravel()
        order = np.argsort(flat, kind="stable")
        cols = np.tile(np.arange(columns, dtype=np.uint8), m)
        return cls(flat[order], cols[order], np.repeat(ords, columns)[order], m)

    @classmethod
    def merge(cls, a: _Run, b: _Run) -> _Run:
        keys = np.concatenate([a.keys, b.keys])
        order = np.argsort(keys, kind="stable")
        cols = np.concatenate([a.cols, b.cols])[order]
        return cls(keys[order], cols, np.concatenate([a.ords, b.ords])[order], a.size + b.size)


@dataclass
class DedupStats:
    seen: int = 0
    kept: int = 0
    exact: int = 0
    near: int = 0
    empty: int = 0
    candidates_checked: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NearDuplicateIndex:
    """Streaming duplicate finder: ``add(id, text)`` returns the canonical id it duplicates, or None.

    ``add_batch`` does the same for many documents with one vectorized signature computation; it is
    the fast path (the per-call numpy overhead dominates single adds).
    """

    cfg: DedupConfig
    stats: DedupStats = field(default_factory=DedupStats)

    def __post_init__(self) -> None:
        if self.cfg.num_perm % self.cfg.bands:
            raise ValueError(
                f"dedup.num_perm ({self.cfg.num_perm}) must be a multiple of dedup.bands ({self.cfg.bands})"
            )
        self._ids: list[str] = []
        self._sigs = np.zeros((0, self.cfg.num_perm), np.uint32)
        self._runs: list[_Run] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, doc_id: str, text: str, scope: str = "") -> str | None:
        return self.add_batch([doc_id], [text], [scope])[0]

    def add_batch(
        self, ids: Sequence[str], texts: Sequence[str], scopes: Sequence[str] | None = None
    ) -> list[str | None]:
        if not ids:
            return []
        return self.add_fingerprints(ids, fingerprints(texts, self.cfg, scopes))

    def add_fingerprints(self, ids: Sequence[str], fps: Fingerprints) -> list[str | None]:
        """``add_batch`` for documents whose :func:`fingerprints` are already computed.

        A batch is matched against the indexed documents and against its own earlier kept
        documents; the answers depend on where batches start, so callers keep the same batches.
        """
        if not ids:
            return []
        sigs, keys, counts = fps.sigs, fps.keys, fps.words
        outer = self._candidates_in_runs(keys)
        shared = _shared_keys(keys)  # (row, column): the key occurs in another row of the batch
        result: list[str | None] = []
        kept: list[int] = []
        inner: dict[tuple[int, int], int] = {}  # (column, key) -> batch row of a kept document
        for i in range(len(ids)):
            self.stats.seen += 1
            if not counts[i]:
                self.stats.empty += 1
                result.append(None)  # nothing to compare: never a duplicate, never indexed
                continue
            # Only keys another row shares can meet in ``inner``: the others need no bookkeeping.
            cols = np.flatnonzero(shared[i]).tolist() if shared[i].any() else []
            dup = None
            if cols or i in outer:
                dup = self._match(i, sigs, keys, outer.get(i, ()), inner, ids, cols)
            result.append(dup)
            if dup is None:
                for j in cols:
                    inner.setdefault((j, int(keys[i, j])), i)
                kept.append(i)
        self._insert([ids[i] for i in kept], sigs[kept], keys[kept])
        return result

    # ------------------------------------------------------------ internals
    def _candidates_in_runs(self, keys: np.ndarray) -> dict[int, list[tuple[int, int]]]:
        """Batch row -> [(column, canonical ordinal)] for every key found in the indexed runs."""
        found: dict[int, list[tuple[int, int]]] = {}
        columns = keys.shape[1]
        flat = keys.ravel()
        # Sorted queries: numpy's binary search starts from the previous answer, so a run is
        # walked once instead of missing the cache on every query.
        order = np.argsort(flat, kind="stable")
        queries = flat[order]
        for run in self._runs:
            lo = np.searchsorted(run.keys, queries, side="left")
            hit = lo < run.keys.size
            hit[hit] = run.keys[lo[hit]] == queries[hit]
            for k in np.flatnonzero(hit).tolist():
                q = int(order[k])
                i, j = divmod(q, columns)
                pos = int(lo[k])
                while pos < run.keys.size and run.keys[pos] == queries[k]:
                    if run.cols[pos] == j:
                        found.setdefault(i, []).append((j, int(run.ords[pos])))
                    pos += 1
        return found

    def _match(self, i, sigs, keys, outer, inner, batch_ids, shared_cols) -> str | None:
        """The canonical id document ``i`` duplicates, or None.

        Candidates are refs: an indexed ordinal (< n), or n + row for a document kept earlier in
        this batch, so refs also order candidates by arrival (ties go to the older document).
        ``shared_cols``: the columns where another row of the batch has the same key.
        """
        n = len(self._ids)
        candidates = list(outer)
        for j in shared_cols:
            row = inner.get((j, int(keys[i, j])))
            if row is not None:
                candidates.append((j, n + row))
        candidates.sort(key=lambda c: c[0] != self.cfg.bands)  # exact matches first
        best: tuple[float, int] | None = None  # (-similarity, ref)
        checked: set[int] = set()
        for j, ref in candidates:
            if ref in checked:
                continue
            checked.add(ref)
            if j == self.cfg.bands:  # the exact-text column
                self.stats.exact += 1
                return self._ids[ref] if ref < n else batch_ids[ref - n]
            self.stats.candidates_checked += 1
            other = self._sigs[ref] if ref < n else sigs[ref - n]
            sim = estimated_jaccard(sigs[i], other)
            if sim >= self.cfg.threshold and (best is None or (-sim, ref) < best):
                best = (-sim, ref)
        if best is None:
            return None
        self.stats.near += 1
        ref = best[1]
        return self._ids[ref] if ref < n else batch_ids[ref - n]

    def _insert(self, ids: list[str], sigs: np.ndarray, keys: np.ndarray) -> None:
        self.stats.kept += len(ids)
        if not ids:
            return
        start = len(self._ids)
        self._ids.extend(ids)
        end = start + len(ids)
        if end > self._sigs.shape[0]:  # grow by doubling: amortized O(1) copies per document
            grown = np.empty(
                (max(end, 2 * self._sigs.shape[0], 1024), self.cfg.num_perm), np.uint32
            )
            grown[:start] = self._sigs[:start]
            self._sigs = grown
        self._sigs[start:end] = sigs
        self._runs.append(_Run.from_unsorted(keys, np.arange(start, start + len(ids))))
        # Merge like a binary counter: O(log n) runs, each key re-sorted O(log n) times.
        while len(self._runs) > 1 and self._runs[-1].size * 2 >= self._runs[-2].size:
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(_Run.merge(a, b))


def _shared_keys(keys: np.ndarray) -> np.ndarray:
    """``(n, columns)`` bool: row i's key in column j also occurs in another row, same column."""
    shared = np.zeros(keys.shape, bool)
    for j in range(keys.shape[1]):
        _, inverse, counts = np.unique(keys[:, j], return_inverse=True, return_counts=True)
        shared[:, j] = counts[inverse] > 1
    return shared


def cluster_duplicates(
    docs: Iterable[tuple[str, str]], cfg: DedupConfig | None = None, batch_size: int = 256
) -> dict[str, list[str]]:
    """Group ``(id, text)`` documents: canonical id -> ids of its duplicates (clusters of one omitted)."""
    index = NearDuplicateIndex(cfg or DedupConfig())
    clusters: dict[str, list[str]] = {}
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        ids = [d for d, _ in batch]
        for doc_id, canonical in zip(ids, index.add_batch(ids, [t for _, t in batch]), strict=True):
            if canonical is not None:
                clusters.setdefault(canonical, []).append(doc_id)
        batch.clear()

    for doc in docs:
        batch.append(doc)
        if len(batch) >= batch_size:
            flush()
    flush()
    return clusters
