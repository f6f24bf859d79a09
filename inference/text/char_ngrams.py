"""``char_wb`` n-gram hits per distinct word, computed once per process for all vectorizers alike.

The topic, stance and boilerplate models each have a char_wb TF-IDF over the same words. A word's
n-grams depend on the word alone, so one ``CharNgramGroup`` (per ``lowercase`` and ``ngram_range``)
looks each new word up once in the **union** of its members' vocabularies (word ids of
``inference.text.text_tokens.SpaceWords``); each member maps the hits to its own feature ids once
and keeps a (word id x feature) CSR matrix of all words seen, so a batch is one sparse product of
(documents x word ids) counts with it. Words are looked up in numpy: characters become alphabet
ids (the union alphabet; any other character is in no term), every window of " word " of each
length becomes an integer key, and keys are found in an index of the union's keys.

Members are held weakly: when a vectorizer goes away, the next one to join rebuilds the union
without its vocabulary (a process that loads bundle after bundle does not grow).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import clone

from inference.text.text_tokens import RowStore, SpaceWords, space_words


class CharNgramGroup:
    """Fitted char_wb vectorizers with the same ``lowercase`` and ``ngram_range``."""

    def __init__(self, lowercase: bool, ngram_range: tuple[int, int]):
        self.words: SpaceWords = space_words(lowercase)
        self.lo, self.hi = ngram_range
        self.terms: dict[str, int] = {}  # union of the members' vocabularies -> union term id
        self._ngrams = None  # sklearn's own _char_wb_ngrams, for ranges the keys cannot cover
        self._members: list[weakref.ref] = []
        self._reset_hits()

    # ------------------------------------------------------------ members
    def members(self) -> list[_Member]:
        return [m for ref in self._members if (m := ref()) is not None]

    def join(self, vectorizer) -> _Member:
        """A member for a fitted vectorizer (kept alive by the caller, held weakly here)."""
        live = self.members()
        before = len(self.terms)
        if len(live) < len(self._members):  # some went away: a union of the live ones only
            self.terms, before = {}, -1
            for member in live:
                self._add_terms(member.vocabulary)
        self._add_terms(vectorizer.vocabulary_)
        if len(self.terms) != before or self._ngrams is None:
            # An unfitted copy: the same padding and ranges, no reference to the fitted one.
            self._ngrams = clone(vectorizer)._char_wb_ngrams
            self._build_index()
        member = _Member(vectorizer.vocabulary_)
        self._members = [weakref.ref(m) for m in (*live, member)]
        for m in (*live, member):
            m.map_terms(self.terms)
        self._reset_hits()  # union ids of cached hits are stale, the new member has none
        return member

    def _add_terms(self, vocabulary: dict[str, int]) -> None:
        for term in vocabulary:
            self.terms.setdefault(term, len(self.terms))

    def _build_index(self) -> None:
        """Integer keys of every union term (base-2**bits digits: alphabet ids), in numpy."""
        terms = list(self.terms)  # insertion order = union term id
        cp = np.frombuffer("".join(terms).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        self.alphabet = np.unique(cp)
        self.bits = len(self.alphabet).bit_length()  # ids 1..len; 0 = not in the alphabet
        # Every padded word " w " has >= 3 characters, so with lo <= 3 each one yields its windows
        # of lengths lo..min(hi, len) (sklearn's short-word rule included); keys must fit 63 bits.
        self.vectorized = self.lo <= 3 and self.hi * self.bits <= 63
        if not self.vectorized:
            return
        code = np.searchsorted(self.alphabet, cp).astype(np.int64) + 1
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        first = np.cumsum(lengths) - lengths
        keys = np.zeros(len(terms), dtype=np.int64)
        for n in np.unique(lengths).tolist():
            sel = np.flatnonzero(lengths == n)
            key = np.zeros(len(sel), dtype=np.int64)
            for j in range(n):
                key = (key << self.bits) | code[first[sel] + j]
            keys[sel] = key
        self.index = pd.Index(keys)

    # ------------------------------------------------------------ per-word hits
    def _reset_hits(self) -> None:
        self.generation = self.words.generation
        self.n_done = 0  # words 0..n_done-1 of the table have their rows in every member
        for member in self.members():
            member.rows = RowStore()

    def _hits_python(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        which, hits = [], []
        for i, w in enumerate(words):
            found = [t for g in self._ngrams(w) if (t := self.terms.get(g)) is not None]
            which += [i] * len(found)
            hits += found
        return np.asarray(which, dtype=np.int64), np.asarray(hits, dtype=np.int32)

    def _hits(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(word index, union term id) of every n-gram occurrence of ``words`` found in the union."""
        if not self.vectorized:
            return self._hits_python(words)
        padded = " " + "  ".join(words) + " "
        cp = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        at = np.searchsorted(self.alphabet, cp)
        at[at == len(self.alphabet)] = 0
        cid = np.where(self.alphabet[at] == cp, at + 1, 0).astype(np.int64)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        word_of = np.repeat(np.arange(len(words)), lengths)
        end_of = np.cumsum(lengths)[word_of]
        key = np.zeros(len(cp), dtype=np.int64)
        ok = np.ones(len(cp), dtype=bool)
        which, hits = [], []
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
            which.append(word_of[:m][valid][hit])
            hits.append(found[hit].astype(np.int32))
        return np.concatenate(which), np.concatenate(hits)

    def _ensure(self) -> None:
        """Give every member the rows of the table's words that have none yet (ids ascend)."""
        if self.generation != self.words.generation:  # the table was compacted: follow it
            kept = self.words.kept_rows(self.generation, self.n_done)
            for member in self.members():
                member.rows = member.rows.take(kept)
            self.n_done = 0 if kept is None else len(kept)
            self.generation = self.words.generation
        words = self.words.words
        if self.n_done == len(words):
            return
        which, hits = self._hits(words[self.n_done :])
        order = np.argsort(which, kind="stable")
        counts = np.bincount(which, minlength=len(words) - self.n_done)
        for member in self.members():
            member.append(counts, which[order], hits[order])
        self.n_done = len(words)

    # ------------------------------------------------------------ counts
    def counts(self, docs: list[str], member: _Member):
        """Document x feature counts of ``docs`` for one member: (documents x word ids) @
        (word ids x features)."""
        flat, lengths = self.words.doc_ids(docs)
        self._ensure()
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        per_doc = sp.csr_array(
            (np.ones(len(flat), dtype=np.int32), flat, indptr), shape=(len(docs), self.n_done)
        )
        return _product(per_doc, member.matrix(self.n_done))


