"""MinHash fingerprints of documents for ``training.dataset.dedup``: word hashes, shingles,
signatures, band keys.

Pure functions of each text (and its scope), numpy-vectorized over a batch of texts, so the dataset
builder computes them in worker processes and only the index lookups stay in the parent. Everything
is seeded by constants (never Python's salted ``hash``), so every process computes the same values.

- a document is split on whitespace (ASCII lower-cased); each word gets a 64-bit hash by tabulation
  (a random 64-bit value per (position in word, code point), summed), computed for a whole batch
  of documents at once over their code points;
- ``shingle_words`` consecutive word hashes combine into a shingle hash; a document shorter than
  that is one shingle;
- ``num_perm`` multiply-shift hash functions give the MinHash signature (uint32 per function); the
  fraction of equal entries between two signatures estimates their shingle-set Jaccard similarity;
- the signature is cut into ``bands`` band keys, plus an order-sensitive hash of the word sequence
  (the exact-text key), all salted with the document's scope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

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


@lru_cache(maxsize=8)
def _tables(num_perm: int, bands: int, shingle_words: int) -> _Tables:
    return _Tables.make(num_perm, bands, shingle_words)


def minhash_signatures(texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures ``(len(texts), num_perm)`` uint32; an empty text gets all-max entries."""
    tables = _tables(cfg.num_perm, cfg.bands, cfg.shingle_words)
    words, counts = _word_hashes(texts, tables)
    return _signatures(words, counts, cfg, tables)


@dataclass
class Fingerprints:
    """What the index compares documents on; a pure function of each text (and its scope).

    Computed for a batch of texts anywhere (the dataset builder does it in worker processes) and
    added to a :class:`NearDuplicateIndex` later, in input order, with ``add_fingerprints``.
    """

    sigs: np.ndarray  # (n, num_perm) uint32 MinHash signatures
    keys: np.ndarray  # (n, bands + 1) uint64: one key per band, then the exact-text key
    words: np.ndarray  # (n,) int64 word counts; 0: an empty text (never a duplicate)

    def __len__(self) -> int:
        return int(self.words.size)

    @classmethod
    def stack(cls, parts: Sequence[tuple[Fingerprints, int]]) -> Fingerprints:
        """One row from each ``(fingerprints, row)``, in order."""
        return cls(
            np.stack([fp.sigs[i] for fp, i in parts]),
            np.stack([fp.keys[i] for fp, i in parts]),
            np.fromiter((fp.words[i] for fp, i in parts), np.int64, len(parts)),
        )


def fingerprints(
    texts: Sequence[str], cfg: DedupConfig, scopes: Sequence[str] | None = None
) -> Fingerprints:
    """Signatures and band keys of ``texts``: each row depends on its own text and scope only."""
    tables = _tables(cfg.num_perm, cfg.bands, cfg.shingle_words)
    scopes = scopes if scopes is not None else [""] * len(texts)
    words, counts = _word_hashes(texts, tables)
    sigs = _signatures(words, counts, cfg, tables)
    keys = _band_keys(sigs, _exact_keys(words, counts, tables), scopes, cfg, tables)
    return Fingerprints(sigs, keys, counts)


def _band_keys(
    sigs: np.ndarray, exact: np.ndarray, scopes: Sequence[str], cfg: DedupConfig, tables: _Tables
) -> np.ndarray:
    """``(n, bands + 1)`` uint64: one key per band, then the exact-text key (all scope-salted)."""
    n, bands = sigs.shape[0], cfg.bands
    salt = np.fromiter((_stable_hash64(s) if s else 0 for s in scopes), np.uint64, n)
    banded = sigs.reshape(n, bands, cfg.num_perm // bands).astype(np.uint64) * tables.band_mult
    keys = np.empty((n, bands + 1), np.uint64)
    keys[:, :bands] = banded.sum(axis=2) + tables.band_salt + salt[:, None]
    keys[:, bands] = exact ^ salt
    return keys


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
