"""Per-process token caches shared by every fast vectorizer with the same analyzer settings.

The default tagger featurizes the same text many times: a boilerplate paragraph is the ``text`` of
its own row and the ``prev_text`` / ``next_text`` of its neighbours, the topic text is the kept
paragraphs again (one per line), and the stance text is that story once more, on one line. Each of
those passes used to lowercase, tokenize and look up every token itself. Here:

- each distinct line of text is lowercased and split at whitespace once per process into an array
  of **word ids** (``SpaceWords``); a document is the concatenation of its lines' arrays, and
  documents are cached too (bounded);
- what a vectorizer needs of a word is computed once per distinct word and stored by word id:
  its ``analyzer="word"`` tokens (``WordTokens``, for a token pattern) and its char_wb n-gram hits
  (``inference.text.char_ngrams``); a batch of documents then becomes arrays by numpy gathers.

Why this is exact (sklearn lowercases the whole document, then tokenizes it): every separator used
here is whitespace, and for all 29 whitespace characters (a) ``str.lower`` maps them to themselves
and they are neither cased nor case-ignorable, so the only context-dependent lowercase rule (Greek
final sigma) never looks across them, (b) they are never ``\\w``, so word tokens and ``\\b``
boundaries stop at them (a document's regex tokens are its whitespace-separated words' tokens, in
order) and (c) ``str.split()`` splits at them. ``tests/inference/test_ngram_counts.py`` checks (a)
for every whitespace character and compares the counts with sklearn's on documents with every kind
of line and space.
"""

from __future__ import annotations

import re
import weakref
from itertools import repeat

import numpy as np

# Documents and lines kept (two generations of this many, see BoundedCache): more than a batch of
# 256 articles puts (~2,300), so the topic and stance passes find what the boilerplate pass split.
DOC_CACHE_SIZE = 4_096
# Distinct words with ids (and per-word data); at this many the table keeps the recent half.
WORDS_MAX = 200_000

_EMPTY = np.zeros(0, dtype=np.int32)


class BoundedCache:
    """A dict with two generations: when the new one is full it becomes the old one (the previous
    old one is dropped), and a hit in the old one moves back to the new one. Recently used keys
    survive, memory stays below ``2 * cap`` entries."""

    def __init__(self, cap: int):
        self.cap = cap
        self.new: dict = {}
        self.old: dict = {}

    def get(self, key):
        value = self.new.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key, value) -> None:
        if len(self.new) >= self.cap:
            self.old, self.new = self.new, {}
        self.new[key] = value

    def clear(self) -> None:
        self.new, self.old = {}, {}


