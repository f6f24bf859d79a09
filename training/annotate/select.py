"""Uncertainty sampling: which articles (or claim/text pairs) a reviewer should see first.

- topic, stance: the smallest margin between the model's two most probable classes;
- boilerplate: per article, the paragraph nearest the decision threshold (``|P(boilerplate) - t|``,
  ``t`` the tagger's threshold: the bundle's, else 0.5, the argmax of two classes), interleaved with
  the articles whose paragraphs disagree with the furniture rules (a rule fires and the model keeps
  the paragraph, or the model drops a paragraph no rule matches), most disagreements first. The two
  lists alternate, so neither crowds the other out; an article on both is taken once.

The labels offered as pre-annotations are the tagger's own (``Tagger.tag_batch``: what ``khabar tag``
writes); the probabilities behind the margins come from the same bundles on the same rows.
Selection streams: only the ``n`` least sure candidates of each list are held (bounded heaps).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.engines.readers import ReadStats, iter_items
from inference.tagger import Tagger
from inference.text.preprocess import (
    boilerplate_row,
    stance_row,
    stance_text,
    topic_row,
)
from inference.text.schema import Article

BATCH = 256  # articles tagged per call


@dataclass
class Candidate:
    """One unit a reviewer may get: an article (boilerplate, topic) or an article and a target."""

    article: Article
    seq: int  # input order of the unit: breaks ties, so the selection is deterministic
    margin: float  # smaller = less sure
    score: float  # the model's confidence in its labels (Label Studio's prediction score)
    label: str | None = None  # topic / stance: the model's label
    labels: list[str | None] = field(default_factory=list)  # boilerplate: one per paragraph
    target: str | None = None  # stance: the claim or target
    text: str = ""  # stance: the story the model read
    disagreements: int = 0  # boilerplate: paragraphs where the model and the rules disagree
    reason: str = "margin"  # why it was picked: "margin" or "rules"


def top_two_margin(probs: np.ndarray) -> np.ndarray:
    """Per row, the best probability minus the second best (1.0 with a single class)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        return np.ones(len(probs))
    top = -np.partition(-probs, 1, axis=1)
    return top[:, 0] - top[:, 1]


def score_batch(tagger: Tagger, task: str, articles: list[Article], seq: int) -> list[Candidate]:
    """The candidates of a batch of articles for ``task``, numbered from ``seq``. Articles the
    tagger fails on are left out (``khabar tag`` reports them as errors)."""
    tagged = tagger.tag_batch(articles)
    ok = [(a, t) for a, t in zip(articles, tagged, strict=True) if "error" not in t]
    if task == "boilerplate":
        return _boilerplate(tagger, ok, seq)
    if task == "topic":
        return _topic(tagger, ok, seq)
    return _stance(tagger, ok, seq)


def _boilerplate(tagger: Tagger, ok: list[tuple[Article, dict]], seq: int) -> list[Candidate]:
    bundle = tagger.bundles["boilerplate"]
    per_article = [tagger.boilerplate_inputs(a) for a, _ in ok]
    rows = [boilerplate_row(p) for inputs in per_article for p in inputs]
    p_bp = bundle.predict_proba(rows)[:, bundle.labels.index("boilerplate")]
    t = tagger.boilerplate_threshold if tagger.boilerplate_threshold is not None else 0.5
    out, k = [], 0
    for (art, tagged), inputs in zip(ok, per_article, strict=True):
        probs = [float(q) for q in p_bp[k : k + len(inputs)]]
        k += len(inputs)
        if not inputs:  # nothing to review: every paragraph is empty
            continue
        labels = tagged["boilerplate"]["labels"]
        margin = min(abs(q - t) for q in probs)
        disagree = sum((p.rule is not None) != (labels[p.index] == "boilerplate") for p in inputs)
        # The article's labels are as sure as its least sure paragraph: P of the label it got.
        score = min(
            q if labels[p.index] == "boilerplate" else 1 - q
            for p, q in zip(inputs, probs, strict=True)
        )
        out.append(Candidate(art, seq, margin, score, labels=labels, disagreements=disagree))
        seq += 1
    return out


