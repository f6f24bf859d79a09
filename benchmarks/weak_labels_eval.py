"""How good are the weak boilerplate labels? Measured against the hand-labeled dev set.

Pass 1 observes the raw scraped corpora (SaudiNewsNet, ANT multi-source) plus the dev articles
themselves with their labels ignored; pass 2 labels every dev paragraph with ``use_gold`` off and
compares with the gold labels. Reported: precision / recall of what the weak labeler marks
furniture, the share of gold story paragraphs wrongly marked furniture, coverage (non-empty
paragraphs that got a label rather than an abstain), content-label precision, a per-kind and
per-provenance breakdown, and timing.

    .venv/bin/python benchmarks/weak_labels_eval.py [--data ../shared/data] [--limit N] [--errors]
        [--extra CORPUS.jsonl]... [--set repetition.min_articles=3]...

Targets (issue): furniture precision >= 0.95, recall >= 0.6, story marked furniture <= 1%.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.engines.readers import iter_articles  # noqa: E402
from inference.text.schema import Article  # noqa: E402
from training.config import WeakLabelConfig, apply_overrides  # noqa: E402
from training.dataset.weak_labels import WeakLabel, WeakLabeler  # noqa: E402

CORPORA = ("saudinewsnet_raw/articles.jsonl", "ant_corpus_multisource_v2_1/topic.jsonl")
DEV = "boilerplate_gold_dev/dev.jsonl"


@dataclass
class Tally:
    """Counts over non-empty gold-labeled paragraphs."""

    paragraphs: int = 0
    labeled: int = 0
    gold_bp: int = 0
    gold_content: int = 0
    pred_bp: int = 0
    true_bp: int = 0
    content_as_bp: int = 0
    pred_content: int = 0
    true_content: int = 0
    by_kind: dict = field(default_factory=lambda: defaultdict(Counter))
    by_provenance: dict = field(default_factory=lambda: defaultdict(Counter))
    errors: list = field(default_factory=list)

    def add(self, article: Article, i: int, gold: str | None, weak: WeakLabel) -> None:
        self.paragraphs += 1
        self.labeled += weak.label is not None
        self.gold_bp += gold == "boilerplate"
        self.gold_content += gold == "content"
        self.pred_bp += weak.label == "boilerplate"
        self.true_bp += weak.label == gold == "boilerplate"
        self.content_as_bp += gold == "content" and weak.label == "boilerplate"
        self.pred_content += weak.label == "content"
        self.true_content += weak.label == gold == "content"
        self.by_provenance[weak.provenance]["n"] += 1
        self.by_provenance[weak.provenance]["correct"] += weak.label == gold
        if gold == "boilerplate":
            kind = (article.extra.get("kinds") or [None] * (i + 1))[i] or "?"
            self.by_kind[kind]["gold"] += 1
            self.by_kind[kind]["found"] += weak.label == "boilerplate"
        if (
            weak.label is not None
            and weak.label != gold
            or (gold == "boilerplate" and not weak.label)
        ):
            self.errors.append((article.source, article.id, i, gold, weak, article.paragraphs[i]))

    def metrics(self) -> dict:
        def ratio(a: int, b: int) -> float:
            return round(a / b, 4) if b else float("nan")

        return {
            "furniture_precision": ratio(self.true_bp, self.pred_bp),
            "furniture_recall": ratio(self.true_bp, self.gold_bp),
            "story_marked_furniture": ratio(self.content_as_bp, self.gold_content),
            "coverage": ratio(self.labeled, self.paragraphs),
            "content_precision": ratio(self.true_content, self.pred_content),
            "content_coverage": ratio(self.true_content, self.gold_content),
            "counts": {
                "paragraphs": self.paragraphs,
                "gold_boilerplate": self.gold_bp,
                "pred_boilerplate": self.pred_bp,
                "true_boilerplate": self.true_bp,
                "gold_content": self.gold_content,
                "story_marked_furniture": self.content_as_bp,
                "pred_content": self.pred_content,
            },
        }


def observe_corpora(labeler: WeakLabeler, paths: list[Path], limit: int | None) -> int:
    n = 0
    for path in paths:
        for k, article in enumerate(iter_articles(path)):
            if limit is not None and k >= limit:
                break
            labeler.observe(article)
            n += 1
    return n


def evaluate(
    data: Path,
    limit: int | None = None,
    config: WeakLabelConfig | None = None,
    corpora: tuple[str, ...] = CORPORA,
) -> tuple[Tally, dict]:
    """Observe ``corpora`` (+ dev without labels), label dev, tally against gold."""
    config = config or WeakLabelConfig(use_gold=False)
    labeler = WeakLabeler(config)
    dev = list(iter_articles(data / DEV))
    t0 = time.perf_counter()
    n_obs = observe_corpora(labeler, [data / c for c in corpora], limit)
    for article in dev:
        labeler.observe(article)
    labeler.finalize()
    t1 = time.perf_counter()
    tally = Tally()
    for article in dev:
        for i, weak in enumerate(labeler.label(article)):
            gold = article.labels[i]
            if gold is not None:
                tally.add(article, i, gold, weak)
    t2 = time.perf_counter()
    timing = {
        "observed_articles": n_obs + len(dev),
        "observe_s": round(t1 - t0, 2),
        "observe_articles_per_s": round((n_obs + len(dev)) / max(t1 - t0, 1e-9)),
        "label_s": round(t2 - t1, 3),
        "dev_articles": len(dev),
    }
    return tally, timing


def print_report(tally: Tally, timing: dict, show_errors: bool) -> None:
    m = tally.metrics()
    print("== weak boilerplate labels vs boilerplate_gold_dev ==")
    for name in (
        "furniture_precision",
        "furniture_recall",
        "story_marked_furniture",
        "coverage",
        "content_precision",
        "content_coverage",
    ):
        print(f"{name:>24}: {m[name]}")
    print(f"{'counts':>24}: {m['counts']}")
    print("-- gold furniture found, by kind")
    for kind, c in sorted(tally.by_kind.items()):
        print(f"{kind:>24}: {c['found']}/{c['gold']}")
    print("-- by provenance (n labeled, agreeing with gold)")
    for prov, c in sorted(tally.by_provenance.items(), key=lambda kv: -kv[1]["n"]):
        print(f"{prov:>24}: n={c['n']:<4} agree={c['correct']}")
    print("-- timing", timing)
    if show_errors:
        print("-- disagreements (gold vs weak)")
        for source, aid, i, gold, weak, text in tally.errors:
            print(
                f"{source:>10} {aid} #{i} gold={gold} weak={weak.label}/{weak.provenance}: "
                f"{text.strip()[:90]!r}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="observe at most N articles per corpus")
    ap.add_argument("--errors", action="store_true", help="list every disagreement with gold")
    ap.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        help="another corpus to observe "
        "(path relative to --data), e.g. ant_corpus_v1_1_jawharafm/topic.jsonl",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a WeakLabelConfig field, e.g. repetition.min_articles=3",
    )
    args = ap.parse_args(argv)
    # The raw corpora hold records without a body; the reader logs each rejection, which is noise here.
    logging.getLogger("inference.engines.readers").setLevel(logging.ERROR)
    if not (args.data / DEV).exists():
        print(f"shared data not found at {args.data}", file=sys.stderr)
        return 2
    raw = apply_overrides({"use_gold": False}, args.overrides)
    config = WeakLabelConfig.model_validate(raw)
    tally, timing = evaluate(args.data, args.limit, config, CORPORA + tuple(args.extra))
    print_report(tally, timing, args.errors)
    if args.json:
        args.json.write_text(json.dumps({**tally.metrics(), "timing": timing}, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
