"""How much one review round moves the boilerplate model (issue 13, BENCHMARKS.md).

1. Build the boilerplate dataset from the raw corpora (SaudiNewsNet + ANT multi-source, weak labels,
   as ``configs/datasets/shared_data.yaml``) and train ``configs/train/boilerplate_sklearn.yaml``:
   the model before review.
2. Per seed, split the gold dev set (62 articles, 19 outlets) in two halves, stratified by outlet:
   the review pool and the scored half. ``khabar annotate export`` picks the ``--n`` articles of the
   pool the model is least sure of; a simulated reviewer answers every task with the gold labels
   (a Label Studio JSON export, one annotator); ``khabar annotate import`` turns it into the
   annotation file; the dataset is rebuilt with ``boilerplate.annotations`` and the model retrained.
   The gold dev articles are in the raw corpora (same ids), so their weak labels are what the
   review replaces.
   With ``--weights 1 20`` the model is retrained twice: plainly, and with the reviewed examples
   weighing 20 (``data.provenance_weights: {review: 20}``).
3. The models are scored on the scored half only (never reviewed): furniture P / R / F1 and
   content recall per paragraph (``khabar evaluate``'s metrics), and how far the model moved there
   (predictions flipped, change of P(boilerplate)).

    .venv/bin/python benchmarks/review_round.py --data ../shared/data --work /tmp/review_round \\
        [--seeds 13 14 15 16 17] [--n 30] [--weights 1 20]

Prints a Markdown table and writes ``results.json`` under ``--work``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from inference.predictors.bundle import load_bundle  # noqa: E402
from training.annotate.export import export_tasks  # noqa: E402
from training.annotate.reviews import import_reviews  # noqa: E402
from training.config import DatasetConfig, load_raw, load_train_config  # noqa: E402
from training.dataset.build import build_datasets  # noqa: E402
from training.fit.train import train  # noqa: E402
from training.tracking.evaluate import evaluate_model, read_labeled  # noqa: E402

CORPORA = {
    "saudinewsnet": "saudinewsnet_raw/articles.jsonl",
    "ant_multisource": "ant_corpus_multisource_v2_1/topic.jsonl",
}
DEV = "boilerplate_gold_dev/dev.jsonl"
TRAIN_CONFIG = REPO / "configs" / "train" / "boilerplate_sklearn.yaml"
KEYS = ("furniture_precision", "furniture_recall", "furniture_f1", "content_recall")


def dataset_config(data: Path, out: Path, annotations: list[str]) -> DatasetConfig:
    """shared_data.yaml's boilerplate output alone, reading ``data``."""
    raw = load_raw(REPO / "configs" / "datasets" / "shared_data.yaml")
    raw["inputs"] = [
        {"name": name, "path": str(data / rel), "tasks": ["boilerplate"]}
        for name, rel in CORPORA.items()
    ]
    raw["boilerplate"]["annotations"] = annotations
    for key in ("topic", "topics", "stance"):
        raw.pop(key, None)
    raw["topic"] = {"enabled": False}
    raw.update(out_dir=str(out), base_dir=str(REPO))
    return DatasetConfig.model_validate(raw)


def build_and_train(
    data: Path, work: Path, annotations: list[str], weights: list[float]
) -> tuple[dict[float, Path], dict, float]:
    """Build the dataset, train one bundle per review weight (1: plain); (bundles, manifest entry,
    seconds)."""
    started = time.perf_counter()
    manifest = build_datasets(
        dataset_config(data, work / "datasets", annotations), work / "datasets"
    )
    bundles = {}
    for w in weights:
        sets = [f"data.dataset_dir={work / 'datasets' / 'boilerplate'}", "tracking.enabled=false"]
        if w != 1:
            sets.append(f"data.provenance_weights={{review: {w}}}")
        cfg = load_train_config(TRAIN_CONFIG, sets)
        bundles[w] = train(cfg, work / f"bundle_w{w:g}").bundle_dir
    return bundles, manifest["outputs"]["boilerplate"], time.perf_counter() - started