class RowStore:
    """Growing CSR rows (row i: the values stored for word id i), appended in id order."""

    def __init__(self):
        self.indptr = np.zeros(1 << 12, dtype=np.int64)
        self.values = np.zeros(1 << 16, dtype=np.int32)
        self.rows = 0

    def append(self, counts: np.ndarray, values: np.ndarray) -> None:
        """Rows for ``len(counts)`` more ids; ``values`` are their entries, row after row."""
        nnz = int(self.indptr[self.rows])
        self.indptr = _room(self.indptr, self.rows + 1 + len(counts))
        self.values = _room(self.values, nnz + len(values))
        self.indptr[self.rows + 1 : self.rows + 1 + len(counts)] = nnz + np.cumsum(counts)
        self.values[nnz : nnz + len(values)] = values
        self.rows += len(counts)

    def gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of ``ids`` concatenated, length of each)."""
        starts, counts = self.indptr[ids], self.indptr[ids + 1] - self.indptr[ids]
        first = np.cumsum(counts) - counts  # where each row begins in the output
        at = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts - first, counts)
        return self.values[at], counts

    def take(self, ids: np.ndarray | None) -> RowStore:
        """A store of the rows ``ids`` (ascending), renumbered 0, 1, ...; empty for None."""
        store = RowStore()
        if ids is not None and len(ids):
            values, counts = self.gather(ids)
            store.append(counts, values)
        return store


def _room(buffer: np.ndarray, size: int) -> np.ndarray:
    """``buffer`` or a copy at least twice as long, when it is shorter than ``size``."""
    if size <= len(buffer):
        return buffer
    grown = np.zeros(max(size, 2 * len(buffer)), dtype=buffer.dtype)
    grown[: len(buffer)] = buffer
    return grown


class SpaceWords:
    """Whitespace-separated words as ids in a bounded table; documents as cached id arrays.

    A document is cached under itself and, when it has several lines, under its lines joined by
    single spaces as well (the tagger's stance text: the topic text normalized again); its lines are
    cached too (a topic text's lines are the boilerplate model's paragraphs). Both forms of a
    document have the same words (see the module doc).

    When the table reaches ``WORDS_MAX`` words it keeps the half used most recently (frequent words:
    most tokens) and renumbers them in their old order. ``generation`` counts these compactions;
    data stored per word id follows with ``kept_rows``.
    """

    def __init__(self, lowercase: bool):
        self.lowercase = lowercase
        self.cache = BoundedCache(DOC_CACHE_SIZE)
        self.table: dict[str, int] = {}
        self.words: list[str] = []
        self.generation = 0
        self._kept: np.ndarray | None = None  # old ids of the words the last compaction kept
        self._last_used = np.zeros(1 << 12, dtype=np.int64)  # per id: call number of last use
        self._calls = 0

    # ------------------------------------------------------------ documents
    def doc_ids(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(word ids of all documents, concatenated; number of words of each document)."""
        if len(self.words) >= WORDS_MAX:  # only between calls: ids stay valid within one
            self._compact()
        cache, parts, missing = self.cache, [], {}
        for doc in docs:
            ids = cache.new.get(doc)
            if ids is None:
                ids = cache.get(doc)
                if ids is None:
                    missing[doc] = None
                    ids = doc
            parts.append(ids)
        if missing:
            found = self._resolve(list(missing))
            parts = [found[p] if type(p) is str else p for p in parts]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        flat = np.concatenate(parts) if parts else _EMPTY
        self._calls += 1
        self._last_used = _room(self._last_used, len(self.words))
        self._last_used[flat] = self._calls
        return flat, lengths

    def _resolve(self, docs: list[str]) -> dict[str, np.ndarray]:
        """Id arrays of documents not cached: their lines from the cache or split (all at once)."""
        lines = {doc: doc.split("\n") for doc in docs if "\n" in doc}
        have: dict[str, np.ndarray | None] = {}
        for doc in docs:
            for line in lines.get(doc, (doc,)):
                if line not in have:
                    have[line] = self.cache.get(line)
        todo = [line for line, ids in have.items() if ids is None]
        if todo:
            for line, ids in zip(todo, self._split(todo), strict=True):
                have[line] = ids
                self.cache.put(line, ids)
        out = {}
        for doc in docs:
            if doc in lines:
                out[doc] = np.concatenate([have[line] for line in lines[doc]])
                self.cache.put(doc, out[doc])
                self.cache.put(" ".join(doc.split()), out[doc])
            else:
                out[doc] = have[doc]
        return out

    # ------------------------------------------------------------ words
    def _split(self, lines: list[str]) -> list[np.ndarray]:
        """The word ids of each line; new words get ids."""
        table, flat, counts = self.table, [], []
        for line in lines:
            words = (line.lower() if self.lowercase else line).split()
            ids = list(map(table.get, words, repeat(-1)))
            if -1 in ids:  # new words: ~20 an article once the table is warm
                for i, wid in enumerate(ids):
                    if wid == -1:
                        ids[i] = table.get(words[i], -1)
                        if ids[i] == -1:
                            ids[i] = table[words[i]] = len(self.words)
                            self.words.append(words[i])
            flat += ids
            counts.append(len(ids))
        return np.split(np.array(flat, dtype=np.int32), np.cumsum(counts)[:-1])

    def _compact(self) -> None:
        n, half = len(self.words), WORDS_MAX // 2
        recent = np.argsort(-self._last_used[:n], kind="stable")[:half]
        kept = np.sort(recent)
        self.words = [self.words[i] for i in kept.tolist()]
        self.table = dict(zip(self.words, range(len(self.words)), strict=True))
        self._last_used = _room(self._last_used[kept], len(self._last_used))
        self._kept = kept
        self.cache.clear()  # its arrays hold old ids
        self.generation += 1

    def kept_rows(self, generation: int, rows: int) -> np.ndarray | None:
        """For data stored per id in ``generation`` for ids 0..rows-1: the old ids to keep, in
        order (they become ids 0, 1, ...); None when it must start over."""
        if self._kept is None or generation != self.generation - 1:
            return None
        return self._kept[: np.searchsorted(self._kept, rows)]


class WordTokens:
    """``analyzer="word"`` tokens of documents as ids in a table of every vocabulary token of the
    vectorizers sharing this token pattern (-1: in no vocabulary, so in no n-gram of any of them),
    from each distinct word's tokens, computed once.

    Users (``inference.text.ngram_counts.WordCounts``) are held weakly: when one goes away, the next
    to join rebuilds the table without its tokens. ``version`` changes with every table change.
    """

    def __init__(self, token_pattern: str, lowercase: bool):
        self.words = space_words(lowercase)
        self.findall = re.compile(token_pattern).findall  # what build_tokenizer() returns
        self.table: dict[str, int] = {}
        self.version = 0
        self._users: list[weakref.ref] = []
        self._reset()

    def join(self, user) -> None:
        """Add the tokens of ``user.token_ids`` (a dict whose keys are tokens)."""
        live = [u for ref in self._users if (u := ref()) is not None]
        if len(live) < len(self._users):
            self.table = {}
            for other in live:
                self._add_tokens(other.token_ids)
        self._users = [weakref.ref(u) for u in (*live, user)]
        self._add_tokens(user.token_ids)

    def _add_tokens(self, tokens) -> None:
        before = len(self.table)
        for tok in tokens:
            self.table.setdefault(tok, len(self.table))
        if len(self.table) != before or not before:
            self.version += 1
            self._reset()  # stored ids say -1 for the tokens just added

    def _reset(self) -> None:
        self.generation = self.words.generation
        self.store = RowStore()

    def _ensure(self) -> None:
        """Tokens of every word of the table that has none stored yet (ids ascend)."""
        if self.generation != self.words.generation:  # the table was compacted: follow it
            self.store = self.store.take(self.words.kept_rows(self.generation, self.store.rows))
            self.generation = self.words.generation
        new = self.words.words[self.store.rows :]
        if not new:
            return
        tokens = list(map(self.findall, new))
        counts = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        flat = [t for toks in tokens for t in toks]
        ids = np.fromiter(map(self.table.get, flat, repeat(-1)), dtype=np.int32, count=len(flat))
        self.store.append(counts, ids)

    def doc_ids(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids of all documents, concatenated; number of tokens of each document)."""
        wids, n_words = self.words.doc_ids(docs)
        self._ensure()
        ids, per_word = self.store.gather(wids)
        lengths = np.bincount(np.repeat(np.arange(len(docs)), n_words), per_word, len(docs))
        return ids, lengths.astype(np.int64)


_SPACE_WORDS: dict[bool, SpaceWords] = {}
_WORD_TOKENS: dict[tuple, WordTokens] = {}


def space_words(lowercase: bool) -> SpaceWords:
    if lowercase not in _SPACE_WORDS:
        _SPACE_WORDS[lowercase] = SpaceWords(lowercase)
    return _SPACE_WORDS[lowercase]


def word_tokens(token_pattern: str, lowercase: bool) -> WordTokens:
    key = (token_pattern, lowercase)
    if key not in _WORD_TOKENS:
        _WORD_TOKENS[key] = WordTokens(token_pattern, lowercase)
    return _WORD_TOKENS[key]