class _Member:
    """One vectorizer's rows: word id -> its n-gram hits as this vectorizer's feature ids."""

    def __init__(self, vocabulary: dict[str, int]):
        self.vocabulary = vocabulary
        self.n_features = len(vocabulary)
        self.rows = RowStore()

    def map_terms(self, terms: dict[str, int]) -> None:
        """``fmap``: union term id -> this vocabulary's feature id, -1: not in it."""
        self.fmap = np.full(len(terms), -1, dtype=np.int32)
        self.fmap[[terms[t] for t in self.vocabulary]] = np.fromiter(
            self.vocabulary.values(), dtype=np.int32, count=len(self.vocabulary)
        )

    def append(self, counts: np.ndarray, which: np.ndarray, hits: np.ndarray) -> None:
        """Rows for ``len(counts)`` new words; ``hits`` (union ids) grouped by word (``which``)."""
        feature = self.fmap[hits]
        keep = feature >= 0
        self.rows.append(np.bincount(which[keep], minlength=len(counts)), feature[keep])

    def matrix(self, rows: int):
        indptr = self.rows.indptr[: rows + 1]
        nnz = int(indptr[-1])
        return sp.csr_array(
            (_ones(nnz), self.rows.values[:nnz], indptr), shape=(rows, self.n_features)
        )


# Above this many entries in the upper bound, ``_product`` lets scipy size the output exactly.
PRODUCT_BOUND_MAX = 1 << 24


def _product(a, b):
    """``a @ b`` for CSR count matrices: the same matrix, ~30% faster.

    scipy's product first runs a symbolic pass (``csr_matmat_maxnnz``) only to size the output;
    here the size is bounded from the row lengths instead (each entry of ``a`` adds at most its
    ``b`` row), and scipy's numeric kernel runs once. It is a private scipy function: if it is not
    there or changes, scipy's operator is used.
    """
    bound = int(np.diff(b.indptr)[a.indices].sum())
    if _matmat is None or bound > PRODUCT_BOUND_MAX:
        return a @ b
    try:
        index = np.int32 if max(bound, b.shape[1], a.shape[0]) < 2**31 else np.int64
        indptr = np.empty(a.shape[0] + 1, dtype=index)
        indices = np.empty(bound, dtype=index)
        data = np.empty(bound, dtype=np.result_type(a.dtype, b.dtype))
        _matmat(
            a.shape[0], b.shape[1],
            a.indptr.astype(index, copy=False), a.indices.astype(index, copy=False), a.data,
            b.indptr.astype(index, copy=False), b.indices.astype(index, copy=False), b.data,
            indptr, indices, data,
        )  # fmt: skip
    except (TypeError, ValueError):
        return a @ b
    nnz = int(indptr[-1])
    return sp.csr_array((data[:nnz], indices[:nnz], indptr), shape=(a.shape[0], b.shape[1]))


try:
    from scipy.sparse._sparsetools import csr_matmat as _matmat
except ImportError:  # pragma: no cover - a scipy without it: the operator
    _matmat = None

_ONES = np.ones(0, dtype=np.int32)


def _ones(n: int) -> np.ndarray:
    """A read-only view of ``n`` int32 ones (the data of count matrices), allocated rarely."""
    global _ONES
    if len(_ONES) < n:
        _ONES = np.ones(max(n, 2 * len(_ONES)), dtype=np.int32)
        _ONES.flags.writeable = False
    return _ONES[:n]


_GROUPS: dict[tuple, CharNgramGroup] = {}


def char_group(lowercase: bool, ngram_range: tuple[int, int]) -> CharNgramGroup:
    key = (lowercase, tuple(ngram_range))
    if key not in _GROUPS:
        _GROUPS[key] = CharNgramGroup(lowercase, key[1])
    return _GROUPS[key]
