"""Exact, fast document-term counts for fitted sklearn text vectorizers, at serving time only.

Profiling ``khabar tag`` with the default sklearn bundles put ~85% of the time in
``CountVectorizer._count_vocab``: a Python loop that builds every character n-gram of every word
and looks each one up in the vocabulary (an article is ~20k char n-grams for the three models).
This module computes the same sparse count matrix with most of the work moved into C:

- ``char_wb``: a word's n-grams depend on the word alone, so each distinct word is analyzed once
  (numpy integer keys of its padded windows; sklearn's own ``_char_wb_ngrams`` for ranges starting
  above 3) and its vocabulary hits are cached; a batch is then ``D @ W`` (documents x distinct
  words counts, times distinct words x features counts).
- ``word``: tokens (the vectorizer's own tokenizer) become ids; unigrams are an array lookup,
  n-grams a lookup of their id tuple in a ``pandas.Index`` of the vocabulary's id tuples.

The result is the matrix ``_count_vocab`` returns (same values, sorted indices, dtype, index
dtype), so the rest of ``transform`` (``binary``, the TF-IDF weighting, normalization) runs
unchanged in sklearn. ``install`` replaces ``_count_vocab`` on a fitted vectorizer *instance* only
for configurations handled here, after checking the result on probe documents against sklearn's own
code; fitting (``fixed_vocab=False``) always goes back to sklearn. ``tests/test_ngram_counts.py``
compares both on real text.
"""

from __future__ import annotations

import logging
from array import array
from itertools import chain, repeat
from typing import Any

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

# Token patterns whose tokens never contain a space: an n-gram term "a b" then splits unambiguously.
SPACE_FREE_TOKEN_PATTERNS = frozenset({r"(?u)\b\w\w+\b", r"(?u)\b\w+\b"})
# Per-vectorizer cache of distinct words (char_wb); cleared when full so memory stays bounded.
WORD_CACHE_SIZE = 100_000
# Token lists of recent documents, per token pattern, shared by all word vectorizers: the
# boilerplate model tokenizes every paragraph three times (as the paragraph, and as the previous
# and the next paragraph's context). Cleared when full.
DOC_CACHE_SIZE = 4096
_DOC_TOKENS: dict[str, dict[str, list[str]]] = {}
_INT_MAX = np.iinfo(np.int32).max


def _align(X):
    # sklearn >= 1.8 converts its sparse output to the configured API (matrix vs array) here.
    from sklearn.feature_extraction import text

    return getattr(text, "_align_api_if_sparse", lambda m: m)(X)


def _as_list(raw_documents) -> list:
    # A pandas column: tolist() is much faster than iterating an Arrow-backed string array.
    return raw_documents.tolist() if hasattr(raw_documents, "tolist") else list(raw_documents)


def _finish(X, n_features: int, dtype) -> Any:
    """The matrix as ``_count_vocab`` builds it: canonical CSR, int32 indices, ``dtype`` values.

    ``X``: CSR counts, possibly with unsorted and duplicate column indices. Two transpositions
    sort the indices (linear time, ~5x faster than sorting each row); duplicates then sit side by
    side and are summed in one pass.
    """
    X = X.tocsc().tocsr()
    X.sum_duplicates()
    X = sp.csr_array(X, dtype=dtype)
    if X.nnz <= _INT_MAX and n_features <= _INT_MAX:
        X.indices = X.indices.astype(np.int32, copy=False)
        X.indptr = X.indptr.astype(np.int32, copy=False)
    return _align(X)


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]):
    """CSR of ones at (rows, cols), duplicates kept (``_finish`` sums them)."""
    order = np.argsort(rows, kind="stable")  # rows arrive as a few sorted runs: ~linear
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_array((np.ones(len(rows), dtype=np.int32), cols[order], indptr), shape=shape)


class _Counts:
    """``vectorizer._count_vocab`` replacement for one fitted vectorizer (fixed vocabulary)."""

    def __init__(self, vectorizer):
        self.vectorizer = vectorizer
        self.vocabulary = vectorizer.vocabulary_  # the tables below are built from this dict
        self.n_features = len(vectorizer.vocabulary_)
        self.dtype = vectorizer.dtype
        self.lowercase = bool(vectorizer.lowercase)

    def __call__(self, raw_documents, fixed_vocab):
        vec = self.vectorizer
        if not fixed_vocab or vec.vocabulary_ is not self.vocabulary:
            uninstall(vec)  # refitting, or a new vocabulary: sklearn's code from now on
            return type(vec)._count_vocab(vec, raw_documents, fixed_vocab)
        raw = _as_list(raw_documents)
        if not all(isinstance(d, str) for d in raw):  # bytes, NaN...: sklearn decodes or raises
            return type(vec)._count_vocab(vec, raw, fixed_vocab)
        docs = raw
        if self.lowercase:
            docs = [d.lower() for d in docs]
        return self.vectorizer.vocabulary_, _finish(self.counts(docs), self.n_features, self.dtype)

    def counts(self, docs: list[str]):
        raise NotImplementedError


