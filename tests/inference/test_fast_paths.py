"""The tagger's speed-ups change nothing: each fast path equals the plain formula it replaced."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
import unicodedata
from functools import partial

import pytest

from inference.predictors.sklearn import _word_sets, stance_pair_features
from inference.text import cohesion, preprocess
from inference.text.cohesion import COHESION_FEATURES
from inference.text.normalize import (
    _WS_RE,
    KNOWN_NORMALIZER_VERSIONS,
    NORMALIZER_VERSION,
    get_normalizer,
    load_rules,
    normalize,
)
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
def reference_normalize(text: str, version: str = NORMALIZER_VERSION) -> str:
    """The normalizer as first written: context regexes on every text, dict translate, then regex
    whitespace collapse + strip."""
    if not text:
        return ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    for rule in load_rules(version).get("context", []):
        text = re.sub(rule["pattern"], rule["replace"], text)
    text = text.translate(get_normalizer(version)._table)
    return _WS_RE.sub(" ", text).strip()


@pytest.mark.parametrize("version", KNOWN_NORMALIZER_VERSIONS)
def test_normalizer_equals_reference(version):
    ws = load_rules(version)["whitespace"]
    assert ws["collapse"] and ws["strip"]  # the case the split/join shortcut covers
    for text in sample_texts() + random_texts(5000, seed=1):
        expected = reference_normalize(text, version)
        assert normalize(text, version) == expected, repr(text)
        assert get_normalizer(version)(text) == expected


def test_normalize_cache_is_transparent():
    long_text = "ـأَهلاً " * 1000  # past the cached length
    for text in ("", None, "إقرأ أيضاً", "إقرأ أيضاً", long_text):
        assert normalize(text) == reference_normalize(text)


# ---------------------------------------------------------------- boilerplate features
# ---------------------------------------------------------------- cohesion stems
def reference_topic_stems(text: str) -> frozenset[str]:
    """Cohesion stems as first written: every word of the text stemmed, no cache."""
    words = cohesion._WORD.findall(text)
    return frozenset(
        cohesion._stem(w) for w in words if len(w) >= 3 and w not in cohesion._STOPWORDS
    )


def test_cached_topic_stems_equal_the_reference(monkeypatch):
    texts = [normalize(t) for t in sample_texts()] + random_texts(3000, seed=4)
    texts += ["والانتخابات، الانتخابي-البلدية (2015) «الحكومه»", "", "  ", "كل من في"]
    for text in texts + texts:  # the second round reads the cache
        assert cohesion.topic_stems(text) == reference_topic_stems(text), repr(text)
    monkeypatch.setattr(cohesion, "_STEM_CACHE_MAX", 50)  # a full cache is cleared, not wrong
    monkeypatch.setattr(cohesion, "_STEM_CACHE", {})
    longest = max(len(t.split()) for t in texts)
    for text in texts:
        assert cohesion.topic_stems(text) == reference_topic_stems(text), repr(text)
        assert len(cohesion._STEM_CACHE) <= 50 + longest  # one text's tokens past the cap


@pytest.mark.parametrize("seed", [2, 3])
def test_class_ratios_equal_the_regexes(seed):
    for text in sample_texts() + random_texts(3000, seed):
        expected = [
            len(rx.findall(text)) / max(len(text), 1)
            for rx in (preprocess._ARABIC, preprocess._LATIN, preprocess._DIGIT, preprocess._PUNCT)
        ]
        assert preprocess._class_ratios(text) == expected, repr(text)


def test_class_ratios_of_many_texts_equal_one_by_one():
    texts = sample_texts() + random_texts(500, seed=6)
    assert preprocess.class_ratios(texts) == [preprocess._class_ratios(t) for t in texts]
    assert preprocess.class_ratios([]) == []
    assert preprocess.class_ratios(["", "a"]) == [[0.0] * 4, [0.0, 1.0, 0.0, 0.0]]


def reference_shape(text: str, title_tokens: set[str], title_norm: str) -> dict[str, float]:
    """The shape features as first written: regex searches, one split per use."""
    words = text.split()
    toks = set(words)
    union = toks | title_tokens
    return {
        "n_words_log": math.log1p(len(words)),
        "n_chars_log": math.log1p(len(text)),
        "is_short": float(len(words) <= 5),
        **dict(
            zip(
                ("arabic_ratio", "latin_ratio", "digit_ratio", "punct_ratio"),
                [
                    len(rx.findall(text)) / max(len(text), 1)
                    for rx in (
                        preprocess._ARABIC,
                        preprocess._LATIN,
                        preprocess._DIGIT,
                        preprocess._PUNCT,
                    )
                ],
                strict=True,
            )
        ),
        "ends_sentence": float(bool(preprocess._SENTENCE_END.search(text))),
        "ends_colon": float(text.rstrip().endswith((":", "："))),
        "has_colon": float(":" in text),
        "has_url": float(bool(preprocess._URL.search(text))),
        "has_email": float(bool(preprocess._EMAIL.search(text))),
        "starts_bullet": float(bool(preprocess._BULLET.match(text))),
        "title_jaccard": len(toks & title_tokens) / len(union) if union else 0.0,
        "equals_title": float(bool(title_norm) and text == title_norm),
        "headline_like": float(
            len(words) <= preprocess.HEADLINE_MAX_WORDS and not text.rstrip().endswith(".")
        ),
    }


def test_shape_features_equal_the_regexes():
    tricky = ["a@b.co", "no at sign . com", "x@y", "@@.a", "see www.x.org", "WWW.X", "Www.y",
              "hTTps://a", "httpſ://long-s", "ftp://x", "end.\n", "end\u2003", "قال:", "»",
              "end)\t\n", '"', "“", "‏.", "w.", "", "   "]  # fmt: skip
    title = normalize("عنوان الخبر هنا")
    for text in tricky + sample_texts() + random_texts(3000, seed=4):
        for title_tokens, title_norm in ((set(), ""), (set(title.split()), title)):
            assert preprocess._shape(text, title_tokens, title_norm) == reference_shape(
                text, title_tokens, title_norm
            ), repr(text)


def test_url_precheck_letters():
    # _has_url skips the search without "://", or without "." and "w"/"W": no other character
    # matches "w" case-insensitively (unlike "s", which "ſ" matches).
    assert [c for c in map(chr, range(0x110000)) if re.fullmatch("w", c, re.IGNORECASE)] == [
        "W",
        "w",
    ]


def test_feature_values_follow_feature_names():
    names = preprocess.FEATURE_NAMES
    assert names[:5] == ("pos_rel", "is_first", "is_last", "pos_from_end", "n_paragraphs_log")
    assert names[5:21] == tuple(reference_shape("x", set(), ""))
    assert names[21:27] == (
        "in_related_block",
        "rule_opens_block",
        "prev_rule_any",
        "next_rule_any",
        "prev_words_log",
        "next_words_log",
    )
    n_kinds = len(preprocess.FURNITURE_KINDS)
    assert names[27 : 27 + n_kinds] == tuple(f"rule_{kind}" for kind in preprocess.FURNITURE_KINDS)
    assert names[27 + n_kinds :] == ("related_teaser", *COHESION_FEATURES)
    for art in sample_articles():
        for p in preprocess.boilerplate_inputs(art):
            assert tuple(p.features) == names
            shuffled = dict(reversed(p.features.items()))
            assert preprocess._feature_list(shuffled) == preprocess._feature_list(p.features)
            assert preprocess._feature_list(p.features) == [p.features[n] for n in names]


def test_nfkc_never_works_across_a_newline():
    """What normalizing line by line relies on: every character NFKC changes, or that combines,
    or a Hangul jamo, normalizes the same on either side of a newline as alone."""
    nfkc = partial(unicodedata.normalize, "NFKC")
    chars = [
        c
        for c in map(chr, range(0x110000))
        if not 0xD800 <= ord(c) <= 0xDFFF
        and (unicodedata.combining(c) or nfkc(c) != c or 0x1100 <= ord(c) <= 0x11FF)
    ]
    assert len(chars) > 5000
    for c in chars:
        assert nfkc("\n" + c) == "\n" + nfkc(c)
        assert nfkc(c + "\n") == nfkc(c) + "\n"
        assert nfkc("a" + c + "\n" + c) == nfkc("a" + c) + "\n" + nfkc(c)
        assert nfkc("\u1100\n" + c) == "\u1100\n" + nfkc(c)


def test_multi_line_text_normalizes_line_by_line():
    texts = sample_texts() + random_texts(2000, seed=7)
    rng = random.Random(8)
    joined = ["\n".join(rng.sample(texts, rng.randint(2, 5))) for _ in range(2000)]
    joined += ["\n", "\n\n", "a\n", "\na", "ﻻ\n\u0651", "e\n\u0301", "\u1100\n\u1161", "\r\n"]
    for text in joined:
        assert normalize(text) == reference_normalize(text), repr(text)


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
    texts = random_texts(600, seed=5) + ["", "ab", "ولم يحدث ذلك", "\ud800abc", "فلا", "ولا"]
    pairs += list(zip(texts[::2], texts[1::2], strict=False))
    pairs += [(t, t) for t in texts[:50]] + [("", t) for t in texts[:20]] + [("ab", "")]
    for target, text in pairs:
        assert stance_pair_features(target, text) == reference_pair_features(target, text)


# ---------------------------------------------------------------- loading
def test_loading_an_sklearn_bundle_does_not_import_torch(sample_bundles):
    code = (
        "import sys\n"
        "from inference.predictors.bundle import load_bundle\n"
        f"load_bundle({str(sample_bundles['topic'])!r})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "import torch, sklearn.externals.array_api_compat.torch  # still importable afterwards\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
