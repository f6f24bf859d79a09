"""The tagger: boilerplate first, then topic and stance on the cleaned story (DESIGN.md "Output").

Per batch of articles every model is called once (vectorized), on rows built by the same
``inference.text.preprocess`` functions the dataset builder uses. A batch that fails is retried
article by article so one bad record becomes one error record and the rest are tagged. An article
whose every paragraph is flagged boilerplate never loses its body silently: its record says
``"all_removed": true`` and its topic and stance read the unfiltered text (``"unfiltered": true``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference.errors import BundleError
from inference.predictors.bundle import Bundle, load_bundle
from inference.text.cohesion import COHESION_FEATURES
from inference.text.furniture import FurnitureRules, default_rules
from inference.text.preprocess import (
    boilerplate_inputs,
    boilerplate_row,
    stance_row,
    stance_text,
    topic_row,
)
from inference.text.schema import MAX_RECORD_BYTES, Article

log = logging.getLogger(__name__)
ROW_CHUNK = 4096  # boilerplate rows (paragraphs) per model call


class TaggerConfig(BaseModel):
    """What to tag beyond the models themselves (YAML via ``khabar tag --config``)."""

    model_config = ConfigDict(extra="forbid")

    stance_targets: list[str] = []  # stance of every article toward each of these
    use_record_claim: bool = True  # and toward the record's own ``claim`` field
    boilerplate_threshold: float | None = None  # P(boilerplate) needed to drop a paragraph
    # An input record over this many bytes is a "too large" error record (khabar tag
    # --max-record-bytes overrides it).
    max_record_bytes: int = Field(MAX_RECORD_BYTES, gt=0)


def load_tagger_config(path: str | Path | None) -> TaggerConfig:
    if path is None:
        return TaggerConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BundleError(f"{path}: tagger config is not valid YAML: {exc}") from None
    try:
        return TaggerConfig.model_validate(raw)
    except ValidationError as exc:
        keys = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{path}: invalid tagger config: {keys}") from None


def error_record(record_id: str, exc_type: str, message: str) -> dict:
    return {"id": record_id, "error": {"type": exc_type, "message": message}}


class Tagger:
    """Holds loaded bundles (at most one per task) and tags batches of articles."""

    def __init__(self, bundles: dict[str, Bundle], config: TaggerConfig | None = None):
        self.bundles = bundles
        self.config = config or TaggerConfig()
        bp = bundles.get("boilerplate")
        rules = bp.meta.get("furniture_rules") if bp else None
        # The boilerplate model was trained on features from these exact rules.
        self.rules: FurnitureRules = FurnitureRules.from_dicts(rules) if rules else default_rules()
        threshold = self.config.boilerplate_threshold
        if threshold is None and bp is not None:
            threshold = bp.meta.get("threshold")
        self.boilerplate_threshold = threshold
        # A fast boilerplate model (model.page_cohesion: false) does not read the cohesion
        # features: skip computing them (a fifth of the feature time; benchmarks/README.md).
        self.boilerplate_cohesion = bp is None or bp.reads_any_feature(COHESION_FEATURES)

    @property
    def models(self) -> dict[str, str]:
        return {task: b.version for task, b in self.bundles.items()}

    # ------------------------------------------------------------ batch tagging
    def tag_batch(self, articles: list[Article]) -> list[dict]:
        """One output record per article, in order; a failing batch degrades to per-article."""
        if not articles:
            return []
        try:
            return self._tag(articles)
        except Exception as exc:
            if len(articles) == 1:
                log.warning("article %s failed: %s: %s", articles[0].id, type(exc).__name__, exc)
                return [error_record(articles[0].id, type(exc).__name__, str(exc))]
        return [rec for art in articles for rec in self.tag_batch([art])]

    def tag(self, article: Article) -> dict:
        return self.tag_batch([article])[0]

    def _tag(self, articles: list[Article]) -> list[dict]:
        out: list[dict[str, Any]] = [{"id": a.id} for a in articles]
        bp_labels = self._boilerplate(articles, out)
        if "topic" in self.bundles:
            self._topic(articles, bp_labels, out)
        if "stance" in self.bundles:
            self._stance(articles, bp_labels, out)
        models = self.models
        for rec in out:
            rec["models"] = models
        return out

    def boilerplate_inputs(self, article: Article) -> list:
        """The boilerplate model's paragraph inputs for ``article``, as this tagger computes them."""
        bundle = self.bundles["boilerplate"]
        return boilerplate_inputs(
            article, self.rules, bundle.normalizer_version, cohesion=self.boilerplate_cohesion
        )

    def _boilerplate(self, articles: list[Article], out: list[dict]) -> list[list | None]:
        bundle = self.bundles.get("boilerplate")
        if bundle is None:
            return [None] * len(articles)
        per_article = [self.boilerplate_inputs(a) for a in articles]
        rows = [boilerplate_row(p) for inputs in per_article for p in inputs]
        # In slices: one article of 100k paragraphs would otherwise be one huge feature matrix.
        probs = np.concatenate(
            [bundle.predict_proba(rows[i : i + ROW_CHUNK]) for i in range(0, len(rows), ROW_CHUNK)]
            or [np.zeros((0, len(bundle.labels)))]
        )
        j_bp = bundle.labels.index("boilerplate")
        j_best = probs.argmax(axis=1) if len(rows) else []
        results: list[list | None] = []
        k = 0
        for art, inputs, rec in zip(articles, per_article, out, strict=True):
            labels: list[str | None] = [None] * len(art.paragraphs)
            for p in inputs:
                if self.boilerplate_threshold is not None:
                    is_bp = probs[k, j_bp] >= self.boilerplate_threshold
                else:
                    is_bp = j_best[k] == j_bp
                labels[p.index] = "boilerplate" if is_bp else "content"
                k += 1
            rec["boilerplate"] = {"labels": labels, "removed": labels.count("boilerplate")}
            if inputs and "content" not in labels:
                # Every paragraph flagged: topic and stance read the unfiltered text rather than
                # the title alone, and say so (benchmarks/README.md "all_removed" has the numbers).
                rec["boilerplate"]["all_removed"] = True
                labels = None
            results.append(labels)
        return results

    @staticmethod
    def _unfiltered(rec: dict) -> dict:
        return {"unfiltered": True} if rec.get("boilerplate", {}).get("all_removed") else {}

    def _topic(self, articles: list[Article], bp_labels: list, out: list[dict]) -> None:
        bundle = self.bundles["topic"]
        rows = [
            topic_row(a, lab, bundle.normalizer_version)
            for a, lab in zip(articles, bp_labels, strict=True)
        ]
        labels, scores = bundle.predict(rows)
        for rec, label, score in zip(out, labels, scores, strict=True):
            rec["topic"] = {
                "label": label,
                "score": round(float(score), 4),
                **self._unfiltered(rec),
            }

    def _stance_targets(self, article: Article) -> list[str]:
        targets = list(self.config.stance_targets)
        if self.config.use_record_claim and article.claim and article.claim not in targets:
            targets.append(article.claim)
        return targets

    def _stance(self, articles: list[Article], bp_labels: list, out: list[dict]) -> None:
        bundle = self.bundles["stance"]
        rows, owners, targets = [], [], []
        for i, (art, labels) in enumerate(zip(articles, bp_labels, strict=True)):
            text = stance_text(art, labels)
            for target in self._stance_targets(art):
                rows.append(
                    stance_row(f"{art.id}|{target}", target, text, bundle.normalizer_version)
                )
                owners.append(i)
                targets.append(target)
        for rec in out:
            rec["stance"] = []
        if not rows:
            return
        labels, scores = bundle.predict(rows)
        for owner, target, label, score in zip(owners, targets, labels, scores, strict=True):
            out[owner]["stance"].append(
                {
                    "target": target,
                    "label": label,
                    "score": round(float(score), 4),
                    **self._unfiltered(out[owner]),
                }
            )


def load_tagger(
    refs: list[str],
    config: str | Path | TaggerConfig | None = None,
    backend: str = "auto",
    device: str | None = None,
) -> Tagger:
    """Load one bundle per task from directories or MLflow URIs."""
    bundles: dict[str, Bundle] = {}
    for ref in refs:
        bundle = load_bundle(ref, device=device, backend=backend)
        if bundle.task in bundles:
            raise BundleError(
                f"two models for task {bundle.task!r}: {bundles[bundle.task].path} and {ref}"
            )
        bundles[bundle.task] = bundle
    cfg = config if isinstance(config, TaggerConfig) else load_tagger_config(config)
    return Tagger(bundles, cfg)
