"""``match_key(normalize(text))`` for many texts at once: one table, one numpy gather.

Pass 1 of the dataset builder keys every paragraph of the archive: normalized text, punctuation runs
as one space, lower-cased (``training.dataset.line_keys.match_key``, passed in as the definition).
Done the obvious way that is a ``str.translate`` and a regex scan per paragraph, ~100 ns per
character. Here:

- ``normalize`` is NFKC, then a per-character map (``inference/text/rules/normalizer_v*.json``),
  then whitespace collapsing; ``match_key`` turns every run of non-word characters into one space
  and lower-cases. After NFKC every step but the collapsing works character by character, so one
  table does them all: each BMP character -> what the normalizer makes of it, non-word characters as
  a space, lower-cased. The table is read off the normalizer itself (each character normalized
  between two "0"s), not copied from its rules, and checked against the two-step key at start-up.
- :meth:`FusedKeys.keys` maps the UTF-16 code units of all the texts with that table in one numpy
  gather, keeps one space between words, and decodes once; ~5 ns per character.

Texts the table cannot do (characters beyond the BMP, a character that maps to several, a capital
sigma, whose lower case depends on its neighbours) and texts whose key is empty take the two-step
path, so the keys are always exactly ``match_key(normalize(text))``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable

import numpy as np

from inference.text.normalize import get_normalizer, normalize

log = logging.getLogger(__name__)

_WORD_RUN = re.compile(r"[^\W_]+")  # match_key's word characters: not [\W_]
_SPACE = 0x20
_SLOW = 0xFFFE  # fused code of a character the table cannot do (a noncharacter: never output)
_SEP_CODE = 0xFFFF  # separates the texts in one array (a noncharacter: no text has it)
_SEPARATOR = chr(_SEP_CODE)
_CAPITAL_SIGMA = 0x3A3  # str.lower() makes it "ς" or "σ" depending on its neighbours
# Normalizer edge cases the fused table must agree on: letter variants, diacritics, tatweel,
# presentation forms, compositions (alef + madda / hamza), digits, Latin case, punctuation runs.
_SELF_CHECK = (
    "",
    "...",
    "أعلنت وزارة الصحة، اليوم: «افتتاح» 3 مستشفيات!",
    "إِنَّ الْحَمْدَ لِلَّهِ ـــ مرحبـــا",
    "\ufefb\ufef7 \ufe8d\ufe8e ﷺ",
    "\u0627\u0653 \u0627\u0654 \u0648\u0654 \u064a\u0654",
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲ 0123",
    "Hello WORLD_x İstanbul ΣΑΣ σς",
    "a\u00a0b\u200bc\u200cd\u200de\u2028f\tg\nh \u00a0\u0301 \u0627\u00a0\u0653",
    "ى ة ه ؤ ئ ء آ",
    "\U0001f600 رمز تعبيري",
)


class FusedKeys:
    """The fused table of one normalizer version; ``key`` / ``keys`` as described above.

    ``version`` None: texts that are normalized already, so ``keys`` is ``match_key`` alone.
    """

    def __init__(self, version: str | None, match_key: Callable[[str], str]):
        self.version = version
        self.match_key = match_key  # training.dataset.line_keys.match_key: the definition of a key
        self.codes: np.ndarray | None = None  # BMP code unit -> fused code unit, 0: deleted
        table = _probe_table(version) if version else [chr(cp) for cp in range(0x10000)]
        if table is None:
            log.warning(
                "normalizer %s is not a per-character map; keys take the slow path", version
            )
            return
        self.codes = _code_arrays(table)
        expected = [self._exact(t) for t in _SELF_CHECK]
        if self.keys(list(_SELF_CHECK)) != expected:
            log.warning("fused paragraph keys disagree with the normalizer; using the slow path")
            self.codes = None

    def _exact(self, text: str) -> str:
        return self.match_key(normalize(text, self.version) if self.version else text)

    def key(self, text: str) -> str:
        # One text: numpy's per-call overhead would cost more than it saves.
        return self._exact(text)

    def keys(self, texts: list[str]) -> list[str]:
        """``[match_key(normalize(t)) for t in texts]``."""
        if self.codes is None or not texts:
            return [self._exact(t) for t in texts]
        nfkc = [_nfkc(t) for t in texts] if self.version else texts
        # The texts in one array, each followed by a separator that no text contains.
        joined = _SEPARATOR.join(nfkc) + _SEPARATOR
        units = joined.encode("utf-16-le", "surrogatepass")
        if len(units) != 2 * len(joined):  # beyond the BMP somewhere
            return self._some_slow(texts, nfkc, {i for i, t in enumerate(nfkc) if not _bmp(t)})
        if joined.count(_SEPARATOR) != len(nfkc):  # a text has the separator itself
            return self._some_slow(texts, nfkc, {i for i, t in enumerate(nfkc) if _SEPARATOR in t})
        cp = np.frombuffer(units, np.uint16)
        mapped = self.codes[cp]
        slow = np.flatnonzero(mapped == _SLOW)
        if slow.size:
            ends = np.flatnonzero(cp == _SEP_CODE)
            return self._some_slow(texts, nfkc, set(np.searchsorted(ends, slow).tolist()))
        mapped = mapped[mapped != 0]  # 0: deleted by the normalizer
        # " ".join(key.split()): keep the last space of each run, then only runs between words.
        space = mapped == _SPACE
        run_end = np.ones(mapped.size, bool)
        run_end[:-1] = ~(space[:-1] & space[1:])
        mapped = mapped[~space | run_end]
        word = (mapped != _SPACE) & (mapped != _SEP_CODE)
        between = np.zeros(mapped.size, bool)
        between[1:-1] = word[:-2] & word[2:]
        mapped = mapped[(mapped != _SPACE) | between]
        keys = mapped.tobytes().decode("utf-16-le").split(_SEPARATOR)[:-1]
        # An empty key falls back to the normalized text (match_key's rule).
        return [
            key or (normalize(text, self.version) if self.version else text).strip()
            for key, text in zip(keys, texts, strict=True)
        ]

    def _some_slow(self, texts: list[str], nfkc: list[str], slow: set[int]) -> list[str]:
        """The texts in ``slow`` the two-step way, the others through the table."""
        fast = [i for i in range(len(texts)) if i not in slow]
        keys: list[str] = [""] * len(texts)
        for i, key in zip(fast, self.keys([nfkc[i] for i in fast]), strict=True):
            keys[i] = key
        for i in slow:
            keys[i] = self._exact(texts[i])
        return keys


def _nfkc(text: str) -> str:
    """NFKC, as ``normalize`` starts. A no-break space (in 1 paragraph in 12 of the reference
    archives, and the only reason most of those are not NFKC already) is replaced first: NFKC
    makes it a space, a starter that composes and reorders with nothing, so the result is the same
    and the text usually needs no NFKC pass at all."""
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def _bmp(text: str) -> bool:
    return len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text)


def _probe_table(version: str) -> list[str] | None:
    """BMP code point -> what ``normalize`` makes of it between two "0"s (None: not per char)."""
    norm = get_normalizer(version)
    if norm("0") != "0":
        return None
    table = []
    for cp in range(0x10000):
        out = norm("0" + chr(cp) + "0")
        if len(out) < 2 or out[0] != "0" or out[-1] != "0":
            return None  # composes with the probe (or worse): not a per-character map
        table.append(out[1:-1])
    return table


def _code_arrays(table: list[str]) -> np.ndarray:
    """The probe table fused with match_key: word characters lower-cased, the rest a space,
    0 for deleted, ``_SLOW`` for what the table cannot do, ``_SEP_CODE`` kept as itself."""
    bmp = "".join(map(chr, range(0x10000)))
    word = np.zeros(0x10000, bool)
    for m in _WORD_RUN.finditer(bmp):
        word[m.start() : m.end()] = True
    codes = np.zeros(0x10000, np.uint16)
    for cp, out in enumerate(table):
        if out == "":
            continue  # deleted
        code = ord(out) if len(out) == 1 else -1
        if 0 <= code < 0x10000 and not word[code]:
            codes[cp] = _SPACE
            continue
        low = out.lower()
        low_code = ord(low) if len(low) == 1 else -1
        fits = 0 < low_code < 0xD800 or 0xDFFF < low_code < _SLOW
        # Several characters, beyond the BMP, a surrogate, or a capital sigma: the slow path.
        codes[cp] = low_code if fits and code != _CAPITAL_SIGMA else _SLOW
    codes[_SEP_CODE] = _SEP_CODE
    codes[_SLOW] = _SLOW
    return codes
