"""Boilerplate quality on outlets the model has never seen: leave-one-outlet-out on the gold.

    .venv/bin/python benchmarks/boilerplate_looo.py --datasets DIR [--data ../shared/data]
        [--config configs/train/boilerplate_sklearn.yaml] [--set KEY=VALUE]... [--folds K]
        [--content-frac F]

``DIR`` is a build of ``configs/datasets/shared_data.yaml`` (``khabar build-dataset``). The gold is
``boilerplate_gold_dev/dev.jsonl`` plus the 160 articles of ``benchmarks/gold`` (20 outlets). For
each outlet (or each of ``--folds`` groups of outlets) the model of ``--config`` is fitted on the
training split *without* that outlet — its articles, its weak labels, and every row whose text also
occurs in it (synthetic pages that borrowed its furniture lines or paragraphs) — and scored on
that outlet's gold articles. Predictions of all folds are pooled: furniture P/R/F1 and content
recall. Beside it, the in-outlet number (one model trained on every outlet, as shipped).

A third number checks the layout clean corpora lack: each gold article of the held-out outlet
becomes a page whose trailer is a credit, a source line, "read also" + headline, an app promo, up to
ten story paragraphs of a gold article of *another* outlet, then "similar articles" and a bulleted
headline list (strings written here, not taken from the training bank). Skips (exit 0) when the
data is absent.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gold.extra_gold import load_extra_gold  # noqa: E402
from inference.predictors.sklearn import rows_to_frame  # noqa: E402
from inference.text.normalize import normalize  # noqa: E402
from inference.text.preprocess import boilerplate_inputs, boilerplate_row  # noqa: E402
from inference.text.schema import article_from_record  # noqa: E402
from training.config import load_train_config  # noqa: E402
from training.fit.sklearn_models import fit_pipeline  # noqa: E402

GOLD_DEV = "boilerplate_gold_dev/dev.jsonl"


class Score:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.kept = self.content = 0

    def add(self, gold: str, flagged: bool) -> None:
        flagged = bool(flagged)  # numpy booleans would make the counts unserializable
        if gold == "boilerplate":
            self.tp += flagged
            self.fn += not flagged
        else:
            self.fp += flagged
            self.kept += not flagged
            self.content += 1

    def as_dict(self) -> dict:
        p = self.tp / max(self.tp + self.fp, 1)
        r = self.tp / max(self.tp + self.fn, 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        recall = self.kept / max(self.content, 1)
        return {
            "P": round(p, 3),
            "R": round(r, 3),
            "F1": round(f1, 3),
            "content_recall": round(recall, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def load_gold(data: Path) -> list[dict]:
    dev = [json.loads(x) for x in (data / GOLD_DEV).read_text(encoding="utf-8").splitlines()]
    return dev + load_extra_gold(data)


def outlet(row: dict) -> str:
    return (row.get("source") or "").lower()


def proxy_pages(hosts: list[dict], gold: list[dict], seed: int = 11):
    """Gold articles given a trailer that inlines another outlet's story (see the module doc)."""
    rng = random.Random(seed)
    for host in hosts:
        donors = [
            d for d in gold if outlet(d) != outlet(host) and d["labels"].count("content") >= 3
        ]
        donor = rng.choice(donors)
        story = [
            p
            for p, lab in zip(donor["paragraphs"], donor["labels"], strict=True)
            if lab == "content"
        ][:10]
        heads = [g["title"] for g in rng.sample(gold, 8) if g.get("title")][:5]
        trailer = [
            "وكالة الأنباء الألمانية",
            "المصدر: " + rng.choice(["موقع النيلين", "وكالات"]),
            "إقرأ أيضاً:",
            heads[0],
            "تابع أحدث الأخبار عبر تطبيق " + rng.choice(["نبض", "الموقع"]),
        ]
        related = ["مقالات مشابهة"] + ["- " + h for h in heads[1:]]
        added = trailer + story + related
        yield dict(
            host,
            id=host["id"] + "~proxy",
            paragraphs=host["paragraphs"] + added,
            labels=host["labels"] + ["boilerplate"] * len(added),
        )


def score_articles(pipe, articles, score: Score) -> None:
    j = list(pipe.classes_).index("boilerplate")
    for rec in articles:
        inputs = boilerplate_inputs(article_from_record(rec))
        if not inputs:
            continue
        frame = rows_to_frame("boilerplate", [boilerplate_row(p) for p in inputs])
        for p, prob in zip(inputs, pipe.predict_proba(frame)[:, j], strict=True):
            if rec["labels"][p.index] is not None:
                score.add(rec["labels"][p.index], prob >= 0.5)


