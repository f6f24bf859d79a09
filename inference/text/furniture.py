"""Furniture phrase rules: regexes over normalized paragraphs, kept as data (``rules/furniture_v1.json``).

The same rules serve two callers: the weak labeler in ``training`` (a rule hit is a weak label) and
the boilerplate model's features here (a rule hit is evidence the model weighs in context). A
dataset config may replace the rule list; the resolved list travels inside the bundle so the tagger
matches exactly what training matched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

FURNITURE_KINDS = ("credit", "dateline", "related", "promo", "nav", "legal", "other")


@dataclass(frozen=True)
class FurnitureRule:
    name: str
    kind: str
    pattern: str
    max_words: int = 12
    opens_block: bool = False

    def compiled(self) -> re.Pattern:
        return _compile(self.pattern)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


class FurnitureRules:
    """An ordered rule list; ``match`` returns the first rule that fires on a normalized paragraph."""

    def __init__(self, rules: list[FurnitureRule]):
        for rule in rules:
            if rule.kind not in FURNITURE_KINDS:
                raise ValueError(f"furniture rule {rule.name!r}: unknown kind {rule.kind!r}")
            try:
                rule.compiled()
            except re.error as exc:
                raise ValueError(f"furniture rule {rule.name!r}: bad regex: {exc}") from exc
        self.rules = list(rules)
        self._compiled = [(r, r.compiled()) for r in self.rules]

    @classmethod
    def from_dicts(cls, items: list[dict]) -> FurnitureRules:
        return cls([FurnitureRule(**item) for item in items])

    def to_dicts(self) -> list[dict]:
        return [rule.__dict__.copy() for rule in self.rules]

    def match(self, normalized: str, n_words: int | None = None) -> FurnitureRule | None:
        if not normalized:
            return None
        words = n_words if n_words is not None else len(normalized.split())
        for rule, rx in self._compiled:
            if words <= rule.max_words and rx.search(normalized):
                return rule
        return None


@lru_cache(maxsize=1)
def default_rule_dicts() -> tuple[dict, ...]:
    text = resources.files("inference.text.rules").joinpath("furniture_v1.json").read_text("utf-8")
    return tuple(json.loads(text)["rules"])


def default_rules() -> FurnitureRules:
    return FurnitureRules.from_dicts([dict(d) for d in default_rule_dicts()])
