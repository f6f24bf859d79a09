"""Arabic text normalizer driven by versioned rule files
(``inference/text/rules/normalizer_v*.json``).

The rules are data, like CAMeL Tools' char maps: a bundle records the version it was trained with and
the tagger refuses a bundle whose version is unknown, so a rule change can never silently skew
features between training and serving.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache, lru_cache
from importlib import resources

# v2 (2026-12): v1 + context rules (an isolated tatweel is a dash). Bundles trained with v1 keep
# normalizing with v1: the tagger passes each bundle's own version.
NORMALIZER_VERSION = "2"
KNOWN_NORMALIZER_VERSIONS = ("1", "2")

_WS_RE = re.compile(r"\s+")


class UnknownNormalizerVersion(ValueError):
    """A bundle or config asks for a normalizer version this install does not ship."""


def _expand(spec: str) -> list[int]:
    """'064B-0652' -> [0x064B, ..., 0x0652]; '0640' -> [0x0640]."""
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo, 16), int(hi, 16) + 1))
    return [int(spec, 16)]


@cache
def load_rules(version: str = NORMALIZER_VERSION) -> dict:
    if version not in KNOWN_NORMALIZER_VERSIONS:
        raise UnknownNormalizerVersion(
            f"normalizer version {version!r} is not known to this khabar install "
            f"(known: {', '.join(KNOWN_NORMALIZER_VERSIONS)}); upgrade khabar or retrain the bundle"
        )
    text = (
        resources.files("inference.text.rules")
        .joinpath(f"normalizer_v{version}.json")
        .read_text("utf-8")
    )
    return json.loads(text)


@cache
def _context_rules(version: str) -> tuple[tuple[str, re.Pattern, str], ...]:
    """(required character, compiled pattern, replacement) per context rule of ``version``.

    A rule runs only on texts that contain its required character: most paragraphs have none, and
    a substring test is far cheaper than a regex scan.
    """
    return tuple(
        (chr(int(rule["requires"], 16)), re.compile(rule["pattern"]), rule["replace"])
        for rule in load_rules(version).get("context", [])
    )


@cache
def _translation_table(version: str) -> dict[int, str | None]:
    rules = load_rules(version)
    table: dict[int, str | None] = {}
    for specs in rules["delete"].values():
        for spec in specs:
            for cp in _expand(spec):
                table[cp] = None
    for mapping in rules["map"].values():
        for src, dst in mapping.items():
            table[int(src, 16)] = chr(int(dst, 16))
    for spec in rules["whitespace"]["extra_spaces"]:
        for cp in _expand(spec):
            table[cp] = " "
    return table


class ArabicNormalizer:
    """Callable normalizer for one rules version. ``normalize(text)`` is the module-level shortcut."""

    def __init__(self, version: str = NORMALIZER_VERSION):
        self.version = version
        self._table = _translation_table(version)
        # The same table as a list indexed by code point (identity where the rules say nothing):
        # str.translate looks a list up ~2x faster than a dict, whose misses raise KeyError
        # internally for every unmapped character. Code points past its end are left as they are,
        # like characters missing from the dict.
        self._fast_table: list = list(range(max(self._table, default=-1) + 1))
        for cp, value in self._table.items():
            self._fast_table[cp] = value
        self._context = _context_rules(version)
        ws = load_rules(version)["whitespace"]
        self._collapse = ws["collapse"]
        self._strip = ws["strip"]

    def __call__(self, text: str) -> str:
        if not text:
            return ""
        # NFKC first: it folds Arabic presentation forms (e.g. U+FEFB lam-alef) into base letters,
        # which the char map below then sees as ordinary letters.
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        for required, pattern, replacement in self._context:
            if required in text:
                text = pattern.sub(replacement, text)
        text = text.translate(self._fast_table)
        if self._collapse and self._strip:
            # Same result as the sub + strip below (str.split and re's \s use the same Unicode
            # whitespace predicate), without the regex.
            return " ".join(text.split())
        if self._collapse:
            text = _WS_RE.sub(" ", text)
        return text.strip() if self._strip else text


@cache
def get_normalizer(version: str = NORMALIZER_VERSION) -> ArabicNormalizer:
    return ArabicNormalizer(version)


def normalize(text: str, version: str = NORMALIZER_VERSION) -> str:
    """Normalize Arabic text with the rules of ``version`` (default: the current version)."""
    if type(text) is str:
        if "\n" in text and _by_lines(version):
            return _normalize_lines(text, version)
        if len(text) <= _CACHED_MAX_CHARS:
            return _normalize_cached(text, version)
    return get_normalizer(version)(text)


# The tagger normalizes each paragraph for the boilerplate features, then again when it builds the
# topic text of the kept paragraphs (and the stance target for every article): a small cache of
# recent results turns those repeats into lookups. Long texts (a whole story) are rarely repeated.
_CACHED_MAX_CHARS = 2000


@lru_cache(maxsize=8192)
def _normalize_cached(text: str, version: str) -> str:
    return get_normalizer(version)(text)


@cache
def _by_lines(version: str) -> bool:
    """Whether a multi-line text may be normalized line by line (see ``_normalize_lines``)."""
    norm = get_normalizer(version)
    newline = norm._fast_table[10] if len(norm._fast_table) > 10 else 10
    keeps_newline = newline == 10 or (isinstance(newline, str) and newline.isspace())
    return norm._collapse and norm._strip and keeps_newline


def _normalize_lines(text: str, version: str) -> str:
    """``normalize(text)`` as the normalized lines of ``text``, non-empty ones joined by a space.

    The stance text is the title and story paragraphs joined by newlines, and every one of those
    lines was just normalized (and cached) for the boilerplate features. Same result, because each
    step is line by line: NFKC never composes or reorders across a newline (a starter that
    composes with nothing), the char map works per character and leaves the newline whitespace,
    and collapsing + stripping whitespace then joins the lines' words with single spaces.
    """
    return " ".join(filter(None, [normalize(line, version) for line in text.split("\n")]))


def split_paragraphs(text: str) -> list[str]:
    """Split a text body into paragraphs, one per line, empty ones kept (DESIGN.md output contract)."""
    if not text:
        return []
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
