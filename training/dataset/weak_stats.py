"""Pass-1 statistics of the weak labeler: per-article observation keys, and their sum.

Observation is split in two so the dataset builder can run it in parallel:

- :func:`observation_keys` is a pure function of one article (normalize every paragraph, hash it
  with its source; hash the title). It is the expensive part and runs in the worker processes.
- :class:`ObservationCounts` adds the keys of many articles up, in input order, in the parent
  process: two Bloom filters (already-seen stories, paragraphs seen once) and an exact counter of
  the paragraphs seen in more than one article. Adding is vectorized over a batch of articles.

Only 64-bit hashes are kept, and the Bloom filter keeps paragraphs seen once (the vast majority)
out of the counter, so memory stays small on archives of millions of articles.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

from inference.text.preprocess import is_empty_paragraph
from inference.text.schema import Article
from training.dataset.line_keys import MIN_TITLE_WORDS, loose_title_key, paragraph_keys, text_hash


@dataclass
class ArticleKeys:
    """What observing one article adds to the statistics (plain values: they cross processes)."""

    source: str
    story: int  # hash of source + title + text: the same story fetched twice counts once
    titles: list[int]  # the title's exact and loose hashes (none for a short title)
    paragraphs: list[int]  # one hash per distinct paragraph key


def observation_keys(article: Article) -> ArticleKeys:
    """What observing ``article`` adds to the statistics."""
    return observation_keys_many([article])[0]


def observation_keys_many(articles: list[Article]) -> list[ArticleKeys]:
    """``[observation_keys(a) for a in articles]``: the paragraphs and titles of all the articles
    are keyed in one ``paragraph_keys`` call (the cost is per character, not per call)."""
    texts, spans = [], []
    for art in articles:
        start = len(texts)
        texts.append(art.title or "")
        texts.extend(p for p in art.paragraphs if not is_empty_paragraph(p))
        spans.append((start, len(texts)))
    keys = paragraph_keys(texts)
    return [
        _article_keys(art, keys[a], keys[a + 1 : b])
        for art, (a, b) in zip(articles, spans, strict=True)
    ]


def _article_keys(article: Article, title_key: str, paragraph_keys: list[str]) -> ArticleKeys:
    source = article.source or ""
    titles = []
    if len(title_key.split()) >= MIN_TITLE_WORDS:
        titles.append(text_hash(source, title_key))
        loose = loose_title_key(title_key)
        if loose:
            titles.append(text_hash(source, "~", loose))
    return ArticleKeys(
        source=source,
        story=text_hash(source, article.title or "", article.text),
        titles=titles,
        # A set: a line repeated inside one article is still one article carrying it.
        paragraphs=[text_hash(source, key) for key in set(paragraph_keys)],
    )


class BloomFilter:
    """A fixed-size set of 64-bit hashes with rare false positives and no false negatives."""

    def __init__(self, bits_log2: int = 27, n_hashes: int = 4):
        self._mask = (1 << bits_log2) - 1
        self._bits = bytearray((1 << bits_log2) // 8)
        self._k = n_hashes

    def _positions(self, h: int) -> list[int]:
        h1, h2 = h & 0xFFFFFFFF, (h >> 32) | 1
        return [(h1 + i * h2) & self._mask for i in range(self._k)]

    def add(self, h: int) -> bool:
        """Insert ``h``; True when it was (probably) already present."""
        present = True
        for pos in self._positions(h):
            byte, bit = pos >> 3, 1 << (pos & 7)
            if not self._bits[byte] & bit:
                present = False
                self._bits[byte] |= bit
        return present

    def add_many(self, hashes: np.ndarray) -> np.ndarray:
        """``[add(h) for h in hashes]`` in one vectorized step (same answers, same bits).

        ``add`` answers True when every bit of ``h`` was already set, by earlier batches or by an
        earlier hash of this batch: a bit counts for hash i when the first hash of the batch that
        sets it comes before i.
        """
        n = hashes.size
        if not n:
            return np.zeros(0, bool)
        h = hashes.astype(np.uint64)
        h1, h2 = h & np.uint64(0xFFFFFFFF), (h >> np.uint64(32)) | np.uint64(1)
        steps = np.arange(self._k, dtype=np.uint64)
        pos = (h1[:, None] + steps[None, :] * h2[:, None]) & np.uint64(self._mask)
        bits = np.frombuffer(self._bits, np.uint8)
        byte, bit = (
            (pos >> np.uint64(3)).astype(np.intp),
            (1 << (pos & np.uint64(7))).astype(np.uint8),
        )
        was_set = (bits[byte] & bit) != 0
        flat = pos.ravel()
        unique, first = np.unique(flat, return_index=True)
        first_setter = (first // self._k)[np.searchsorted(unique, pos)]
        present = (was_set | (first_setter < np.arange(n)[:, None])).all(axis=1)
        np.bitwise_or.at(bits, byte.ravel(), bit.ravel())
        return present


class ObservationCounts:
    """The running pass-1 sums: articles per source, repeated paragraphs, title hashes."""

    def __init__(self) -> None:
        self.seen_stories = BloomFilter(bits_log2=26, n_hashes=5)
        self.seen_paragraphs = BloomFilter(bits_log2=28, n_hashes=4)
        self.repeat_counts: dict[int, int] = {}
        self.source_articles: Counter[str] = Counter()
        self.titles = array("Q")

    def add(self, batch: list[ArticleKeys]) -> None:
        """Add the keys of ``batch`` (in input order): the same result as adding them one by one."""
        if len(batch) == 1:
            self._add_one(batch[0])  # numpy's per-call overhead would dominate a single article
            return
        if not batch:
            return
        stories = np.fromiter((k.story for k in batch), np.uint64, len(batch))
        seen = self.seen_stories.add_many(stories)
        fresh = [k for k, dup in zip(batch, seen.tolist(), strict=True) if not dup]
        paragraphs = array("Q")
        for keys in fresh:
            self.source_articles[keys.source] += 1
            self.titles.extend(keys.titles)
            paragraphs.extend(keys.paragraphs)
        hashes = np.frombuffer(paragraphs, np.uint64) if paragraphs else np.zeros(0, np.uint64)
        repeated = hashes[self.seen_paragraphs.add_many(hashes)]
        counts = self.repeat_counts
        for h in repeated.tolist():
            # Seen before: start exact counting at 2 (this article and the earlier one).
            counts[h] = counts.get(h, 1) + 1

    def _add_one(self, keys: ArticleKeys) -> None:
        if self.seen_stories.add(keys.story):
            return
        self.source_articles[keys.source] += 1
        self.titles.extend(keys.titles)
        for h in keys.paragraphs:
            if self.seen_paragraphs.add(h):
                self.repeat_counts[h] = self.repeat_counts.get(h, 1) + 1

    def title_hashes(self) -> np.ndarray:
        return np.unique(np.frombuffer(self.titles, dtype=np.uint64))
