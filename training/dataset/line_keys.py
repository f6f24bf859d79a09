"""Line keys of the weak labeler: how two paragraphs or titles are found to be "the same line".

A paragraph's key is ``match_key(normalize(paragraph))``: the normalized text without punctuation,
lower-cased (so '...المزيد' and '....المزيد' are one line), hashed with its source by
``text_hash``. Pass 1 of the dataset builder computes the key of every paragraph of the archive,
so :func:`paragraph_keys` computes many keys at once with one table and one numpy gather instead
of a normalization and a regex scan per paragraph (``training.dataset.fused_keys``), with the same
result.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from inference.text.normalize import NORMALIZER_VERSION, normalize
from training.dataset.fused_keys import FusedKeys

# A title shorter than this is too generic ("الرياض", "كلمة أخيرة") to identify a related link.
MIN_TITLE_WORDS = 3
MIN_LOOSE_TITLE_WORDS = 4
_PUNCT_RUN = re.compile(r"[\W_]+")
# Near-equal title matching ignores these particles and a leading definite article.
_PARTICLES = frozenset("في من علي الي عن مع و او ثم ب ل ك ان قد ما لا هل".split())
_DEFINITE = re.compile(r"^(وال|بال|فال|كال|لل|ال)(?=\w{2})")
_DEFINITE_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")  # what _DEFINITE can match at all


def text_hash(*parts: str) -> int:
    """A stable 64-bit hash (Python's ``hash`` changes between processes)."""
    text = (
        f"{parts[0]}\x1f{parts[1]}" if len(parts) == 2 else "\x1f".join(parts)
    )  # (the usual case)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# The punctuation found in >99.9% of the paragraphs of the reference archives, most frequent first.
_COMMON_PUNCT = tuple('،."-():»«/,؟%؛!#”*–“')


def match_key(normalized: str) -> str:
    """Normalized text without punctuation, so '...المزيد' and '....المزيد' are one line.

    The key is ``[\\W_]+`` runs replaced by one space, stripped and lower-cased. The regex scan
    costs ~50 ns per character; when the text's only non-word characters are common punctuation
    and whitespace, ``str.replace`` + ``split`` give the same key at a third of the cost.
    """
    text = normalized
    for mark in _COMMON_PUNCT:
        if mark in text:
            text = text.replace(mark, " ")
    words = text.split()
    if "".join(words).isalnum():  # only word characters left: the words are the regex's runs
        key = " ".join(words).lower()
    else:
        key = _PUNCT_RUN.sub(" ", normalized).strip().lower()
    return key or normalized.strip()


def loose_title_key(key: str) -> str:
    """A headline without particles and the article 'ال', so near-equal wordings of one headline
    ("بين الفرقاء في ليبيا" / "بين فرقاء ليبيا") meet; "" when too little is left to be specific."""
    # startswith first: the regex call costs ~10x more, and most words have no definite article.
    words = [
        _DEFINITE.sub("", w) if w.startswith(_DEFINITE_PREFIXES) else w
        for w in key.split()
        if w not in _PARTICLES
    ]
    return " ".join(words) if len(words) >= MIN_LOOSE_TITLE_WORDS else ""


@cache
def _fused(version: str | None) -> FusedKeys:
    return FusedKeys(version, match_key)


def paragraph_key(text: str, version: str = NORMALIZER_VERSION) -> str:
    """The key of a raw paragraph or title: ``match_key(normalize(text))``."""
    return match_key(normalize(text, version))


def match_keys(normalized: list[str]) -> list[str]:
    """``[match_key(t) for t in normalized]``, computed many at once (same values)."""
    return _fused(None).keys(normalized)


def paragraph_keys(texts: list[str], version: str = NORMALIZER_VERSION) -> list[str]:
    """``[paragraph_key(t) for t in texts]``, computed many at once (same values, ~10x faster
    per character)."""
    return _fused(version).keys(texts)
