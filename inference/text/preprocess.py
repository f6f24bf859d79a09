"""The preprocessing shared by the dataset builder (training) and the tagger (inference).

Both sides call exactly these functions, so a feature can never be computed one way at training time
and another at serving time. ``tests/test_train_serve_parity.py`` checks it end to end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from inference.text.cohesion import COHESION_FEATURES, cohesion_flags
from inference.text.furniture import FURNITURE_KINDS, FurnitureRules, default_rules
from inference.text.normalize import NORMALIZER_VERSION, normalize
from inference.text.page_structure import (  # noqa: F401  (HEADLINE_MAX_WORDS: this module's API)
    HEADLINE_MAX_WORDS,
    is_headline_like,
    related_block_flags,
    teaser_flags,
)
from inference.text.schema import Article

_SENTENCE_END = re.compile(r"[.!?؟…»\"”)]\s*$")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_BULLET = re.compile(r"^\s*[-•*·▪►◄■●–—]\s*")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")


FEATURE_NAMES: tuple[str, ...] = (  # boilerplate_inputs writes the values in this order
    "pos_rel",
    "is_first",
    "is_last",
    "pos_from_end",
    "n_paragraphs_log",
    "n_words_log",
    "n_chars_log",
    "is_short",
    "arabic_ratio",
    "latin_ratio",
    "digit_ratio",
    "punct_ratio",
    "ends_sentence",
    "ends_colon",
    "has_colon",
    "has_url",
    "has_email",
    "starts_bullet",
    "title_jaccard",
    "equals_title",
    "headline_like",
    "in_related_block",
    "rule_opens_block",
    "prev_rule_any",
    "next_rule_any",
    "prev_words_log",
    "next_words_log",
    *(f"rule_{kind}" for kind in FURNITURE_KINDS),
    "related_teaser",  # another story's paragraph inlined after a related block (page_structure)
    *COHESION_FEATURES,  # how the paragraph hangs together with the page's story (cohesion)
)


def is_empty_paragraph(paragraph: str | None) -> bool:
    return paragraph is None or not paragraph.strip()


@dataclass
class ParagraphInput:
    """One non-empty paragraph as every boilerplate model sees it."""

    article_id: str
    index: int
    text: str
    prev_text: str
    next_text: str
    rule: str | None
    rule_kind: str | None
    features: dict[str, float] = field(default_factory=dict)

    def context(self) -> str:
        """The neighbours, for models that read text pairs (transformers)."""
        return f"{self.prev_text} | {self.next_text}"


def _tokens(text: str) -> set[str]:
    return set(text.split())


def _ratio(rx: re.Pattern, text: str) -> float:
    return len(rx.findall(text)) / max(len(text), 1)


_RATIO_CLASSES = (("a", _ARABIC), ("l", _LATIN), ("d", _DIGIT), ("p", _PUNCT))


@lru_cache(maxsize=1)
def _class_table() -> list[str]:
    """Every BMP code point -> the letters of the ratio classes it belongs to ("" for none)."""
    bmp = "".join(map(chr, range(0x10000)))
    table = [""] * 0x10000
    for letter, rx in _RATIO_CLASSES:  # derived from the regexes, so the counts are theirs
        for m in rx.finditer(bmp):
            table[m.start()] += letter
    return table


def _class_ratios(text: str) -> list[float]:
    """``_ratio`` of the Arabic, Latin, digit and punctuation classes (same values).

    One ``translate`` to class letters and four ``count`` calls instead of four regex scans that
    each build a list of every match (a third of the feature time on Arabic text).
    """
    if text and max(text) > "\uffff":  # beyond the table (emoji...): the regexes themselves
        return [_ratio(rx, text) for _, rx in _RATIO_CLASSES]
    classes = text.translate(_class_table())
    n = max(len(text), 1)
    return [classes.count(letter) / n for letter, _ in _RATIO_CLASSES]


@lru_cache(maxsize=1)
def _class_bits() -> tuple[np.ndarray, np.ndarray]:
    """(BMP code point -> bit mask of its ratio classes, mask -> 0/1 per class): ``_class_table``
    as numpy arrays."""
    bits = np.zeros(0x10000, dtype=np.int64)
    per_mask = np.zeros((16, len(_RATIO_CLASSES)), dtype=np.int64)
    for k, (letter, _) in enumerate(_RATIO_CLASSES):
        bits[[i for i, letters in enumerate(_class_table()) if letter in letters]] |= 1 << k
        per_mask[[m for m in range(16) if m & (1 << k)], k] = 1
    return bits, per_mask


def class_ratios(texts: list[str]) -> list[list[float]]:
    """``_class_ratios`` of each text (same values), for all of an article's paragraphs at once:
    their code points in one array, class masks by table lookup, counts per paragraph by bincount.
    """
    cp = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(cp) and cp.max() > 0xFFFF:  # beyond the table (emoji...): one paragraph at a time
        return [_class_ratios(t) for t in texts]
    lengths = [len(t) for t in texts]
    bits, per_mask = _class_bits()
    owner = np.repeat(np.arange(len(texts)) * 16, lengths)
    masks = np.bincount(owner + bits[cp], minlength=16 * len(texts)).reshape(len(texts), 16)
    counts = (masks @ per_mask).tolist()  # integers: the same counts as str.count
    return [[c / max(n, 1) for c in row] for row, n in zip(counts, lengths, strict=True)]


# ``_SENTENCE_END`` ("[...]\s*$") matches exactly when the last non-whitespace character is one of
# these: ``$`` also matches before a final newline, which ``\s*`` covers anyway, and ``rstrip()``
# strips what ``\s`` matches.
_SENTENCE_END_CHARS = frozenset('.!?؟…»"”)')


# The shape features, in FEATURE_NAMES order (``_shape_values``).
_SHAPE_NAMES = FEATURE_NAMES[5:21]


def _shape_values(
    text: str, words: list[str], ratios: list[float], title_tokens: set[str], title_norm: str
) -> list[float]:
    """The ``_SHAPE_NAMES`` features of one normalized paragraph."""
    toks = set(words)
    union = toks | title_tokens
    stripped = text.rstrip()
    return [
        math.log1p(len(words)),  # n_words_log
        math.log1p(len(text)),  # n_chars_log
        float(len(words) <= 5),  # is_short
        *ratios,  # arabic_ratio, latin_ratio, digit_ratio, punct_ratio
        float(bool(stripped) and stripped[-1] in _SENTENCE_END_CHARS),  # ends_sentence
        float(stripped.endswith((":", "："))),  # ends_colon
        float(":" in text),  # has_colon
        float(_has_url(text)),  # has_url
        float("@" in text and bool(_EMAIL.search(text))),  # has_email (no "@", no match)
        float(bool(_BULLET.match(text))),  # starts_bullet
        len(toks & title_tokens) / len(union) if union else 0.0,  # title_jaccard
        float(bool(title_norm) and text == title_norm),  # equals_title
        float(is_headline_like(text, len(words))),  # headline_like
    ]


def _shape(text: str, title_tokens: set[str], title_norm: str) -> dict[str, float]:
    """The shape features of one normalized paragraph, by name."""
    values = _shape_values(text, text.split(), class_ratios([text])[0], title_tokens, title_norm)
    return dict(zip(_SHAPE_NAMES, values, strict=True))


_HEADLINE_LIKE = _SHAPE_NAMES.index("headline_like")
# rule_<kind> one-hot rows (FEATURE_NAMES ends with them, in FURNITURE_KINDS order).
_RULE_ONE_HOT = {kind: [float(kind == k) for k in FURNITURE_KINDS] for kind in FURNITURE_KINDS}
_NO_RULE = [0.0] * len(FURNITURE_KINDS)


def _has_url(text: str) -> bool:
    # ``_URL`` needs "://" or "www." (case-insensitively, and only "w"/"W" match "w" then):
    # Arabic paragraphs rarely have either, and the substring tests are much cheaper than a search.
    if "://" not in text and not ("." in text and ("w" in text or "W" in text)):
        return False
    return bool(_URL.search(text))


_NO_COHESION = (0.0,) * len(COHESION_FEATURES)


def _cohesion_rows(
    norm: list[str],
    title_norm: str,
    has_rule: list[bool],
    in_block: list[bool],
    n_words: list[int],
    compute: bool,
) -> list[tuple[float, ...]]:
    """Per paragraph, the ``COHESION_FEATURES`` values (all 0.0 when not ``compute``)."""
    if not compute:
        return [_NO_COHESION] * len(norm)
    values = cohesion_flags(norm, title_norm, has_rule, in_block, n_words)
    return list(zip(*(values[name] for name in COHESION_FEATURES), strict=True))


def boilerplate_inputs(
    article: Article,
    rules: FurnitureRules | None = None,
    normalizer_version: str = NORMALIZER_VERSION,
    cohesion: bool = True,
) -> list[ParagraphInput]:
    """Features for every non-empty paragraph of ``article``, in order (empty ones are skipped).

    ``cohesion=False`` leaves the ``COHESION_FEATURES`` at 0.0 without computing them: for a model
    that does not read them (``Bundle.reads_any_feature``), every column it reads is unchanged.
    """
    rules = rules or default_rules()
    idx = [i for i, p in enumerate(article.paragraphs) if not is_empty_paragraph(p)]
    norm = [normalize(article.paragraphs[i], normalizer_version) for i in idx]
    title_norm = normalize(article.title or "", normalizer_version)
    title_tokens = _tokens(title_norm)
    words = [t.split() for t in norm]
    n_words = [len(w) for w in words]
    hits = [rules.match(t, n_w) for t, n_w in zip(norm, n_words, strict=True)]
    ratios = class_ratios(norm)
    n = len(idx)
    shapes = [
        _shape_values(text, words[k], ratios[k], title_tokens, title_norm)
        for k, text in enumerate(norm)
    ]
    has_rule = [hit is not None for hit in hits]
    opens = [bool(hit and hit.opens_block) for hit in hits]
    in_block = related_block_flags(
        [hit.kind if hit else None for hit in hits],
        opens,
        [shape[_HEADLINE_LIKE] == 1.0 for shape in shapes],
    )
    teaser = teaser_flags(has_rule, opens, in_block, n_words)
    cohesion_rows = _cohesion_rows(norm, title_norm, has_rule, in_block, n_words, cohesion)
    out: list[ParagraphInput] = []
    for k, (i, text, hit) in enumerate(zip(idx, norm, hits, strict=True)):
        values = [
            k / (n - 1) if n > 1 else 0.0,  # pos_rel
            float(k == 0),  # is_first
            float(k == n - 1),  # is_last
            min(n - 1 - k, 10) / 10,  # pos_from_end
            math.log1p(n),  # n_paragraphs_log
            *shapes[k],
            float(in_block[k]),  # in_related_block
            float(opens[k]),  # rule_opens_block
            float(k > 0 and has_rule[k - 1]),  # prev_rule_any
            float(k < n - 1 and has_rule[k + 1]),  # next_rule_any
            math.log1p(n_words[k - 1]) if k > 0 else 0.0,  # prev_words_log
            math.log1p(n_words[k + 1]) if k < n - 1 else 0.0,  # next_words_log
            *(_RULE_ONE_HOT.get(hit.kind, _NO_RULE) if hit else _NO_RULE),  # rule_<kind>
            float(teaser[k]),  # related_teaser
            *cohesion_rows[k],
        ]
        out.append(
            ParagraphInput(
                article_id=article.id,
                index=i,
                text=text,
                prev_text=norm[k - 1] if k > 0 else "",
                next_text=norm[k + 1] if k < n - 1 else "",
                rule=hit.name if hit else None,
                rule_kind=hit.kind if hit else None,
                features=dict(zip(FEATURE_NAMES, values, strict=True)),
            )
        )
    return out


def clean_paragraphs(article: Article, labels: list[str | None] | None) -> list[str]:
    """The story paragraphs: non-empty and not labeled boilerplate (all of them when ``labels`` is None)."""
    keep = []
    for i, para in enumerate(article.paragraphs):
        if is_empty_paragraph(para):
            continue
        if labels is not None and labels[i] == "boilerplate":
            continue
        keep.append(para)
    return keep


def topic_text(
    article: Article,
    boilerplate_labels: list[str | None] | None = None,
    normalizer_version: str = NORMALIZER_VERSION,
) -> str:
    """Title + story paragraphs, normalized, one per line: what every topic model reads."""
    parts = [article.title] if article.title else []
    parts += clean_paragraphs(article, boilerplate_labels)
    return "\n".join(normalize(p, normalizer_version) for p in parts if p and p.strip())


def stance_text(article: Article, boilerplate_labels: list[str | None] | None = None) -> str:
    """The raw text whose stance is judged: title + story paragraphs (furniture dropped).

    A claim-only record (its claim is its only paragraph) is judged as the claim itself.
    """
    if article.claim and article.paragraphs == [article.claim]:
        return article.claim
    keep = clean_paragraphs(article, boilerplate_labels)
    return "\n".join(([article.title] if article.title else []) + keep)


def stance_pair(
    target: str, text: str, normalizer_version: str = NORMALIZER_VERSION
) -> tuple[str, str]:
    """(claim or target, text), normalized: what every stance model reads."""
    return normalize(target, normalizer_version), normalize(text, normalizer_version)


# ---------------------------------------------------------------- model rows
# Every predictor (sklearn, transformer, ONNX) consumes plain dict rows with these keys; the dataset
# builder writes the same keys as dataset columns, so a training example and a served input are the
# same object by construction.
def _feature_list(features: dict[str, float]) -> list[float]:
    # ``boilerplate_inputs`` builds the dict in FEATURE_NAMES order: its values are the list.
    if tuple(features) == FEATURE_NAMES:
        return list(features.values())
    return [features[name] for name in FEATURE_NAMES]


def boilerplate_row(p: ParagraphInput) -> dict:
    return {
        "id": f"{p.article_id}#{p.index}",
        "article_id": p.article_id,
        "index": p.index,
        "text": p.text,
        "prev_text": p.prev_text,
        "next_text": p.next_text,
        "features": _feature_list(p.features),
        "rule": p.rule or "",
    }


def topic_row(
    article: Article,
    boilerplate_labels: list[str | None] | None = None,
    normalizer_version: str = NORMALIZER_VERSION,
) -> dict:
    # The outlet travels with the text: topic models may read it (model.source_weight).
    text = topic_text(article, boilerplate_labels, normalizer_version)
    return {"id": article.id, "source": article.source or "", "text": text}


def stance_row(
    row_id: str, target: str, text: str, normalizer_version: str = NORMALIZER_VERSION
) -> dict:
    target_n, text_n = stance_pair(target, text, normalizer_version)
    return {"id": row_id, "target": target_n, "text": text_n}
