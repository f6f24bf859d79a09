"""Exact, fast document-term counts for fitted sklearn text vectorizers, at serving time only.

Profiling ``khabar tag`` with the default sklearn bundles put ~85% of the time in
``CountVectorizer._count_vocab``: a Python loop that builds every character n-gram of every word
and looks each one up in the vocabulary (an article is ~20k char n-grams for the three models).
This module computes the same sparse count matrix with the per-token work done once per process:

- documents become integer id arrays through ``inference.text.text_tokens``: each distinct line of
  text is lowercased and tokenized once, whichever model and column it appears in (a paragraph, its
  neighbours' context, the topic text, the stance text);
- ``char_wb``: a word's n-gram hits are looked up once for all vectorizers with the same settings
  (``inference.text.char_ngrams``); a batch is then ``D @ W`` (documents x distinct words counts,
  times distinct words x features counts);
- ``word``: token ids are mapped to the vectorizer's own ids with one array lookup; unigrams are an
  array lookup, n-grams a lookup of their id tuple in a ``pandas.Index`` of the vocabulary's.

The result is the matrix ``_count_vocab`` returns (same values, sorted indices, dtype, index
dtype), so the rest of ``transform`` (``binary``, the TF-IDF weighting, normalization) runs
unchanged in sklearn. ``install`` replaces ``_count_vocab`` on a fitted vectorizer *instance* only
for configurations handled here, after checking the result on probe documents against sklearn's own
code; fitting (``fixed_vocab=False``) always goes back to sklearn.
``tests/inference/test_ngram_counts.py`` compares both on real text.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

from inference.text.char_ngrams import char_group
from inference.text.text_tokens import word_tokens

log = logging.getLogger(__name__)

# Token patterns whose tokens never contain a space: an n-gram term "a b" then splits unambiguously.
SPACE_FREE_TOKEN_PATTERNS = frozenset({r"(?u)\b\w\w+\b", r"(?u)\b\w+\b"})
_INT_MAX = np.iinfo(np.int32).max
# The token tables and caches are shared by every vectorizer of the process: one batch at a time
# (a threaded server may call several models at once). A forked child starts with a free lock even
# if another thread of the parent held it at the fork.
_LOCK = threading.RLock()


def _new_lock() -> None:
    global _LOCK
    _LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_lock)


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
        docs = _as_list(raw_documents)
        if not all(isinstance(d, str) for d in docs):  # bytes, NaN...: sklearn decodes or raises
            return type(vec)._count_vocab(vec, docs, fixed_vocab)
        with _LOCK:
            counts = self.counts(docs)
        return self.vectorizer.vocabulary_, _finish(counts, self.n_features, self.dtype)

    def counts(self, docs: list[str]):
        raise NotImplementedError


class CharWBCounts(_Counts):
    """``analyzer="char_wb"``: per distinct word n-gram hits, shared and cached
    (``inference.text.char_ngrams``); a batch is one sparse product."""

    def __init__(self, vectorizer):
        super().__init__(vectorizer)
        self.group = char_group(self.lowercase, vectorizer.ngram_range)
        self.member = self.group.join(vectorizer)

    def counts(self, docs: list[str]):
        return self.group.counts(docs, self.member)


class WordCounts(_Counts):
    """``analyzer="word"``: token ids, then unigram and n-gram hits by array / index lookups."""

    def __init__(self, vectorizer):
        super().__init__(vectorizer)
        import pandas as pd

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
        self.table = word_tokens(vectorizer.token_pattern, self.lowercase)
        self.table.join(self)
        self._local, self._local_version = np.zeros(0, dtype=np.int64), -1

    def _key(self, ids: list[int]) -> int:
        key = 0
        for i in ids:
            key = key * self.base + i + 1
        return key

    def _local_ids(self) -> np.ndarray:
        """Shared token id -> this vocabulary's token id (-1: not in it), with one more entry at
        the end for the shared id -1; rebuilt whenever the shared table changed."""
        if self._local_version != self.table.version:
            table = self.table.table
            local = np.full(len(table) + 1, -1, dtype=np.int64)
            local[[table[t] for t in self.token_ids]] = np.arange(len(self.token_ids))
            self._local, self._local_version = local, self.table.version
        return self._local

    def counts(self, docs: list[str]):
        shared, n_tokens = self.table.doc_ids(docs)
        tid = self._local_ids()[shared]
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