def halves(dev: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """(review pool, scored half): each outlet's articles in seeded-hash order, dealt alternately
    (odd outlets start on the other side, so the halves are even overall)."""
    by_source = defaultdict(list)
    for rec in dev:
        by_source[rec["source"]].append(rec)
    pool, scored = [], []
    for k, source in enumerate(sorted(by_source)):
        recs = sorted(
            by_source[source],
            key=lambda r: hashlib.blake2b(f"{seed}|{r['id']}".encode(), digest_size=8).digest(),
        )
        for i, rec in enumerate(recs):
            (pool if (i + k) % 2 == 0 else scored).append(rec)
    return pool, scored


def simulated_review(tasks: list[dict], gold: dict[str, dict]) -> list[dict]:
    """A Label Studio JSON export where one reviewer answered every task with the gold labels."""
    out = []
    for k, task in enumerate(tasks, start=1):
        labels = gold[task["data"]["id"]]["labels"]
        pre = task["predictions"][0]["result"]
        shown = task["data"]["paragraphs"]
        result = [
            {**item, "value": {"choices": [labels[p["index"]]]}}
            for item, p in zip(pre, shown, strict=True)
            if labels[p["index"]] is not None
        ]
        annotation = {"id": k, "completed_by": 1, "result": result, "was_cancelled": False}
        out.append({"id": k, "data": task["data"], "annotations": [annotation]})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def label_changes(before: Path, after: Path, reviewed: set[str]) -> dict:
    """How the review changed the reviewed articles' training rows: weak labels replaced by another
    label, confirmed, and rows added where the weak labeler had abstained."""
    from datasets import load_from_disk

    def rows(path: Path) -> dict:
        out = {}
        for ds in load_from_disk(str(path / "boilerplate")).values():
            names = ds.features["label"].names
            for r in ds.filter(lambda r: r["article_id"] in reviewed):
                out[(r["article_id"], r["index"])] = names[r["label"]]
        return out

    old, new = rows(before), rows(after)
    return {
        "confirmed": sum(old.get(k) == v for k, v in new.items()),
        "changed": sum(k in old and old[k] != v for k, v in new.items()),
        "added": sum(k not in old for k in new),
    }


def scores(bundle: Path, data: Path) -> dict:
    m = evaluate_model(bundle, data, "boilerplate")
    (tn, fp), (fn, tp) = m["confusion_matrix"]["matrix"]
    return {**{k: round(m[k], 4) for k in KEYS}, "tp": tp, "fp": fp, "fn": fn, "n": m["n"]}


def movement(before: Path, after: Path, data: Path) -> dict:
    """How far the model moved on the scored paragraphs: predictions flipped, mean and max
    |change of P(boilerplate)|."""
    probs = []
    for ref in (before, after):
        bundle = load_bundle(ref)
        rows, _ = read_labeled(data, "boilerplate", bundle)
        probs.append(bundle.predict_proba(rows.rows)[:, bundle.labels.index("boilerplate")])
    p0, p1 = probs
    delta = np.abs(p1 - p0)
    return {
        "flipped": int(((p0 >= 0.5) != (p1 >= 0.5)).sum()),
        "mean_abs_dp": round(float(delta.mean()), 4),
        "max_abs_dp": round(float(delta.max()), 4),
    }


def run_seed(args, seed: int, base_bundle: Path, dev: list[dict]) -> dict:
    work = args.work / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    pool, scored = halves(dev, seed)
    pool_file, scored_file = (
        write_jsonl(work / "pool.jsonl", pool),
        write_jsonl(work / "scored.jsonl", scored),
    )
    tasks_file = work / "tasks.json"
    export_tasks([str(base_bundle)], pool_file, "boilerplate", args.n, tasks_file)
    tasks = json.loads(tasks_file.read_text("utf-8"))
    export = work / "ls_export.json"
    export.write_text(
        json.dumps(simulated_review(tasks, {r["id"]: r for r in dev}), ensure_ascii=False), "utf-8"
    )
    report = import_reviews(export, work / "reviews.jsonl", corpus=pool_file)
    bundles, output, seconds = build_and_train(
        args.data, work, [str(work / "reviews.jsonl")], args.weights
    )
    reviewed = {t["data"]["id"] for t in tasks}
    furniture = sum(lab == "boilerplate" for r in dev if r["id"] in reviewed for lab in r["labels"])
    return {
        "seed": seed,
        "pool": len(pool),
        "scored_articles": len(scored),
        "reviewed_articles": len(tasks),
        "reviewed_furniture_paragraphs": furniture,
        "picked_for_rules": sum(t["data"]["khabar"]["reason"] == "rules" for t in tasks),
        "changed_from_model": report["changed_from_model"],
        "annotations": output.get("annotations"),
        "training_labels": label_changes(
            args.work / "before" / "datasets", work / "datasets", reviewed
        ),
        "before": scores(base_bundle, scored_file),
        "after": {f"{w:g}": scores(b, scored_file) for w, b in bundles.items()},
        "moved": {f"{w:g}": movement(base_bundle, b, scored_file) for w, b in bundles.items()},
        "rebuild_and_train_s": round(seconds, 1),
    }


def table(results: list[dict], weight: str) -> str:
    head = (
        "| seed | reviewed (furniture par.) | review vs model: changed | training labels: "
        "changed / added / confirmed | scored articles (furniture par.) | F1 before | F1 after "
        "| P before / after | R before / after | content R before / after | flipped, max abs dP |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in results:
        b, a, t, m = r["before"], r["after"][weight], r["training_labels"], r["moved"][weight]
        lines.append(
            f"| {r['seed']} | {r['reviewed_articles']} ({r['reviewed_furniture_paragraphs']}) "
            f"| {r['changed_from_model']} | {t['changed']} / {t['added']} / {t['confirmed']} "
            f"| {r['scored_articles']} ({b['tp'] + b['fn']}) "
            f"| {b['furniture_f1']:.3f} | {a['furniture_f1']:.3f} "
            f"| {b['furniture_precision']:.3f} / {a['furniture_precision']:.3f} "
            f"| {b['furniture_recall']:.3f} / {a['furniture_recall']:.3f} "
            f"| {b['content_recall']:.3f} / {a['content_recall']:.3f} "
            f"| {m['flipped']}, {m['max_abs_dp']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/review_round"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15, 16, 17])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[1.0, 20.0],
        help="data.provenance_weights for the reviewed examples (1: plain retraining)",
    )  # fmt: skip
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    dev = [json.loads(x) for x in (args.data / DEV).read_text("utf-8").splitlines() if x.strip()]
    bundles, _, seconds = build_and_train(args.data, args.work / "before", [], [1.0])
    base_bundle = bundles[1.0]
    print(f"model before review: {base_bundle} ({seconds:.0f} s)", file=sys.stderr)
    results = []
    for seed in args.seeds:
        results.append(run_seed(args, seed, base_bundle, dev))
        print(json.dumps(results[-1]), file=sys.stderr)
    (args.work / "results.json").write_text(json.dumps(results, indent=2), "utf-8")
    for w in args.weights:
        print(f"\nreviewed examples weighted {w:g}:\n" + table(results, f"{w:g}"))


if __name__ == "__main__":
    main()