def run_looo(
    datasets: Path,
    data: Path,
    config: str = "configs/train/boilerplate_sklearn.yaml",
    overrides: list[str] | None = None,
    folds: int = 0,
    content_frac: float = 1.0,
    gold_weight: float = 0.0,
) -> dict:
    """Leave-one-outlet-out scores (see the module doc) as a JSON-able dict."""
    from datasets import load_from_disk

    cfg = load_train_config(config, overrides or [])
    train = load_from_disk(str(datasets / "boilerplate"))["train"]
    names = train.features["label"].names
    rng = np.random.default_rng(0)
    rows = [
        r
        for r in train.to_list()
        if names[r["label"]] == "boilerplate" or rng.random() < content_frac
    ]
    gold = load_gold(data)
    outlets = sorted({outlet(g) for g in gold})
    groups = [outlets[i::folds] for i in range(folds)] if folds else [[o] for o in outlets]
    looo, proxy, in_outlet, per = Score(), Score(), Score(), {}
    for group in groups:
        started = time.perf_counter()
        pipe = fit_pipeline_without(cfg, rows, names, group, gold, gold_weight)
        hosts = [g for g in gold if outlet(g) in group]
        for host in hosts:
            score_articles(pipe, [host], per.setdefault(outlet(host), Score()))
            score_articles(pipe, [host], looo)
        score_articles(pipe, proxy_pages(hosts, gold), proxy)
        print(f"{','.join(group)}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
    pipe = fit_pipeline_without(cfg, rows, names, [], gold, 0.0)  # in-outlet: gold stays unseen
    score_articles(pipe, gold, in_outlet)
    return {
        "leave_one_outlet_out": looo.as_dict(),
        "inlined_story_pages": proxy.as_dict(),
        "in_outlet": in_outlet.as_dict(),
        "per_outlet": {o: s.as_dict() for o, s in sorted(per.items())},
        "gold_articles": len(gold),
        "outlets": len(outlets),
        "folds": len(groups),
        "config": config,
        "overrides": overrides or [],
        "content_frac": content_frac,
        "gold_weight": gold_weight,
    }


def gold_rows(gold: list[dict]) -> list[tuple[dict, str]]:
    """(model row, gold label) for every labeled non-empty paragraph of ``gold``."""
    out = []
    for rec in gold:
        for p in boilerplate_inputs(article_from_record(rec)):
            if rec["labels"][p.index] is not None:
                out.append(({**boilerplate_row(p), "source": outlet(rec)}, rec["labels"][p.index]))
    return out


def fit_pipeline_without(
    cfg, rows: list[dict], names: list[str], group: list[str], gold, gold_weight: float = 0.0
):
    """The model fitted on every row but the held-out outlets' (and any row sharing their text).

    ``gold_weight`` > 0: the gold paragraphs of the *other* outlets are training rows too, each
    weighing that much (a user trains on all the gold they have; the scored outlet stays unseen).
    """
    held = {r["text"] for r in rows if r["source"].lower() in group}
    held |= {normalize(p) for g in gold if outlet(g) in group for p in g["paragraphs"] if p.strip()}
    fold = [r for r in rows if r["source"].lower() not in group and r["text"] not in held]
    labels = [names[r["label"]] for r in fold]
    weights = [1.0] * len(fold)
    if gold_weight > 0:
        others = [g for g in gold if outlet(g) not in group]
        extra = [(r, y) for r, y in gold_rows(others) if r["text"] not in held]
        fold += [r for r, _ in extra]
        labels += [y for _, y in extra]
        weights += [gold_weight] * len(extra)
    frame = rows_to_frame("boilerplate", fold)
    sample_weight = np.asarray(weights) if gold_weight > 0 else None
    return fit_pipeline("boilerplate", cfg.model, frame, labels, sample_weight)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", required=True, type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--config", default="configs/train/boilerplate_sklearn.yaml")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--folds", type=int, default=0, help="groups of outlets (0: one per outlet)")
    ap.add_argument(
        "--content-frac",
        type=float,
        default=1.0,
        help="keep this share of content rows in training (faster, for exploring)",
    )
    ap.add_argument(
        "--gold-weight",
        type=float,
        default=0.0,
        help="also train each fold on the other outlets' gold, each paragraph weighing this much",
    )
    args = ap.parse_args()
    if not (args.data / GOLD_DEV).exists():
        print(f"skipped: {args.data / GOLD_DEV} not found")
        return 0
    result = run_looo(
        args.datasets,
        args.data,
        args.config,
        args.overrides,
        args.folds,
        args.content_frac,
        args.gold_weight,
    )
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