def _topic(tagger: Tagger, ok: list[tuple[Article, dict]], seq: int) -> list[Candidate]:
    bundle = tagger.bundles["topic"]
    rows = [
        topic_row(a, t.get("boilerplate", {}).get("labels"), bundle.normalizer_version)
        for a, t in ok
    ]
    probs = bundle.predict_proba(rows)
    margins = top_two_margin(probs)
    return [
        Candidate(a, seq + i, float(margins[i]), float(probs[i].max()), label=t["topic"]["label"])
        for i, (a, t) in enumerate(ok)
    ]


def _stance(tagger: Tagger, ok: list[tuple[Article, dict]], seq: int) -> list[Candidate]:
    bundle = tagger.bundles["stance"]
    out, rows = [], []
    for art, tagged in ok:
        text = stance_text(art, tagged.get("boilerplate", {}).get("labels"))
        for pair in tagged["stance"]:
            target = pair["target"]
            rows.append(stance_row(f"{art.id}|{target}", target, text, bundle.normalizer_version))
            out.append(Candidate(art, seq, 0.0, 0.0, label=pair["label"], target=target, text=text))
            seq += 1
    if out:
        probs = bundle.predict_proba(rows)
        for cand, margin, p in zip(out, top_two_margin(probs), probs, strict=True):
            cand.margin, cand.score = float(margin), float(p.max())
    return out


class LeastSure:
    """The ``n`` least sure candidates of a stream, in the order a reviewer should see them; for
    boilerplate, interleaved with the ``n`` that disagree most with the furniture rules."""

    def __init__(self, n: int):
        self.n = n
        self._by_margin: list[tuple] = []  # heaps of (negated key, candidate): root = worst kept
        self._by_rules: list[tuple] = []

    def _push(self, heap: list[tuple], key: tuple, cand: Candidate) -> None:
        item = (tuple(-k for k in key), cand.seq, cand)  # seq is unique: never compares cand
        if len(heap) < self.n:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)

    def add(self, cand: Candidate) -> None:
        if self.n <= 0:
            return
        self._push(self._by_margin, (cand.margin, cand.seq), cand)
        if cand.disagreements:
            self._push(self._by_rules, (-cand.disagreements, cand.margin, cand.seq), cand)

    def ranked(self) -> list[Candidate]:
        def ordered(heap: list[tuple]) -> list[Candidate]:
            return [c for _, _, c in sorted(heap, key=lambda it: it[:2], reverse=True)]

        queues = [ordered(self._by_margin), ordered(self._by_rules)]
        out: list[Candidate] = []
        taken: set[int] = set()
        pos = [0, 0]
        while len(out) < self.n and (pos[0] < len(queues[0]) or pos[1] < len(queues[1])):
            for q, reason in ((0, "margin"), (1, "rules")):
                queue = queues[q]
                while pos[q] < len(queue) and queue[pos[q]].seq in taken:
                    pos[q] += 1
                if pos[q] < len(queue) and len(out) < self.n:
                    cand = queue[pos[q]]
                    cand.reason = reason
                    taken.add(cand.seq)
                    out.append(cand)
                    pos[q] += 1
        return out


def select_least_sure(
    tagger: Tagger, task: str, input_path: str | Path, n: int, batch_size: int = BATCH
) -> tuple[list[Candidate], ReadStats]:
    """Stream ``input_path`` through the tagger; the ``n`` least sure units, in review order."""
    stats = ReadStats()
    chosen = LeastSure(n)
    batch, seq = [], 0

    def flush() -> None:
        nonlocal seq
        for cand in score_batch(tagger, task, batch, seq):
            chosen.add(cand)
            seq = cand.seq + 1
        batch.clear()

    for item in iter_items(input_path, stats=stats):
        if item.article is not None:
            batch.append(item.article)
            if len(batch) >= batch_size:
                flush()
    flush()
    return chosen.ranked(), stats
