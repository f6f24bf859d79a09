"""Exact and near-duplicate detection: MinHash over word shingles with LSH banding, numpy-vectorized.

Why our own: the dataset builder needs a streaming index whose memory stays at a few hundred bytes
per kept document (archives run to millions of articles) and whose answers are deterministic across
processes (the dataset content hash depends on which copy is kept), which rules out Python's salted
``hash``. Everything here is seeded by constants, so two builds of the same input agree exactly.

How it works:
- a document is split on whitespace (ASCII lower-cased); each word gets a 64-bit hash by tabulation
  (a random 64-bit value per (position in word, code point), summed), computed for a whole batch
  of documents at once over their code points;
- ``shingle_words`` consecutive word hashes combine into a shingle hash; a document shorter than
  that is one shingle;
- ``num_perm`` multiply-shift hash functions give the MinHash signature (uint32 per function); the
  fraction of equal entries between two signatures estimates their shingle-set Jaccard similarity;
- the signature is cut into ``bands`` bands; documents sharing any band key are candidates, and a
  candidate is a near-duplicate when the estimated similarity reaches ``threshold``. An extra
  "band" holds an order-sensitive hash of the word sequence: equal keys there are exact duplicates
  (same words in the same order; whitespace and ASCII case do not count).
- band keys of kept documents live in sorted numpy runs merged like an LSM tree (12 bytes per band
  per document), not in Python dicts (~100 bytes per entry).

The first document seen of a cluster is its canonical copy; later ones are reported as duplicates
of it and are not indexed (so a chain A~B~C with A !~ C keeps C: C is no near-duplicate of A).
An optional ``scope`` restricts matching to documents of the same scope (e.g. stance pairs only
match pairs with the same target).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from training.config import DedupConfig

_MAX_WORD_POS = 24  # characters beyond this share the last row of the tabulation table
_CHAR_MASK = 0xFFF  # code point bits used: Basic Latin and Arabic never collide
_SEED = 0x6B686162  # "khab"
_SIG_EMPTY = np.uint32(0xFFFFFFFF)


def _stable_hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class _Tables:
    """The random constants behind word, shingle, permutation and band hashing."""

    char_table: np.ndarray  # (_MAX_WORD_POS, 4096) uint64
    position_mult: np.ndarray  # (1024,) uint64, odd: exact keys
    shingle_mult: np.ndarray  # (shingle_words,) uint64, odd
    perm_a: np.ndarray  # (num_perm,) uint64, odd
    perm_b: np.ndarray  # (num_perm,) uint64
    band_mult: np.ndarray  # (rows,) uint64, odd
    band_salt: np.ndarray  # (bands,) uint64

    @classmethod
    def make(cls, num_perm: int, bands: int, shingle_words: int) -> _Tables:
        rng = np.random.default_rng(_SEED)

        def u64(*shape: int) -> np.ndarray:
            return rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)

        rows = num_perm // bands
        return cls(
            char_table=u64(_MAX_WORD_POS, _CHAR_MASK + 1),
            position_mult=u64(1024) | np.uint64(1),
            shingle_mult=u64(shingle_words) | np.uint64(1),
            perm_a=u64(num_perm) | np.uint64(1),
            perm_b=u64(num_perm),
            band_mult=u64(rows) | np.uint64(1),
            band_salt=u64(bands),
        )


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts joined by newlines as lower-cased code points, and each text's end offset."""
    big = "\n".join(texts)
    cp = np.frombuffer(big.encode("utf-32-le", errors="surrogatepass"), np.uint32).copy()
    cp[(cp >= 65) & (cp <= 90)] += 32  # ASCII lower-case; Arabic has no case
    ends = np.cumsum(np.fromiter((len(t) + 1 for t in texts), np.int64, len(texts))) - 1
    return cp, ends


def _is_space(cp: np.ndarray) -> np.ndarray:
    # Controls, space, NBSP, the U+2000 spaces and zero-width space, narrow NBSP, ideographic space.
    return (
        (cp <= 32)
        | (cp == 0xA0)
        | ((cp >= 0x2000) & (cp <= 0x200B))
        | (cp == 0x202F)
        | (cp == 0x3000)
    )


