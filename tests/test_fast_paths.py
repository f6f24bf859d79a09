"""The tagger's speed-ups change nothing: each fast path equals the plain formula it replaced."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
import unicodedata

import pytest

from inference import preprocess
from inference.normalize import (
    _WS_RE,
    get_normalizer,
    load_rules,
    normalize,
)
from inference.sklearn_predictor import _word_sets, stance_pair_features
from tests.sample_bundles import sample_articles, sample_file


def random_texts(n: int, seed: int) -> list[str]:
    """Random strings over Arabic, Latin, digits, punctuation, every kind of space, presentation
    forms (NFKC folds them), diacritics, tatweel, emoji and non-BMP digits."""
    rng = random.Random(seed)
    pool = [chr(c) for c in range(0x20, 0x800)] + list(" \t\n\r\x0b\x0c\x1c\u00a0\u2003\u3000")
    pool += [chr(c) for c in (0xFEFB, 0xFEF5, 0xFE8D, 0x0640, 0x064B, 0x0670, 0x1F600, 0x1D7CE)]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 80))) for _ in range(n)]


def sample_texts() -> list[str]:
    texts = []
    for art in sample_articles():
        texts += [art.title, *art.paragraphs, "\n".join(art.paragraphs)]
    return texts


# ---------------------------------------------------------------- normalizer
def reference_normalize(text: str) -> str:
    """normalizer v1 as first written: dict translate, then regex whitespace collapse + strip."""
    if not text:
        return ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.translate(get_normalizer("1")._table)
    return _WS_RE.sub(" ", text).strip()


def test_normalizer_equals_reference():
    ws = load_rules("1")["whitespace"]
    assert ws["collapse"] and ws["strip"]  # the case the split/join shortcut covers
    for text in sample_texts() + random_texts(5000, seed=1):
        assert normalize(text) == reference_normalize(text), repr(text)
        assert get_normalizer("1")(text) == reference_normalize(text)


def test_normalize_cache_is_transparent():
    long_text = "ـأَهلاً " * 1000  # past the cached length
    for text in ("", None, "إقرأ أيضاً", "إقرأ أيضاً", long_text):
        assert normalize(text) == reference_normalize(text)


# ---------------------------------------------------------------- boilerplate features
@pytest.mark.parametrize("seed", [2, 3])
def test_class_ratios_equal_the_regexes(seed):
    for text in sample_texts() + random_texts(3000, seed):
        expected = [
            len(rx.findall(text)) / max(len(text), 1)
            for rx in (preprocess._ARABIC, preprocess._LATIN, preprocess._DIGIT, preprocess._PUNCT)
        ]
        assert preprocess._class_ratios(text) == expected, repr(text)


def test_email_precheck_matches_the_regex():
    for text in ["a@b.co", "no at sign . com", "x@y", "@@.a", *random_texts(2000, seed=4)]:
        got = preprocess._shape(text, set(), "")["has_email"]
        assert got == float(bool(preprocess._EMAIL.search(text)))


# ---------------------------------------------------------------- stance pair features
def reference_pair_features(target: str, text: str) -> list[float]:
    """stance_pair_features as first written (Python sets of 3-gram strings, token loops)."""
    negation, denial = _word_sets()
    proclitics = ("و", "ف", "ب", "ل")

    def has_any(tokens, vocab):
        return any(
            t in vocab or (len(t) > 2 and t[0] in proclitics and t[1:] in vocab) for t in tokens
        )

    def char3(s):
        c = " ".join(s.split())
        return {c[i : i + 3] for i in range(max(len(c) - 2, 0))}

    def jaccard(a, b):
        return len(a & b) / len(a | b) if a | b else 0.0

    def numbers(s):
        return {int(d) for d in re.findall(r"\d+", s) if len(d) < 19}

    tt, xt = target.split(), text.split()
    ts, xs = set(tt), set(xt)
    tn, xn = has_any(tt, negation), has_any(xt, negation)
    tnum, xnum = numbers(target), numbers(text)
    return [
        jaccard(ts, xs),
        jaccard(char3(target), char3(text)),
        len(ts & xs) / len(ts) if ts else 0.0,
        min(len(tt), len(xt)) / max(len(tt), len(xt)) if max(len(tt), len(xt)) else 0.0,
        math.log1p(len(tt)),
        math.log1p(len(xt)),
        float(tn),
        float(xn),
        float(tn != xn),
        float(has_any(xt, denial)),
        float(bool(tnum) and bool(xnum) and not (tnum & xnum)),
    ]


def test_stance_pair_features_equal_reference():
    pairs = []
    for line in sample_file("stance.jsonl").read_text("utf-8").splitlines():
        rec = json.loads(line)
        pairs.append((normalize(rec["claim"]), normalize(rec["text"])))
    stories = [normalize("\n".join(a.paragraphs)) for a in sample_articles()]
    pairs += [(normalize("الحكومة تعلن خطة جديدة"), s) for s in stories]
    texts = random_texts(600, seed=5) + ["", "ab", "ولم يحدث ذلك", "\ud800abc"]
    pairs += list(zip(texts[::2], texts[1::2], strict=False))
    for target, text in pairs:
        assert stance_pair_features(target, text) == reference_pair_features(target, text)


# ---------------------------------------------------------------- loading
def test_loading_an_sklearn_bundle_does_not_import_torch(sample_bundles):
    code = (
        "import sys\n"
        "from inference.bundle import load_bundle\n"
        f"load_bundle({str(sample_bundles['topic'])!r})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "import torch, sklearn.externals.array_api_compat.torch  # still importable afterwards\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