class CharWBCounts(_Counts):
    """``analyzer="char_wb"``: per distinct word n-gram hits, cached; a batch is one sparse product.

    A word's hits are computed for all new words of a batch at once with numpy: characters become
    alphabet ids (the alphabet of the vocabulary; any other character is in no term), every window
    of " word " of each n-gram length becomes an integer key, and the keys are looked up in an
    index of the vocabulary's keys.
    """

    def __init__(self, vectorizer):
        super().__init__(vectorizer)
        import pandas as pd

        self.lo, self.hi = vectorizer.ngram_range
        alphabet = sorted(set("".join(self.vocabulary)))
        self.alphabet = np.array([ord(c) for c in alphabet], dtype=np.uint32)
        self.bits = len(alphabet).bit_length()  # ids 1..len(alphabet); 0 = not in the alphabet
        # Every padded word " w " has >= 3 characters, so with lo <= 3 each one yields its windows
        # of lengths lo..min(hi, len) (sklearn's short-word rule included); keys must fit 63 bits.
        self.vectorized = self.lo <= 3 and self.hi * self.bits <= 63
        if self.vectorized:
            code = {c: i + 1 for i, c in enumerate(alphabet)}
            keys = [self._key([code[c] for c in term]) for term in self.vocabulary]
            self.index = pd.Index(np.asarray(keys, dtype=np.int64))
            self.features = np.fromiter(self.vocabulary.values(), dtype=np.int32)
        self._ngrams = vectorizer._char_wb_ngrams  # n-grams of " word " exactly as sklearn pads
        self._cache: dict[str, bytes] = {}

    def _key(self, ids: list[int]) -> int:
        key = 0
        for i in ids:
            key = (key << self.bits) | i
        return key

    def _hits_python(self, words: list[str]) -> list[bytes]:
        vocab = self.vocabulary
        return [
            array("i", [j for g in self._ngrams(w) if (j := vocab.get(g)) is not None]).tobytes()
            for w in words
        ]

    def _hits(self, words: list[str]) -> list[bytes]:
        """Feature ids (repeated per occurrence, int32 bytes) of each word's n-grams."""
        if not self.vectorized:
            return self._hits_python(words)
        padded = " " + "  ".join(words) + " "
        cp = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32)
        at = np.searchsorted(self.alphabet, cp)
        at[at == len(self.alphabet)] = 0
        cid = np.where(self.alphabet[at] == cp, at + 1, 0).astype(np.int64)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        ends = np.cumsum(lengths)
        word_of = np.repeat(np.arange(len(words)), lengths)
        end_of = ends[word_of]
        key = np.zeros(len(cp), dtype=np.int64)
        ok = np.ones(len(cp), dtype=bool)
        hit_words, hit_features = [], []
        for n in range(1, self.hi + 1):
            m = len(cp) - n + 1
            if m <= 0:
                break
            last = cid[n - 1 : n - 1 + m]
            key = (key[:m] << self.bits) | last
            ok = ok[:m] & (last != 0)
            if n < self.lo:
                continue
            valid = ok & (np.arange(n, m + n) <= end_of[:m])  # inside one padded word
            found = self.index.get_indexer(key[valid])
            hit = found >= 0
            hit_words.append(word_of[:m][valid][hit])
            hit_features.append(self.features[found[hit]])
        w = np.concatenate(hit_words)
        order = np.argsort(w, kind="stable")
        feats = np.concatenate(hit_features)[order]
        bounds = np.searchsorted(w[order], np.arange(len(words) + 1))
        return [feats[a:b].tobytes() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def counts(self, docs: list[str]):
        # Per-token work stays in C (split, dict.fromkeys, map): articles have ~300 tokens each.
        split = [doc.split() for doc in docs]
        flat = list(chain.from_iterable(split))
        words = list(dict.fromkeys(flat))  # this batch's distinct words, in first-seen order
        ids = dict(zip(words, range(len(words)), strict=True))
        tokens = np.fromiter(map(ids.__getitem__, flat), dtype=np.int32, count=len(flat))
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, split), dtype=np.int64, count=len(docs)), out=indptr[1:])
        per_doc = sp.csr_array(
            (np.ones(len(flat), dtype=np.int32), tokens, indptr), shape=(len(docs), len(words))
        )
        if len(self._cache) + len(words) > WORD_CACHE_SIZE:
            self._cache.clear()
        cache = self._cache
        hits = list(map(cache.get, words))
        new = [i for i, h in enumerate(hits) if h is None]
        if new:
            for i, h in zip(new, self._hits([words[i] for i in new]), strict=True):
                hits[i] = cache[words[i]] = h
        lengths = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits)) // 4
        bounds = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        per_word = sp.csr_array(
            (
                np.ones(int(bounds[-1]), dtype=np.int32),
                np.frombuffer(b"".join(hits), dtype=np.int32),
                bounds,
            ),
            shape=(len(words), self.n_features),
        )
        return per_doc @ per_word


