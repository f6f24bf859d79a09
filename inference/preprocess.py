"""The preprocessing shared by the dataset builder (training) and the tagger (inference).

Both sides call exactly these functions, so a feature can never be computed one way at training time
and another at serving time. ``tests/test_train_serve_parity.py`` checks it end to end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from inference.furniture import FURNITURE_KINDS, FurnitureRules, default_rules
from inference.normalize import NORMALIZER_VERSION, normalize
from inference.schema import Article

_SENTENCE_END = re.compile(r"[.!?؟…»\"”)]\s*$")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_BULLET = re.compile(r"^\s*[-•*·▪►◄■●–—]\s*")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")

# A related-headline list: after an "opens_block" header, headline-like paragraphs (short, no
# sentence-final punctuation) continue the block. Longer than this, a line is story text again.
HEADLINE_MAX_WORDS = 22

FEATURE_NAMES: tuple[str, ...] = (
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


def _shape(text: str, title_tokens: set[str], title_norm: str) -> dict[str, float]:
    words = text.split()
    toks = set(words)
    union = toks | title_tokens
    arabic, latin, digit, punct = _class_ratios(text)
    return {
        "n_words_log": math.log1p(len(words)),
        "n_chars_log": math.log1p(len(text)),
        "is_short": float(len(words) <= 5),
        "arabic_ratio": arabic,
        "latin_ratio": latin,
        "digit_ratio": digit,
        "punct_ratio": punct,
        "ends_sentence": float(bool(_SENTENCE_END.search(text))),
        "ends_colon": float(text.rstrip().endswith((":", "："))),
        "has_colon": float(":" in text),
        "has_url": float(bool(_URL.search(text))),
        "has_email": float("@" in text and bool(_EMAIL.search(text))),  # no "@", no match
        "starts_bullet": float(bool(_BULLET.match(text))),
        "title_jaccard": len(toks & title_tokens) / len(union) if union else 0.0,
        "equals_title": float(bool(title_norm) and text == title_norm),
        "headline_like": float(
            len(words) <= HEADLINE_MAX_WORDS and not text.rstrip().endswith(".")
        ),
    }


def boilerplate_inputs(
    article: Article,
    rules: FurnitureRules | None = None,
    normalizer_version: str = NORMALIZER_VERSION,
) -> list[ParagraphInput]:
    """Features for every non-empty paragraph of ``article``, in order (empty ones are skipped)."""
    rules = rules or default_rules()
    idx = [i for i, p in enumerate(article.paragraphs) if not is_empty_paragraph(p)]
    norm = [normalize(article.paragraphs[i], normalizer_version) for i in idx]
    title_norm = normalize(article.title or "", normalizer_version)
    title_tokens = _tokens(title_norm)
    hits = [rules.match(t) for t in norm]
    n = len(idx)
    out: list[ParagraphInput] = []
    in_block = False
    for k, (i, text, hit) in enumerate(zip(idx, norm, hits, strict=True)):
        feats = _shape(text, title_tokens, title_norm)
        # A block of related headlines continues while lines stay headline-like and rule-free.
        block_here = in_block and hit is None and feats["headline_like"] == 1.0
        feats.update(
            pos_rel=k / (n - 1) if n > 1 else 0.0,
            is_first=float(k == 0),
            is_last=float(k == n - 1),
            pos_from_end=min(n - 1 - k, 10) / 10,
            n_paragraphs_log=math.log1p(n),
            in_related_block=float(block_here),
            rule_opens_block=float(bool(hit and hit.opens_block)),
            prev_rule_any=float(k > 0 and hits[k - 1] is not None),
            next_rule_any=float(k < n - 1 and hits[k + 1] is not None),
            prev_words_log=math.log1p(len(norm[k - 1].split())) if k > 0 else 0.0,
            next_words_log=math.log1p(len(norm[k + 1].split())) if k < n - 1 else 0.0,
        )
        for kind in FURNITURE_KINDS:
            feats[f"rule_{kind}"] = float(bool(hit and hit.kind == kind))
        if hit is not None:
            in_block = hit.opens_block or (in_block and hit.kind == "related")
        else:
            in_block = block_here
        out.append(
            ParagraphInput(
                article_id=article.id,
                index=i,
                text=text,
                prev_text=norm[k - 1] if k > 0 else "",
                next_text=norm[k + 1] if k < n - 1 else "",
                rule=hit.name if hit else None,
                rule_kind=hit.kind if hit else None,
                features={name: feats[name] for name in FEATURE_NAMES},
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
def boilerplate_row(p: ParagraphInput) -> dict:
    return {
        "id": f"{p.article_id}#{p.index}",
        "article_id": p.article_id,
        "index": p.index,
        "text": p.text,
        "prev_text": p.prev_text,
        "next_text": p.next_text,
        "features": [p.features[name] for name in FEATURE_NAMES],
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
