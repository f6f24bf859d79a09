"""Peer systems and scoring helpers for ``quality.py``: furniture P/R/F1 (``binary_scores``),
jusText (Arabic stoplist, one ``<p>`` per paragraph), the keyword rules on the gold dev
paragraphs, and the plain TF-IDF + LinearSVC topic/stance peer."""

from __future__ import annotations

import html
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------- boilerplate scores
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
    from inference.engines.readers import iter_articles
    from inference.text.furniture import default_rules
    from inference.text.preprocess import boilerplate_inputs, boilerplate_row

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
    from inference.engines.readers import iter_articles

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


# ---------------------------------------------------------------- topic / stance peer
def tfidf_svc_peer(task: str, splits) -> dict:
    """Plain TF-IDF (word 1-2 + char_wb 2-5 of the text; + word TF-IDF of the claim/target for
    stance) -> LinearSVC(C=1), trained on the train split, scored on validation and test."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from training.tracking.evaluate import gold_labels
    from training.tracking.metrics import compute_metrics

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
