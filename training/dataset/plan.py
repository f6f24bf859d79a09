"""Pass 1 of the dataset builder, the in-order half: drop duplicates, count, collect split keys.

The per-record work (parsing, MinHash fingerprints, weak-label observation keys) is done by
``training.dataset.scan``, in worker processes; this class adds its results up in input order.
Per kept example only compact keys are held (ordinal, label, a split key of ~40 bytes); the articles
themselves are streamed again in pass 2. Records are buffered ``dedup.batch_size`` at a time and
looked up in the LSH index a batch at a time (the batches decide which near-duplicates meet, so
they are the same whatever the number of workers); everything that depends on "is this a
duplicate" (weak-label observation, split keys) happens when a batch is flushed, in input order.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from inference.text.schema import Article
from training.config import DatasetConfig
from training.dataset.dedup import Fingerprints, NearDuplicateIndex
from training.dataset.examples import (
    Annotation,
    OutputSpec,
    given_label,
    is_stance_pair,
    stance_label,
    topic_label,
)
from training.dataset.scan import ARTICLE, PAIR, ScanPolicy
from training.dataset.splits import SplitPlan, SplitPlanner
from training.dataset.weak_stats import ArticleKeys

MAX_LISTED = 1000  # duplicates / unmatched ids listed in the manifest (all are counted)


@dataclass
class OutputPlan:
    """The examples one output will get, in input order, with what pass 2 needs to build them."""

    spec: OutputSpec
    planner: SplitPlanner
    ordinals: array = field(default_factory=lambda: array("q"))
    labels: list[str | None] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    annotations: list[Annotation | None] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    plan: SplitPlan | None = None
    cursor: int = 0

    def add(
        self,
        ordinal: int,
        article: Article,
        group: str,
        stratum: str | None,
        label: str | None = None,
        provenance: str = "",
        annotation: Annotation | None = None,
    ) -> None:
        self.ordinals.append(ordinal)
        self.labels.append(label)
        self.provenance.append(provenance)
        self.annotations.append(annotation)
        self.planner.add(group, stratum, article.source, article.published, article.split)

    def take(self, ordinal: int) -> list[int]:
        """Indexes of this output's examples from record ``ordinal`` (records arrive in order)."""
        found = []
        while self.cursor < len(self.ordinals) and self.ordinals[self.cursor] == ordinal:
            found.append(self.cursor)
            self.cursor += 1
        return found


@dataclass
class _Pending:
    ordinal: int
    input_name: str
    where: str
    article: Article
    pair_sets: list[OutputPlan]  # stance sets this record is a pair of (then it is no article)
    article_plans: list[OutputPlan]  # outputs this article record may feed
    fingerprint: tuple[Fingerprints, int] | None  # (a chunk's fingerprints, this record's row)
    keys: ArticleKeys | None  # weak-label observation keys (articles)


