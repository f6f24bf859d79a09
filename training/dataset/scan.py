"""Pass 1 of the dataset builder, the per-record half: parse, fingerprint, observation keys.

Everything here is a pure function of one record, so it runs in the worker processes; the parent
(``training.dataset.plan``) then adds the results up in input order: duplicate lookups in the LSH
index, weak-label counts, split keys. A chunk of records goes in, a :class:`Scanned` comes out with
the records' light Items (no text), MinHash fingerprints and weak-label observation keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from training.config import DedupConfig
from training.dataset.dedup import Fingerprints, dedup_text, fingerprints
from training.dataset.examples import is_stance_pair
from training.dataset.records import Record, light_item
from training.dataset.weak_stats import ArticleKeys, observation_keys_many

PAIR, ARTICLE = "pair", "article"


@dataclass(frozen=True)
class ScanPolicy:
    """Which records of an input are stance pairs and which are articles some output may use."""

    pair_inputs: frozenset[str]  # inputs of a stance set: a (claim, text, label) record is a pair
    article_inputs: frozenset[str]  # inputs an article output (or an annotation join) reads
    dedup: DedupConfig

    def role(self, input_name: str, article) -> str | None:
        """Mirrors ``Pass1.add``: a pair record of a stance input is a pair, never an article."""
        if is_stance_pair(article) and input_name in self.pair_inputs:
            return PAIR
        return ARTICLE if input_name in self.article_inputs else None


@dataclass
class Scanned:
    """The pass-1 results of one chunk of records, in record order."""

    items: list  # light Items (inference.engines.readers.Item, article without its text)
    roles: list[str | None]
    rows: list[int]  # each record's row in ``fingerprints`` (-1: none)
    keys: list[ArticleKeys | None]  # weak-label observation keys of article records
    fingerprints: Fingerprints | None
    cpu: dict[str, float] = field(default_factory=dict)  # stage -> CPU seconds in the worker
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> wall seconds

    def fingerprint(self, i: int) -> tuple[Fingerprints, int] | None:
        row = self.rows[i]
        return None if row < 0 or self.fingerprints is None else (self.fingerprints, row)


def scan_records(records: list[Record], input_name: str, policy: ScanPolicy) -> Scanned:
    """Parse ``records`` and compute what pass 1 needs of each (the worker side of pass 1)."""
    clock = _Clock()
    items = [record.item() for record in records]
    clock.lap("read")
    roles, rows, texts, scopes, articles = [], [], [], [], []
    for item in items:
        art = item.article
        role = None if art is None else policy.role(input_name, art)
        roles.append(role)
        rows.append(len(texts) if role is not None else -1)
        if role == PAIR:
            texts.append(art.text)
            scopes.append((art.claim or "").strip())
        elif role == ARTICLE:
            texts.append(dedup_text(art.paragraphs, policy.dedup.min_paragraph_words))
            scopes.append("")
            articles.append(art)
    fps = fingerprints(texts, policy.dedup, scopes) if policy.dedup.enabled and texts else None
    clock.lap("dedup")
    observed = iter(observation_keys_many(articles))
    keys = [next(observed) if role == ARTICLE else None for role in roles]
    clock.lap("observe")
    return Scanned([light_item(i) for i in items], roles, rows, keys, fps, clock.cpu, clock.seconds)


class _Clock:
    """Wall and CPU seconds per stage, lap by lap."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def lap(self, stage: str) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + wall - self._wall
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu - self._cpu
        self._wall, self._cpu = wall, cpu
