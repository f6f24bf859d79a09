"""Quality benchmark on real Arabic news: every shipped model config next to a peer, in one run.

    .venv/bin/python benchmarks/quality.py [--datasets DIR] [--out DIR] [--configs NAME...]
        [--transformer] [--set KEY=VALUE]... [--no-weak] [--track] [--md BENCHMARKS.md]

1. Builds the datasets with ``configs/datasets/shared_data.yaml`` (or reuses ``--datasets DIR``
   when it holds a ``manifest.json``).
2. Trains each config (``configs/train/<name>.yaml``, exactly as shipped; ``--set`` overrides are
   applied to every one and printed in the report) with ``training.train.train`` and leaves the
   bundles in ``OUT/boilerplate``, ``OUT/topic``, ``OUT/stance_ans``, ``OUT/stance_mawqif``
   (a second model of the same slot in one run, e.g. the e5 one next to the sklearn one, goes to
   ``OUT/<slot>_<kind>``). Each is scorable with ``khabar evaluate``.
3. Measures, in the same run and on the same data:
   - boilerplate: per paragraph on ``boilerplate_gold_dev/dev.jsonl`` through
     ``training.evaluate_cmd.evaluate_model`` (furniture P/R/F1, content recall); next to it
     jusText (Arabic stoplist; each paragraph a ``<p>`` of one HTML page), the keyword rules
     (``inference/rules/furniture_v1.json``: a rule hit is furniture), the weak labels the model
     learns from (``benchmarks/weak_labels_eval.py``), the model at a decision threshold chosen on
     the weakly-labeled validation split, and the model OR a rule hit.
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
import html
import json
import logging
import os
import pickle
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

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
# Issue targets: slot -> (metric, minimum).
TARGETS = {
    "boilerplate": {"furniture_f1": 0.90, "content_recall": 0.995},
    "topic": {"test_macro_f1": 0.90},
    "stance_ans": {"test_macro_f1": 0.88},
    "stance_mawqif": {"test_macro_f1": 0.80},
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


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def binary_scores(gold: list[str], pred: list[str]) -> dict[str, float]:
    """Furniture precision/recall/F1 and content recall for parallel label lists."""
    tp = sum(g == p == "boilerplate" for g, p in zip(gold, pred, strict=True))
    pred_bp = sum(p == "boilerplate" for p in pred)
    gold_bp = sum(g == "boilerplate" for g in gold)
    gold_c = sum(g == "content" for g in gold)
    kept = sum(g == "content" and p == "content" for g, p in zip(gold, pred, strict=True))
    prec = tp / pred_bp if pred_bp else 0.0
    rec = tp / gold_bp if gold_bp else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "furniture_precision": prec,
        "furniture_recall": rec,
        "furniture_f1": f1,
        "content_recall": kept / gold_c if gold_c else 0.0,
        "n": len(gold),
    }


# ---------------------------------------------------------------- jusText peer
def import_justext():
    """``justext``; newer lxml moved ``lxml.html.clean`` out, which justext imports at load time.

    Only justext's default *preprocessor* uses that Cleaner, and :func:`justext_flags` passes its
    own, so a stub module is enough when ``lxml_html_clean`` is not installed.
    """
    try:
        import justext

        return justext
    except ImportError as exc:
        if "lxml" not in str(exc):
            raise
    import types

    for name in [m for m in sys.modules if m == "justext" or m.startswith("justext.")]:
        del sys.modules[name]
    stub = types.ModuleType("lxml.html.clean")

    class Cleaner:  # pragma: no cover - never constructed: justext_flags brings a preprocessor
        def __init__(self, **_kwargs):
            raise RuntimeError("lxml.html.clean is not installed (pip install lxml_html_clean)")

    stub.Cleaner = Cleaner
    sys.modules["lxml.html.clean"] = stub
    import justext

    return justext


def _keep_dom(dom):
    return dom


def justext_page(paragraphs: list[str]) -> str:
    """One HTML page, each input paragraph (empty ones too) a ``<p>`` in order."""
    body = "".join(f"<p>{html.escape(p or '')}</p>\n" for p in paragraphs)
    return f"<html><body>\n{body}</body></html>"


_P_INDEX = re.compile(r"/p\[(\d+)\]$")


def justext_flags(paragraphs: list[str], stoplist: frozenset | None = None) -> list[bool | None]:
    """jusText's ``is_boilerplate`` per input paragraph (None where jusText emitted no block, i.e.
    empty paragraphs). Mapped back through each block's xpath ``/html/body/p[k]``."""
    justext = import_justext()
    stoplist = stoplist if stoplist is not None else justext.get_stoplist("Arabic")
    page = justext_page(paragraphs).encode("utf-8")
    out: list[bool | None] = [None] * len(paragraphs)
    for block in justext.justext(page, stoplist, encoding="utf-8", preprocessor=_keep_dom):
        m = _P_INDEX.search(block.xpath or "")
        if m is None:
            continue
        k = int(m.group(1)) - 1
        if 0 <= k < len(out):
            # Several blocks in one <p> cannot happen here (no inner markup); keep "any furniture".
            out[k] = (
                bool(block.is_boilerplate) if out[k] is None else (out[k] or block.is_boilerplate)
            )
    return out