class Pass1:
    """Dedup + weak-label observation + split keys, one record at a time (batched internally)."""

    def __init__(self, cfg: DatasetConfig, outputs: list[OutputSpec], labeler, timer):
        self.cfg, self.labeler, self.timer = cfg, labeler, timer
        self.plans = [OutputPlan(spec, SplitPlanner(cfg.split)) for spec in outputs]
        self.article_index = NearDuplicateIndex(cfg.dedup)
        self.pair_index = {p.spec.name: NearDuplicateIndex(cfg.dedup) for p in self._stance_plans()}
        self.duplicates: list[dict] = []
        self.duplicate_counts: Counter = Counter()  # by kind: "article", "pair:<stance set>"
        self.duplicates_by_input: Counter = Counter()
        self.annotations_matched: set[tuple[str, str]] = set()
        self._buffer: list[_Pending] = []

    def _stance_plans(self) -> list[OutputPlan]:
        return [p for p in self.plans if p.spec.task == "stance"]

    def scan_policy(self) -> ScanPolicy:
        """What the workers need to tell pair records from articles, as ``add`` does."""
        stance = self._stance_plans()
        articles = set()
        for plan in self.plans:
            spec = plan.spec
            if spec.task != "stance":
                articles |= spec.inputs
            elif spec.annotations:  # an annotated article is looked up in these inputs
                articles |= spec.annotation_inputs
        pairs = frozenset(name for p in stance for name in p.spec.inputs)
        return ScanPolicy(pairs, frozenset(articles), self.cfg.dedup)

    def add(
        self,
        ordinal: int,
        input_name: str,
        where: str,
        article: Article,
        role: str | None,
        fingerprint: tuple[Fingerprints, int] | None,
        keys: ArticleKeys | None,
    ) -> bool:
        """Queue one valid record (its ``training.dataset.scan`` results with it); False when no
        output uses it (it is then not kept at all)."""
        pair_sets, article_plans = [], []
        if is_stance_pair(article):
            pair_sets = [p for p in self._stance_plans() if input_name in p.spec.inputs]
        if not pair_sets:
            article_plans = [p for p in self.plans if p.spec.wants_article(input_name, article.id)]
        if not pair_sets and not article_plans:
            return False
        expected = PAIR if pair_sets else ARTICLE
        if role != expected:
            raise RuntimeError(f"{where}: scanned as {role!r}, planned as {expected!r}")
        self._buffer.append(
            _Pending(
                ordinal, input_name, where, article, pair_sets, article_plans, fingerprint, keys
            )
        )
        if len(self._buffer) >= self.cfg.dedup.batch_size:
            self.flush()
        return True

    # ------------------------------------------------------------ batch processing
    def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        with self.timer("dedup"):
            dup_of = self._dedup(batch)
        observed: list[ArticleKeys] = []
        for rec in batch:
            if rec.pair_sets:
                for plan in rec.pair_sets:
                    self._add_pair(plan, rec, dup_of.get((plan.spec.name, rec.ordinal)))
            elif self._add_article(rec, dup_of.get(("", rec.ordinal))):
                observed.append(rec.keys)
        with self.timer("observe"):
            self.labeler.observe_keys(observed)

    def _dedup(self, batch: list[_Pending]) -> dict[tuple[str, int], str]:
        """(index name, ordinal) -> canonical id, for the duplicates in ``batch``."""
        found: dict[tuple[str, int], str] = {}
        if not self.cfg.dedup.enabled:
            return found
        groups: dict[str, list[_Pending]] = {"": [r for r in batch if r.article_plans]}
        for rec in batch:
            for plan in rec.pair_sets:
                groups.setdefault(plan.spec.name, []).append(rec)
        for name, recs in groups.items():
            if not recs:
                continue
            index = self.article_index if name == "" else self.pair_index[name]
            fps = Fingerprints.stack([r.fingerprint for r in recs])
            canon = index.add_fingerprints([r.article.id for r in recs], fps)
            for rec, c in zip(recs, canon, strict=True):
                if c is not None:
                    found[(name, rec.ordinal)] = c
        return found

    def _note_duplicate(self, rec: _Pending, canonical: str, kind: str) -> None:
        self.duplicate_counts[kind] += 1
        self.duplicates_by_input[rec.input_name] += 1
        if len(self.duplicates) < MAX_LISTED:
            self.duplicates.append(
                {"kind": kind, "input": rec.input_name, "where": rec.where,
                 "id": rec.article.id, "duplicate_of": canonical}
            )  # fmt: skip

    def _add_pair(self, plan: OutputPlan, rec: _Pending, canonical: str | None) -> None:
        if canonical is not None:
            plan.skipped["duplicate"] += 1
            self._note_duplicate(rec, canonical, f"pair:{plan.spec.name}")
            return
        label, why = stance_label(rec.article.label, plan.spec.stance)
        if label is None:
            plan.skipped[why] += 1
            return
        group = rec.article.id
        if plan.spec.stance.group_by == "target":
            group = "target:" + (rec.article.claim or "").strip()
        plan.add(rec.ordinal, rec.article, group, label, label, "gold")

    def _add_article(self, rec: _Pending, canonical: str | None) -> bool:
        """Plan an article's examples; True when it is kept (and so observed by the labeler)."""
        art = rec.article
        if canonical is not None:
            self._note_duplicate(rec, canonical, "article")
            for plan in rec.article_plans:
                plan.skipped["duplicate"] += 1
                if art.id in plan.spec.annotations:  # found, but its copy carries the story
                    self.annotations_matched.add((plan.spec.name, art.id))
                    plan.skipped["annotated_duplicate"] += 1
            return False
        for plan in rec.article_plans:
            if plan.spec.task == "boilerplate":
                ann = self._article_annotation(plan, art)
                plan.add(rec.ordinal, art, art.id, art.source, annotation=ann)
            elif plan.spec.task == "topic":
                self._add_topic(plan, art, rec.ordinal)
            elif plan.spec.task == "stance":
                self._add_annotations(plan, rec)
        return True

    def _article_annotation(self, plan: OutputPlan, art: Article) -> Annotation | None:
        """The (first) annotation of an article for a boilerplate or topic output."""
        anns = plan.spec.annotations.get(art.id)
        if not anns:
            return None
        self.annotations_matched.add((plan.spec.name, art.id))
        if len(anns) > 1:
            plan.skipped["duplicate_annotation"] += len(anns) - 1
        return anns[0]

    def _add_topic(self, plan: OutputPlan, art: Article, ordinal: int) -> None:
        label, why = topic_label(art, plan.spec.topic)
        ann = self._article_annotation(plan, art)
        if ann is None:
            if label is None:
                plan.skipped[why] += 1
            else:
                plan.add(ordinal, art, art.id, label, label, why)
            return
        reviewed, rejected = given_label(ann.label, plan.spec.topic)
        if reviewed is None:
            plan.skipped[f"annotation_{rejected}"] += 1
            return
        # Stratified by the label the article has without the annotation (when it has one), so an
        # annotation never moves its article to another split.
        plan.add(ordinal, art, art.id, label or reviewed, reviewed, ann.provenance, ann)

    def _add_annotations(self, plan: OutputPlan, rec: _Pending) -> None:
        art, cfg = rec.article, plan.spec.stance
        seen_targets: set[str] = set()
        for ann in plan.spec.annotations.get(art.id, []):
            self.annotations_matched.add((plan.spec.name, art.id))
            if ann.target.strip() in seen_targets:
                plan.skipped["duplicate_annotation"] += 1
                continue
            seen_targets.add(ann.target.strip())
            label, why = stance_label(ann.label, cfg)
            if label is None:
                plan.skipped[why] += 1
                continue
            group = "target:" + ann.target.strip() if cfg.group_by == "target" else art.id
            plan.add(rec.ordinal, art, group, label, label, ann.provenance, ann)

    # ------------------------------------------------------------ after the pass
    def finish(self) -> None:
        """Flush the last batch, assign splits, and settle each output's label names."""
        self.flush()
        with self.timer("splits"):
            for plan in self.plans:
                plan.plan = plan.planner.assign()
                fixed = plan.spec.fixed_labels
                plan.spec.labels = fixed or sorted({lb for lb in plan.labels if lb is not None})

    def unmatched_annotations(self, plan: OutputPlan) -> list[str]:
        return [
            aid
            for aid in plan.spec.annotations
            if (plan.spec.name, aid) not in self.annotations_matched
        ]

    def dedup_stats(self) -> dict:
        out = {"article": self.article_index.stats.as_dict()}
        out.update({f"pair:{k}": v.stats.as_dict() for k, v in self.pair_index.items()})
        return out