def _word_hashes(texts: Sequence[str], tables: _Tables) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of all texts concatenated, and each text's word count.

    Whitespace-separated words, computed over code points in one pass for the whole batch: a word
    hash is the sum of random 64-bit values indexed by (position in word, code point mod 4096).
    """
    cp, ends = _code_points(texts)
    letters = np.flatnonzero(~_is_space(cp))
    if not letters.size:
        return np.zeros(0, np.uint64), np.zeros(len(texts), np.int64)
    new_word = np.empty(letters.size, bool)
    new_word[0] = True
    new_word[1:] = np.diff(letters) > 1
    starts = np.flatnonzero(new_word)
    lengths = np.diff(np.append(starts, letters.size))
    pos = np.arange(letters.size) - np.repeat(starts, lengths)
    np.minimum(pos, _MAX_WORD_POS - 1, out=pos)
    contrib = tables.char_table[pos, cp[letters] & _CHAR_MASK]
    words = np.add.reduceat(contrib, starts)
    # The newline after each text separates it, so a word never spans two texts.
    doc_of_word = np.searchsorted(ends, letters[starts])
    return words, np.bincount(doc_of_word, minlength=len(texts)).astype(np.int64)


def _exact_keys(words: np.ndarray, counts: np.ndarray, tables: _Tables) -> np.ndarray:
    """An order-sensitive 64-bit key of each text's word sequence (0 for an empty text)."""
    keys = np.zeros(counts.size, np.uint64)
    has = counts > 0
    if not words.size:
        return keys
    doc_start = np.cumsum(counts) - counts
    pos = np.arange(words.size) - np.repeat(doc_start, counts)
    weighted = words * tables.position_mult[pos & (tables.position_mult.size - 1)]
    keys[has] = np.add.reduceat(weighted, doc_start[has]) + counts[has].astype(np.uint64)
    return keys


def _shingle_hashes(
    words: np.ndarray, counts: np.ndarray, k: int, tables: _Tables
) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of all documents concatenated, and each document's shingle count."""
    n = words.size
    doc_of_word = np.repeat(np.arange(counts.size), counts)
    shingles = words * tables.shingle_mult[0]
    for j in range(1, k):
        nxt = np.zeros(n, np.uint64)
        nxt[: n - j] = words[j:] * tables.shingle_mult[j]
        same_doc = np.zeros(n, bool)
        same_doc[: n - j] = doc_of_word[j:] == doc_of_word[: n - j]
        shingles += np.where(same_doc, nxt, np.uint64(0))
    # Keep positions 0 .. max(count - k, 0) of each document: the shingles fully inside it.
    doc_start = np.repeat(np.cumsum(counts) - counts, counts)
    per_doc = np.where(counts > 0, np.maximum(counts - k + 1, 1), 0)
    keep = (np.arange(n) - doc_start) < np.repeat(per_doc, counts)
    return shingles[keep], per_doc


