"""Split assignment for built datasets: random (stratified), by source, or by time; deterministic.

Examples are added one by one with a *group* (examples of one group always land in the same split:
the paragraphs of one article, the pairs of one claim), a *stratum* (the label, or the outlet for
boilerplate), and the record's source, publication date and own ``split`` field. ``assign`` then
returns one split per example. Nothing depends on the order examples were added or on other data:
groups are ordered by a seeded hash of their key, so adding articles to an input never moves the
ones already placed (except at the quota boundary).

Record splits (``respect_record_split``): a record's ``split`` ("dev"/"val"/"valid" mean
"validation") is kept for validation/test records. Records marked "train" or unmarked form the
pool that the configured method divides over "train" plus every split the records do not provide,
with the configured fractions renormalized. So ANS (train + dev) gets a test split carved from its
train records (~11% of them with the default 0.8/0.1/0.1), and Mawqif (train only) gets validation
and test carved from train, stratified by label.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import numpy as np

from training.config import SplitConfig

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
}
NO_SPLIT = -1


def canonical_split(name: str | None) -> str | None:
    """'dev' -> 'validation' etc.; None for a missing or unknown name."""
    if name is None:
        return None
    return _SPLIT_ALIASES.get(name.strip().lower())


def parse_published(value: str | None) -> float:
    """Seconds since the epoch for an ISO 8601 or RFC 2822 date; NaN when missing or unparsable."""
    if not value:
        return math.nan
    text = value.strip()
    for parse in (_parse_iso, parsedate_to_datetime):
        try:
            dt = parse(text)
        except (ValueError, TypeError, IndexError):
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    return math.nan


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def group_rank(seed: int, group: str) -> int:
    """A seeded, stable 64-bit rank: the order groups are dealt into splits."""
    digest = hashlib.blake2b(f"{seed}\x1f{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass
class SplitPlan:
    """Per-example split codes (indexes into ``names``) plus what the planner decided, for the manifest."""

    names: tuple[str, ...]
    codes: np.ndarray
    notes: dict = field(default_factory=dict)

    def split_of(self, i: int) -> str:
        return self.names[self.codes[i]]

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.codes, minlength=len(self.names))
        return {name: int(n) for name, n in zip(self.names, found, strict=True)}


class SplitPlanner:
    """Collects compact split keys (~40 bytes per example) and assigns splits in one go."""

    def __init__(self, cfg: SplitConfig):
        unknown = sorted(set(cfg.fractions) - set(SPLITS))
        if unknown:
            raise ValueError(f"split.fractions: unknown split(s) {unknown}; use {list(SPLITS)}")
        self.cfg = cfg
        self.names = SPLITS
        self._ranks = array("Q")
        self._strata = array("i")
        self._sources = array("i")
        self._times = array("d")
        self._record = array("b")
        self._codes: dict[str, dict[str | None, int]] = {"stratum": {}, "source": {}}
        self._unknown_record_splits: Counter = Counter()

    def __len__(self) -> int:
        return len(self._ranks)

    def add(
        self,
        group: str,
        stratum: str | None = None,
        source: str | None = None,
        published: str | None = None,
        record_split: str | None = None,
    ) -> None:
        self._ranks.append(group_rank(self.cfg.seed, group))
        self._strata.append(self._code("stratum", stratum))
        self._sources.append(self._code("source", source))
        self._times.append(parse_published(published) if self.cfg.method == "time" else math.nan)
        split = canonical_split(record_split)
        if record_split is not None and split is None:
            self._unknown_record_splits[record_split] += 1
        self._record.append(SPLITS.index(split) if split else NO_SPLIT)

    def _code(self, kind: str, value: str | None) -> int:
        table = self._codes[kind]
        return table.setdefault(value, len(table))

    # ------------------------------------------------------------ assignment
    def assign(self) -> SplitPlan:
        n = len(self)
        codes = np.full(n, NO_SPLIT, np.int8)
        notes: dict = {"method": self.cfg.method}
        if self._unknown_record_splits:
            notes["unknown_record_splits"] = dict(self._unknown_record_splits)
        record = np.frombuffer(self._record, np.int8) if n else np.zeros(0, np.int8)
        targets = list(SPLITS)
        pool = np.arange(n)
        if self.cfg.respect_record_split:
            present = {SPLITS[c] for c in np.unique(record) if c != NO_SPLIT}
            fixed = (record != NO_SPLIT) & (record != SPLITS.index("train"))
            codes[fixed] = record[fixed]
            pool = np.flatnonzero(~fixed)
            if present:
                targets = ["train"] + [s for s in SPLITS if s != "train" and s not in present]
                notes["record_splits"] = sorted(present, key=SPLITS.index)
                notes["carved_from_train"] = targets[1:]
        fractions = self._fractions(targets)
        notes["pool_fractions"] = fractions
        if pool.size:
            method = {"random": self._random, "source": self._by_source, "time": self._by_time}
            method[self.cfg.method](pool, fractions, codes, notes)
        return SplitPlan(self.names, codes, notes)

    def _fractions(self, targets: list[str]) -> dict[str, float]:
        chosen = {s: self.cfg.fractions.get(s, 0.0) for s in targets}
        total = sum(chosen.values())
        if total <= 0:
            return {"train": 1.0}
        return {s: f / total for s, f in chosen.items() if f > 0}

    def _groups(self, members: np.ndarray) -> list[np.ndarray]:
        """``members`` cut into groups (member indexes), ordered by seeded group rank."""
        ranks = np.frombuffer(self._ranks, np.uint64)[members]
        order = np.argsort(ranks, kind="stable")
        cuts = np.flatnonzero(np.diff(ranks[order])) + 1
        return np.split(members[order], cuts)

    def _random(self, pool, fractions, codes, notes) -> None:
        """Stratified by stratum, grouped: each group follows the stratum of its first example."""
        strata = np.frombuffer(self._strata, np.int32)
        by_stratum: dict[int, list[np.ndarray]] = defaultdict(list)
        for group in self._groups(pool):
            by_stratum[int(strata[group.min()])].append(group)
        for groups in by_stratum.values():
            _deal(groups, fractions, codes)

    def _by_source(self, pool, fractions, codes, notes) -> None:
        """Whole sources go to test (``test_sources``, else hashed); the rest is split at random."""
        if "test" not in fractions:
            notes["source_split"] = "test comes from the records' own split; rest split at random"
            self._random(pool, fractions, codes, notes)
            return
        sources = np.frombuffer(self._sources, np.int32)[pool]
        names = {code: name for name, code in self._codes["source"].items()}
        test_codes = self._test_source_codes(sources, fractions["test"], names)
        in_test = np.isin(sources, list(test_codes))
        codes[pool[in_test]] = SPLITS.index("test")
        notes["test_sources"] = sorted(str(names[c]) for c in test_codes)
        rest = {s: f for s, f in fractions.items() if s != "test"}
        total = sum(rest.values()) or 1.0
        self._random(pool[~in_test], {s: f / total for s, f in rest.items()}, codes, notes)

    def _test_source_codes(
        self, sources: np.ndarray, test_fraction: float, names: dict
    ) -> set[int]:
        if self.cfg.test_sources:
            wanted = set(self.cfg.test_sources)
            return {code for code, name in names.items() if name in wanted}
        counts = Counter(sources.tolist())
        order = sorted(counts, key=lambda c: group_rank(self.cfg.seed, f"source:{names[c]}"))
        chosen: set[int] = set()
        taken, quota = 0, test_fraction * sources.size
        for code in order[:-1]:  # never put every source in test
            if taken >= quota:
                break
            chosen.add(code)
            taken += counts[code]
        return chosen

    def _by_time(self, pool, fractions, codes, notes) -> None:
        """Oldest groups to train, newest to test; undated groups count as oldest (train side)."""
        times = np.frombuffer(self._times, np.float64)
        groups = self._groups(pool)
        first_time = np.array(
            [times[g].min() if not np.isnan(times[g]).all() else -np.inf for g in groups]
        )
        notes["undated_examples"] = int(
            sum(g.size for g, t in zip(groups, first_time, strict=True) if t == -np.inf)
        )
        order = np.argsort(first_time, kind="stable")  # ties keep the seeded rank order
        _deal_in_order([groups[i] for i in order], fractions, codes)


def quotas(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``fractions * total`` (sums to ``total``)."""
    raw = {s: f * total for s, f in fractions.items()}
    out = {s: int(math.floor(v)) for s, v in raw.items()}
    by_remainder = sorted(raw, key=lambda s: (-(raw[s] - out[s]), SPLITS.index(s)))
    for s in by_remainder[: total - sum(out.values())]:
        out[s] += 1
    return out


def _deal(groups: list[np.ndarray], fractions: dict[str, float], codes: np.ndarray) -> None:
    """Deal whole groups, in the given (seeded) order, to the split furthest below its quota.

    "Furthest" is relative (unfilled share of the quota), so every split gets groups early on and
    a large group cannot starve the last split; with single-example groups the counts are exact.
    """
    names = [s for s in SPLITS if s in fractions]
    quota = quotas(sum(g.size for g in groups), fractions)
    filled = dict.fromkeys(names, 0)
    for group in groups:
        best = max(
            names, key=lambda s: (quota[s] - filled[s]) / quota[s] if quota[s] else -math.inf
        )
        codes[group] = SPLITS.index(best)
        filled[best] += group.size


def _deal_in_order(
    groups: list[np.ndarray], fractions: dict[str, float], codes: np.ndarray
) -> None:
    """Fill splits one after the other (train, validation, test) with whole groups, in order."""
    names = [s for s in SPLITS if s in fractions]
    quota = quotas(sum(g.size for g in groups), fractions)
    k, filled = 0, 0
    for group in groups:
        while k < len(names) - 1 and filled >= quota[names[k]]:
            k, filled = k + 1, 0
        codes[group] = SPLITS.index(names[k])
        filled += group.size
