"""Quality benchmark on real Arabic news: every shipped model config next to a peer, in one run.

    .venv/bin/python benchmarks/quality.py [--datasets DIR] [--out DIR] [--configs NAME...]
        [--transformer] [--set KEY=VALUE]... [--no-weak] [--track] [--md BENCHMARKS.md]

1. Builds the datasets with ``configs/datasets/shared_data.yaml`` (or reuses ``--datasets DIR``
   when it holds a ``manifest.json``).
2. Trains each config (``configs/train/<name>.yaml``, exactly as shipped; ``--set`` overrides are
   applied to every one and printed in the report) with ``training.fit.train.train`` and leaves the
   bundles in ``OUT/boilerplate``, ``OUT/topic``, ``OUT/stance_ans``, ``OUT/stance_mawqif``
   (a second model of the same slot in one run, e.g. the e5 one next to the sklearn one, goes to
   ``OUT/<slot>_<kind>``). Each is scorable with ``khabar evaluate``.
3. Measures, in the same run and on the same data:
   - boilerplate: per paragraph on ``boilerplate_gold_dev/dev.jsonl`` through
     ``training.tracking.evaluate.evaluate_model`` (furniture P/R/F1, content recall); next to it
     jusText (Arabic stoplist; each paragraph a ``<p>`` of one HTML page), the keyword rules
     (``inference/text/rules/furniture_v1.json``: a rule hit is furniture), the weak labels the
     model learns from (``benchmarks/weak_labels_eval.py``), the model at a decision threshold
     chosen on the weakly-labeled validation split, and the model OR a rule hit.
   - topic / stance: macro-F1 on the validation and test splits of the built dataset (the model's
     own ``train`` scores them through its written bundle), next to a plain TF-IDF + LinearSVC
     trained on the same train split.
   Train time and model size (bundle folder bytes; pickled size for the peers) for every row.
4. Writes ``OUT/results.json`` (merged with the rows already there, keyed by system, so an e5 run
   adds to an sklearn run) and renders the Markdown report (``--md``, default ``BENCHMARKS.md``).

The gold dev set is only ever scored, never trained or tuned on. Skips (exit 0) when
``../shared/data`` is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_peers import (  # noqa: E402
    binary_scores,
    gold_paragraphs,
    justext_flags,  # noqa: F401 - re-exported: tests reach it as quality.justext_flags
    justext_page,  # noqa: F401 - re-exported: tests reach it as quality.justext_page
    peer_justext,
    peer_rules,
    tfidf_svc_peer,
)
from quality_report import render_markdown  # noqa: E402

for _var, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("RAY_USAGE_STATS_ENABLED", "0"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    os.environ.setdefault(_var, _value)

log = logging.getLogger("quality")

SHARED = Path(os.environ.get("KHABAR_SHARED_DATA", REPO.parent / "shared" / "data"))
E5_DIR = REPO.parent / "shared" / "models" / "multilingual-e5-small-ar"
DATASET_CONFIG = REPO / "configs" / "datasets" / "shared_data.yaml"
CONFIG_DIR = REPO / "configs" / "train"
GOLD_DEV = "boilerplate_gold_dev/dev.jsonl"
SKLEARN_CONFIGS = [
    "boilerplate_sklearn",
    "topic_sklearn",
    "stance_ans_sklearn",
    "stance_mawqif_sklearn",
]
E5_CONFIGS = ["stance_ans_e5", "stance_mawqif_e5", "topic_e5", "boilerplate_e5"]
# dataset folder -> bundle slot under --out
SLOTS = {
    "boilerplate": "boilerplate",
    "topic_ant_multisource": "topic",
    "topic_jawharafm": "topic_jawharafm",
    "stance_ans": "stance_ans",
    "stance_mawqif": "stance_mawqif",
}
# The weak-label threshold search keeps at least this much story on the weak validation split.
THRESHOLD_MIN_CONTENT_RECALL = 0.995
THRESHOLD_GRID = [round(0.05 * k, 2) for k in range(1, 20)]


# ---------------------------------------------------------------- small helpers
def dir_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weak_label_scores(shared: Path) -> dict:
    """The weak labels themselves on gold dev (abstain counted as content), via weak_labels_eval."""
    from weak_labels_eval import evaluate as weak_evaluate

    t0 = time.perf_counter()
    tally, timing = weak_evaluate(shared)
    m = tally.metrics()
    c = m["counts"]
    prec, rec = m["furniture_precision"], m["furniture_recall"]
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "furniture_precision": prec,
        "furniture_recall": rec,
        "furniture_f1": f1,
        "content_recall": 1 - c["story_marked_furniture"] / c["gold_content"],
        "n": c["paragraphs"],
        "coverage": m["coverage"],
        "seconds": time.perf_counter() - t0,
    }


def choose_threshold(probs, weak_gold: list[str]) -> tuple[float | None, dict]:
    """The P(boilerplate) cut with the best furniture F1 on the WEAK validation split that keeps
    content recall >= THRESHOLD_MIN_CONTENT_RECALL there (ties: the one nearest 0.5)."""
    best, best_key, table = None, None, {}
    for t in THRESHOLD_GRID:
        pred = ["boilerplate" if p >= t else "content" for p in probs]
        s = binary_scores(weak_gold, pred)
        table[t] = s
        if s["content_recall"] < THRESHOLD_MIN_CONTENT_RECALL:
            continue
        key = (round(s["furniture_f1"], 4), -abs(t - 0.5))
        if best_key is None or key > best_key:
            best, best_key = t, key
    return best, table


def boilerplate_extras(bundle_dir: Path, dataset_dir: Path, paragraphs: list[dict]) -> dict:
    """Model variants on gold dev: threshold chosen on weak validation, and model OR rule hit."""
    import datasets

    from inference.predictors.bundle import load_bundle
    from training.tracking.evaluate import gold_labels, split_rows

    bundle = load_bundle(str(bundle_dir))
    j = bundle.labels.index("boilerplate")
    splits = datasets.load_from_disk(str(dataset_dir))
    val = splits["validation"]
    val_probs = bundle.predict_proba(split_rows(val, "boilerplate"))[:, j]
    threshold, _ = choose_threshold(list(val_probs), gold_labels(val, bundle.labels))
    full = bundle.predict_proba([p["row"] for p in paragraphs])
    probs = full[:, j]
    gold = [p["gold"] for p in paragraphs]
    out: dict[str, Any] = {"threshold": threshold}
    if threshold is not None:
        pred = ["boilerplate" if p >= threshold else "content" for p in probs]
        out["at_threshold"] = binary_scores(gold, pred)
    argmax = full.argmax(axis=1) == j  # what evaluate_model / the tagger's default do
    either = [
        "boilerplate" if (a or p["row"]["rule"]) else "content"
        for a, p in zip(argmax, paragraphs, strict=True)
    ]
    out["or_rules"] = binary_scores(gold, either)
    return out


# ---------------------------------------------------------------- datasets
def ensure_datasets(path: Path | None) -> Path:
    from training.config import load_dataset_config
    from training.dataset.build import build_datasets

    path = path or REPO / "datasets" / "shared"
    if (path / "manifest.json").is_file():
        log.info("reusing datasets in %s", path)
        return path
    log.info("building datasets into %s with %s", path, DATASET_CONFIG)
    cfg = load_dataset_config(DATASET_CONFIG)
    t0 = time.perf_counter()
    build_datasets(cfg, path, progress=False)
    log.info("datasets built in %.0f s", time.perf_counter() - t0)
    return path


# ---------------------------------------------------------------- training + scoring
def train_one(
    name: str, datasets_dir: Path, out: Path, used: set, overrides: list[str], track: bool
) -> tuple[str, dict]:
    from training.config import load_train_config
    from training.fit.train import train

    os.environ["KHABAR_DATASETS"] = str(datasets_dir)
    if "KHABAR_E5_MODEL" not in os.environ and E5_DIR.is_dir():
        os.environ["KHABAR_E5_MODEL"] = str(E5_DIR)
    path = CONFIG_DIR / f"{name}.yaml"
    sets = list(overrides)
    if not track:
        sets.append("tracking.enabled=false")
    cfg = load_train_config(path, sets)
    dataset = Path(cfg.data.dataset_dir).name
    slot = SLOTS.get(dataset, dataset)
    bundle_dir = out / slot
    if slot in used:
        bundle_dir = out / f"{slot}_{'e5' if cfg.model.kind == 'transformer' else cfg.model.kind}"
    used.add(bundle_dir.name)
    log.info("training %s -> %s", name, bundle_dir)
    t0 = time.perf_counter()
    result = train(cfg, bundle_dir)
    wall = time.perf_counter() - t0
    m = result.metrics
    row: dict[str, Any] = {
        "system": name,
        "kind": cfg.model.kind,
        "slot": slot,
        "task": cfg.task,
        "dataset": dataset,
        "bundle": str(bundle_dir),
        "config": str(path.relative_to(REPO)),
        "overrides": overrides,
        "train_seconds": m.get("train_seconds"),
        "wall_seconds": wall,
        "size_bytes": dir_bytes(bundle_dir / "model.skops")
        if (bundle_dir / "model.skops").exists()
        else dir_bytes(bundle_dir / "model"),
        "n_train": m.get("n_train"),
    }
    for split in ("validation", "test"):
        if split in m:
            row[split] = {k: m[split].get(k) for k in ("macro_f1", "accuracy", "n")}
    return slot, row


def score_boilerplate(row: dict, datasets_dir: Path) -> None:
    from training.tracking.evaluate import evaluate_model

    dev = SHARED / GOLD_DEV
    m = evaluate_model(row["bundle"], dev, "boilerplate")
    row["gold_dev"] = {
        k: m.get(k)
        for k in ("furniture_precision", "furniture_recall", "furniture_f1", "content_recall", "n")
    }
    if row["kind"] == "sklearn":
        paragraphs = gold_paragraphs(dev)
        row["variants"] = boilerplate_extras(
            Path(row["bundle"]), datasets_dir / "boilerplate", paragraphs
        )


def run(args: argparse.Namespace) -> dict:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    datasets_dir = ensure_datasets(args.datasets)
    configs = list(args.configs or SKLEARN_CONFIGS)
    if args.transformer and not args.configs:
        configs += E5_CONFIGS
    results_path = out / "results.json"
    results = json.loads(results_path.read_text("utf-8")) if results_path.exists() else {}
    results.setdefault("models", {})
    results.setdefault("peers", {})
    results.setdefault("runs", [])
    command = "  ".join([".venv/bin/python benchmarks/quality.py", *map(shlex.quote, sys.argv[1:])])
    results["runs"].append(
        {
            "command": command,
            "configs": configs,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    )
    # A slot whose bundle folder holds another system's model (this run or a stored one) gets
    # OUT/<slot>_<kind> instead, so an e5 run never overwrites the sklearn bundle.
    used = {
        Path(row["bundle"]).name
        for name, row in results["models"].items()
        if name not in configs and Path(row["bundle"]).parent == out
    }
    for name in configs:
        slot, row = train_one(name, datasets_dir, out, used, args.overrides, args.track)
        row["command"] = command
        if row["task"] == "boilerplate":
            score_boilerplate(row, datasets_dir)
        results["models"][name] = row
        if slot not in results["peers"] or args.refresh_peers:
            results["peers"][slot] = measure_peers(slot, row, datasets_dir, args.weak)
        results["peers"][slot]["command"] = command
        results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False), "utf-8")
        log.info("%s: %s", name, json.dumps(_headline(row)))
    if args.looo and "boilerplate_sklearn" in configs:
        # The headline for boilerplate: pages of outlets the model never saw (slow: a fit per
        # outlet; benchmarks/boilerplate_looo.py).
        from boilerplate_looo import run_looo

        results["looo"] = run_looo(datasets_dir, SHARED, overrides=args.overrides)
        results["looo"]["command"] = command
        results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False), "utf-8")
    return results


def measure_peers(slot: str, row: dict, datasets_dir: Path, weak: bool) -> dict:
    import datasets

    if row["task"] == "boilerplate":
        dev = SHARED / GOLD_DEV
        peers = {"justext": peer_justext(dev), "rules": peer_rules(gold_paragraphs(dev))}
        if weak:
            peers["weak_labels"] = weak_label_scores(SHARED)
        return peers
    splits = datasets.load_from_disk(str(datasets_dir / row["dataset"]))
    return {"tfidf_svc": tfidf_svc_peer(row["task"], splits)}


def _headline(row: dict) -> dict:
    if row["task"] == "boilerplate":
        return row.get("gold_dev", {})
    return {s: row.get(s, {}).get("macro_f1") for s in ("validation", "test")}


# ---------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--datasets",
        type=Path,
        default=None,
        help="built datasets to reuse (default: datasets/shared, built if missing)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "quality")
    ap.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help=f"config names under configs/train (default: {' '.join(SKLEARN_CONFIGS)})",
    )
    ap.add_argument(
        "--transformer", action="store_true", help=f"add the e5 configs ({' '.join(E5_CONFIGS)})"
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override applied to every train config, e.g. training.threads=1",
    )
    ap.add_argument(
        "--no-weak",
        dest="weak",
        action="store_false",
        help="skip scoring the weak labels themselves on gold dev",
    )
    ap.add_argument("--refresh-peers", action="store_true", help="re-measure peers already stored")
    ap.add_argument("--track", action="store_true", help="log the runs to MLflow (default: off)")
    ap.add_argument(
        "--looo",
        action="store_true",
        help="also score boilerplate_sklearn leave-one-outlet-out on the enlarged gold (slow)",
    )
    ap.add_argument("--md", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--notes", type=Path, default=None, help="Markdown appended to the report")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("inference.engines.readers", "datasets", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = parse_args(argv)
    if not (SHARED / GOLD_DEV).exists():
        print(f"SKIP: shared data not found at {SHARED}", file=sys.stderr)
        return 0
    results = run(args)
    notes = args.notes.read_text("utf-8") if args.notes else ""
    args.md.write_text(render_markdown(results, notes), "utf-8")
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