def minhash_signatures(texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures ``(len(texts), num_perm)`` uint32; an empty text gets all-max entries."""
    tables = _Tables.make(cfg.num_perm, cfg.bands, cfg.shingle_words)
    words, counts = _word_hashes(texts, tables)
    return _signatures(words, counts, cfg, tables)


def _signatures(
    words: np.ndarray, counts: np.ndarray, cfg: DedupConfig, tables: _Tables
) -> np.ndarray:
    sigs = np.full((counts.size, cfg.num_perm), _SIG_EMPTY, np.uint32)
    if not words.size:
        return sigs
    shingles, per_doc = _shingle_hashes(words, counts, cfg.shingle_words, tables)
    has = per_doc > 0
    offsets = (np.cumsum(per_doc) - per_doc)[has]
    shift = np.uint64(32)
    for p in range(cfg.num_perm):
        # Multiply-shift hashing: the high 32 bits of a*x+b (mod 2^64) form a universal family.
        h = (shingles * tables.perm_a[p] + tables.perm_b[p]) >> shift
        sigs[has, p] = np.minimum.reduceat(h, offsets).astype(np.uint32)
    return sigs


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
    """One sorted run of band keys: ``keys[:, j]`` sorted with ``ords[:, j]`` for column j."""

    keys: np.ndarray  # (m, columns) uint64, each column sorted independently
    ords: np.ndarray  # (m, columns) int64, canonical ordinals aligned with keys

    @classmethod
    def from_unsorted(cls, keys: np.ndarray, ords: np.ndarray) -> _Run:
        order = np.argsort(keys, axis=0, kind="stable")
        cols = np.arange(keys.shape[1])
        return cls(keys[order, cols], np.broadcast_to(ords[:, None], keys.shape)[order, cols])

    @property
    def size(self) -> int:
        return self.keys.shape[0]


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
        self._tables = _Tables.make(self.cfg.num_perm, self.cfg.bands, self.cfg.shingle_words)
        self._rows = self.cfg.num_perm // self.cfg.bands
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
        scopes = scopes if scopes is not None else [""] * len(ids)
        words, counts = _word_hashes(texts, self._tables)
        sigs = _signatures(words, counts, self.cfg, self._tables)
        keys = self._band_keys(sigs, _exact_keys(words, counts, self._tables), scopes)
        outer = self._candidates_in_runs(keys)
        result: list[str | None] = []
        kept: list[int] = []
        inner: dict[tuple[int, int], int] = {}  # (column, key) -> batch row of a kept document
        for i in range(len(ids)):
            self.stats.seen += 1
            if not counts[i]:
                self.stats.empty += 1
                result.append(None)  # nothing to compare: never a duplicate, never indexed
                continue
            dup = self._match(i, sigs, keys, outer.get(i, ()), inner, ids)
            result.append(dup)
            if dup is None:
                for j, key in enumerate(keys[i].tolist()):
                    inner.setdefault((j, key), i)
                kept.append(i)
        self._insert([ids[i] for i in kept], sigs[kept], keys[kept])
        return result

    # ------------------------------------------------------------ internals
    def _band_keys(self, sigs: np.ndarray, exact: np.ndarray, scopes: Sequence[str]) -> np.ndarray:
        """``(n, bands + 1)`` uint64: one key per band, then the exact-text key (all scope-salted)."""
        n, bands = sigs.shape[0], self.cfg.bands
        salt = np.fromiter((_stable_hash64(s) if s else 0 for s in scopes), np.uint64, n)
        banded = sigs.reshape(n, bands, self._rows).astype(np.uint64) * self._tables.band_mult
        keys = np.empty((n, bands + 1), np.uint64)
        keys[:, :bands] = banded.sum(axis=2) + self._tables.band_salt + salt[:, None]
        keys[:, bands] = exact ^ salt
        return keys

    def _candidates_in_runs(self, keys: np.ndarray) -> dict[int, list[tuple[int, int]]]:
        """Batch row -> [(column, canonical ordinal)] for every key found in the indexed runs."""
        found: dict[int, list[tuple[int, int]]] = {}
        for run in self._runs:
            for j in range(keys.shape[1]):
                col = run.keys[:, j]
                lo = np.searchsorted(col, keys[:, j], side="left")
                hi = np.searchsorted(col, keys[:, j], side="right")
                for i in np.flatnonzero(hi > lo).tolist():
                    found.setdefault(i, []).extend((j, int(o)) for o in run.ords[lo[i] : hi[i], j])
        return found

    def _match(self, i, sigs, keys, outer, inner, batch_ids) -> str | None:
        """The canonical id document ``i`` duplicates, or None.

        Candidates are refs: an indexed ordinal (< n), or n + row for a document kept earlier in
        this batch, so refs also order candidates by arrival (ties go to the older document).
        """
        n = len(self._ids)
        candidates = list(outer)
        for j, key in enumerate(keys[i].tolist()):
            row = inner.get((j, key))
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
            merged_keys = np.concatenate([a.keys, b.keys])
            merged_ords = np.concatenate([a.ords, b.ords])
            order = np.argsort(merged_keys, axis=0, kind="stable")
            cols = np.arange(merged_keys.shape[1])
            self._runs.append(_Run(merged_keys[order, cols], merged_ords[order, cols]))


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