class WordCounts(_Counts):
    """``analyzer="word"``: token ids, then unigram and n-gram hits by array / index lookups."""

    def __init__(self, vectorizer):
        super().__init__(vectorizer)
        import pandas as pd

        self.tokenize = vectorizer.build_tokenizer()
        self._doc_tokens = _DOC_TOKENS.setdefault(vectorizer.token_pattern, {})
        self.lo, self.hi = vectorizer.ngram_range
        terms = [(term.split(" "), j) for term, j in vectorizer.vocabulary_.items()]
        self.token_ids: dict[str, int] = {}
        for parts, _ in terms:
            for tok in parts:
                self.token_ids.setdefault(tok, len(self.token_ids))
        self.base = len(self.token_ids) + 1  # digits are id + 1: keys of different lengths differ
        if self.base**self.hi >= 2**63:
            raise ValueError("vocabulary too large for 64-bit n-gram keys")
        self.unigram = np.full(len(self.token_ids), -1, dtype=np.int64)
        keys, features = [], []
        for parts, j in terms:
            if len(parts) == 1:
                self.unigram[self.token_ids[parts[0]]] = j
            else:
                keys.append(self._key([self.token_ids[t] for t in parts]))
                features.append(j)
        self.ngram_index = pd.Index(np.asarray(keys, dtype=np.int64))
        self.ngram_features = np.asarray(features, dtype=np.int64)

    def _key(self, ids: list[int]) -> int:
        key = 0
        for i in ids:
            key = key * self.base + i + 1
        return key

    def counts(self, docs: list[str]):
        cache = self._doc_tokens
        if len(cache) + len(docs) > DOC_CACHE_SIZE:
            cache.clear()
        split = list(map(cache.get, docs))
        for i, toks in enumerate(split):
            if toks is None:
                split[i] = cache[docs[i]] = self.tokenize(docs[i])
        n_tokens = np.fromiter(map(len, split), dtype=np.int64, count=len(docs))
        flat = chain.from_iterable(split)
        tid = np.fromiter(
            map(self.token_ids.get, flat, repeat(-1)), dtype=np.int64, count=int(n_tokens.sum())
        )
        row = np.repeat(np.arange(len(docs)), n_tokens)
        rows, cols = [], []
        if self.lo <= 1:
            feat = np.where(tid >= 0, self.unigram[np.maximum(tid, 0)], -1)
            ok = feat >= 0
            rows.append(row[ok])
            cols.append(feat[ok])
        for n in range(max(self.lo, 2), self.hi + 1):
            m = len(tid) - n + 1
            if m <= 0:
                break
            key = np.zeros(m, dtype=np.int64)
            ok = row[n - 1 :] == row[:m]  # the n tokens belong to one document
            for k in range(n):
                part = tid[k : k + m]
                ok &= part >= 0
                key = key * self.base + part + 1
            at = self.ngram_index.get_indexer(key[ok])
            found = at >= 0
            rows.append(row[:m][ok][found])
            cols.append(self.ngram_features[at[found]])
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        return _csr(r, c, (len(docs), self.n_features))


def _supported(vec) -> type[_Counts] | None:
    vocab = getattr(vec, "vocabulary_", None)
    if not isinstance(vocab, dict) or not vocab or not hasattr(type(vec), "_count_vocab"):
        return None
    if vec.preprocessor is not None or vec.tokenizer is not None or vec.strip_accents is not None:
        return None
    if getattr(vec, "input", None) != "content":  # "filename" / "file" inputs are read first
        return None
    if vec.analyzer == "char_wb" and vec.ngram_range[0] >= 1:
        return CharWBCounts
    if (
        vec.analyzer == "word"
        and vec.stop_words is None
        and vec.token_pattern in SPACE_FREE_TOKEN_PATTERNS
        and 1 <= vec.ngram_range[0] <= vec.ngram_range[1]
    ):
        return WordCounts
    return None


def _probe_documents(vec) -> list[str]:
    """Documents made of vocabulary terms, case variants and unknown text, plus edge cases."""
    terms = list(vec.vocabulary_)[:400]
    text = " ".join(terms)
    return [text, text.upper(), " ".join(reversed(terms)), "", "   ", "x", "غير معروف  تماما\nسطر"]


def _same(a, b) -> bool:
    return (
        type(a) is type(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.indices.dtype == b.indices.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def install(vec) -> bool:
    """Give a fitted vectorizer the fast ``_count_vocab`` if its configuration is handled here and
    it reproduces sklearn's counts on probe documents; return whether it was installed."""
    kind = _supported(vec)
    if kind is None or "_count_vocab" in vec.__dict__:
        return "_count_vocab" in vec.__dict__
    try:
        fast = kind(vec)
        probe = _probe_documents(vec)
        expected = type(vec)._count_vocab(vec, probe, fixed_vocab=True)[1]
        if not _same(fast(probe, fixed_vocab=True)[1], expected):
            log.warning("fast n-gram counts differ from sklearn for %r; not used", vec)
            return False
    except Exception as exc:  # any surprise: keep sklearn's own code
        log.warning("fast n-gram counts unavailable for %r: %s", vec, exc)
        return False
    vec._count_vocab = fast
    return True


def uninstall(vec) -> None:
    vec.__dict__.pop("_count_vocab", None)