# ---------------------------------------------------------------- boilerplate gold
def gold_paragraphs(dev_path: Path, rules=None) -> list[dict]:
    """Every gold-labeled non-empty dev paragraph, with the preprocessed row, in file order."""
    from inference.furniture import default_rules
    from inference.preprocess import boilerplate_inputs, boilerplate_row
    from inference.readers import iter_articles

    rules = rules or default_rules()
    out = []
    for article in iter_articles(dev_path):
        if article.labels is None:
            continue
        for p in boilerplate_inputs(article, rules):
            gold = article.labels[p.index]
            if gold is None:
                continue
            out.append(
                {"article": article, "index": p.index, "gold": gold, "row": boilerplate_row(p)}
            )
    return out


def peer_justext(dev_path: Path) -> dict:
    from inference.readers import iter_articles

    justext = import_justext()
    stoplist = justext.get_stoplist("Arabic")
    gold, pred = [], []
    t0 = time.perf_counter()
    for article in iter_articles(dev_path):
        if article.labels is None:
            continue
        flags = justext_flags(article.paragraphs, stoplist)
        for i, lab in enumerate(article.labels):
            if lab is None or not (article.paragraphs[i] or "").strip():
                continue
            gold.append(lab)
            pred.append("boilerplate" if flags[i] else "content")
    return {**binary_scores(gold, pred), "predict_seconds": time.perf_counter() - t0}


def peer_rules(paragraphs: list[dict]) -> dict:
    gold = [p["gold"] for p in paragraphs]
    pred = ["boilerplate" if p["row"]["rule"] else "content" for p in paragraphs]
    return binary_scores(gold, pred)


def weak_label_scores(shared: Path) -> dict:
    """The weak labels themselves on gold dev (abstain counted as content), via weak_labels_eval."""
    sys.path.insert(0, str(REPO / "benchmarks"))
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

    from inference.bundle import load_bundle
    from training.train import gold_labels, split_rows

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


# ---------------------------------------------------------------- topic / stance peer
def tfidf_svc_peer(task: str, splits) -> dict:
    """Plain TF-IDF (word 1-2 + char_wb 2-5 of the text; + word TF-IDF of the claim/target for
    stance) -> LinearSVC(C=1), trained on the train split, scored on validation and test."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from training.metrics import compute_metrics
    from training.train import gold_labels

    def word(max_features=200_000):
        return TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            token_pattern=r"(?u)\b\w+\b",
            min_df=2,
            sublinear_tf=True,
            max_features=max_features,
            dtype=np.float32,
        )

    def char():
        return TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            min_df=2,
            sublinear_tf=True,
            max_features=200_000,
            dtype=np.float32,
        )

    blocks = [("text_word", word(), "text"), ("text_char", char(), "text")]
    if task == "stance":
        blocks.append(("target_word", word(), "target"))
    pipe = Pipeline([("features", ColumnTransformer(blocks)), ("clf", LinearSVC(C=1.0))])

    def frame(split):
        import pandas as pd

        cols = ["text", "target"] if task == "stance" else ["text"]
        return pd.DataFrame({c: split[c] for c in cols})

    labels = list(splits["train"].features["label"].names)
    t0 = time.perf_counter()
    pipe.fit(frame(splits["train"]), gold_labels(splits["train"], labels))
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"train_seconds": seconds, "size_bytes": len(pickle.dumps(pipe))}
    for name in ("validation", "test"):
        if name in splits and len(splits[name]):
            pred = list(pipe.predict(frame(splits[name])))
            m = compute_metrics(task, gold_labels(splits[name], labels), pred, labels)
            out[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "n": len(pred)}
    return out


# ---------------------------------------------------------------- datasets
def ensure_datasets(path: Path | None) -> Path:
    from training.build_dataset import build_datasets
    from training.config import load_dataset_config

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
    from training.train import train

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
    from training.evaluate_cmd import evaluate_model

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


# ---------------------------------------------------------------- report
def _target_text(slot: str, values: dict) -> str:
    targets = TARGETS.get(slot)
    if not targets:
        return "-"
    parts = []
    for key, minimum in targets.items():
        v = values.get(key)
        if v is None:
            return "-"
        parts.append("met" if v >= minimum else f"missed by {minimum - v:.3f}")
    return "; ".join(parts)


def boilerplate_table(results: dict) -> list[str]:
    lines = [
        "| system | furniture P | furniture R | furniture F1 | content recall | target (F1 ≥ 0.90, "
        "content R ≥ 0.995) | train s | size |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def add(name: str, m: dict, train_s=None, size=None):
        if not m:
            return
        lines.append(
            f"| {name} | {fmt(m.get('furniture_precision'))} | {fmt(m.get('furniture_recall'))} | "
            f"{fmt(m.get('furniture_f1'))} | {fmt(m.get('content_recall'))} | "
            f"{_target_text('boilerplate', {'furniture_f1': m.get('furniture_f1'), 'content_recall': m.get('content_recall')})} | "
            f"{fmt(train_s, 1)} | {human_bytes(size)} |"
        )

    for name, row in results.get("models", {}).items():
        if row.get("task") != "boilerplate":
            continue
        add(
            f"**{name}** (`khabar evaluate`)",
            row.get("gold_dev", {}),
            row.get("train_seconds"),
            row.get("size_bytes"),
        )
        var = row.get("variants", {})
        if var.get("at_threshold"):
            add(
                f"{name} @ P≥{var['threshold']} (threshold chosen on weak validation)",
                var["at_threshold"],
            )
        if var.get("or_rules"):
            add(f"{name} OR keyword-rule hit", var["or_rules"])
    peers = results.get("peers", {}).get("boilerplate", {})
    add("peer: jusText (Arabic stoplist)", peers.get("justext"))
    add("peer: keyword rules (furniture_v1, any hit)", peers.get("rules"))
    add("weak labels (training signal; abstain = content)", peers.get("weak_labels"))
    return lines


def classification_table(results: dict) -> list[str]:
    lines = [
        "| task | dataset | system | val macro-F1 | test macro-F1 | test acc | target | train s "
        "| size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = ["topic", "topic_jawharafm", "stance_ans", "stance_mawqif"]
    models = [r for r in results.get("models", {}).values() if r.get("task") != "boilerplate"]
    models.sort(key=lambda r: (order.index(r["slot"]) if r["slot"] in order else 99, r["system"]))
    done_peer: set[str] = set()
    for row in models:
        slot = row["slot"]
        val, test = row.get("validation", {}), row.get("test", {})
        lines.append(
            f"| {row['task']} | {row['dataset']} | **{row['system']}** | {fmt(val.get('macro_f1'))}"
            f" | {fmt(test.get('macro_f1'))} | {fmt(test.get('accuracy'))} | "
            f"{_target_text(slot, {'test_macro_f1': test.get('macro_f1')})} | "
            f"{fmt(row.get('train_seconds'), 1)} | {human_bytes(row.get('size_bytes'))} |"
        )
        peer = results.get("peers", {}).get(slot, {}).get("tfidf_svc")
        nxt = [r for r in models if r["slot"] == slot]
        if peer and slot not in done_peer and row is nxt[-1]:
            done_peer.add(slot)
            pv, pt = peer.get("validation", {}), peer.get("test", {})
            lines.append(
                f"| {row['task']} | {row['dataset']} | peer: TF-IDF + LinearSVC | "
                f"{fmt(pv.get('macro_f1'))} | {fmt(pt.get('macro_f1'))} | {fmt(pt.get('accuracy'))}"
                f" | {_target_text(slot, {'test_macro_f1': pt.get('macro_f1')})} | "
                f"{fmt(peer.get('train_seconds'), 1)} | {human_bytes(peer.get('size_bytes'))} |"
            )
    return lines


def render_markdown(results: dict, notes: str = "") -> str:
    lines = [
        "# Quality benchmarks (real Arabic news)",
        "",
        "Generated by `benchmarks/quality.py`. Every model row is trained with the shipped config",
        "named in it and measured next to its peer in the same run, on the same data.",
        "Boilerplate is scored per paragraph on `../shared/data/boilerplate_gold_dev/dev.jsonl`",
        "(never trained or tuned on; the models learn from weak labels of the raw corpora).",
        "Topic/stance: macro-F1 on the validation and test splits of",
        "`configs/datasets/shared_data.yaml` (ANS: validation = official dev, test = claims carved",
        "out of train; Mawqif: both carved out of train). Train time is the fit alone on a shared",
        "2-core CPU machine; size is the model file(s) of the bundle (peers: pickled pipeline).",
        "",
        "## Boilerplate (gold dev, non-empty gold-labeled paragraphs)",
        "",
        *boilerplate_table(results),
        "",
        "## Topic and stance",
        "",
        *classification_table(results),
        "",
        "## Commands and configs",
        "",
    ]
    for run_ in results.get("runs", []):
        lines.append(f"- {run_.get('started', '')}: `{run_['command']}`  ")
        lines.append(f"  configs: {', '.join(run_['configs'])}")
    lines.append("")
    lines.append("| system | config | overrides | bundle | n_train |")
    lines.append("|---|---|---|---|---|")
    for name, row in results.get("models", {}).items():
        lines.append(
            f"| {name} | `{row['config']}` | {' '.join(row.get('overrides') or []) or '-'} | "
            f"`{row['bundle']}` | {row.get('n_train', '-')} |"
        )
    if notes:
        lines += ["", notes.rstrip(), ""]
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--md", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--notes", type=Path, default=None, help="Markdown appended to the report")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("inference.readers", "datasets", "mlflow"):
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
