"""Synthetic pages: real stories given the trailers that scraped pages carry on other sites.

Clean corpora never show the boilerplate model a page whose trailer inlines *other stories*: a
credit, a "read also" header with a headline and an app promo, then paragraphs of a second story
(or the leads of several), then a related list. Those paragraphs are long, well-formed prose, so
weak labels call them story; only their place (after the story's end) and topic (away from the
lead) give them away (``inference.text.cohesion``). A fraction of the training articles is
therefore also emitted as a composed page, built from real parts only: the article itself, real
furniture lines (paragraphs of other articles that a furniture rule hit) and other articles' titles
and paragraphs. Host paragraphs keep their weak labels; every added paragraph is boilerplate.

A third layout puts a "read also" block *inside* the story, which then resumes: its paragraphs stay
content, so the model learns that what follows furniture is not furniture by place alone.
Only the training split gets synthetic pages (validation and test stay real pages).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from inference.text.furniture import FurnitureRules
from inference.text.normalize import normalize
from inference.text.preprocess import boilerplate_inputs, boilerplate_row, is_empty_paragraph
from inference.text.schema import Article

BOILERPLATE = "boilerplate"
MID_BLOCK_SHARE = 0.3  # pages whose related block sits inside the story
STORY_LEADS_SHARE = 0.25  # pages that append the leads of several other stories
MAX_INLINED_PARAGRAPHS = 12

# A synthetic page's id: its host's with this suffix (``data.synthetic_pages: false`` drops them).
PAGE_ID_SUFFIX = "~page"


@dataclass
class FurnitureBank:
    """Real furniture lines (rule hits in real articles) and other stories' titles to compose with."""

    credit: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)  # block-opening "read also" headers
    promo: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # nav, legal, datelines
    headlines: list[str] = field(default_factory=list)

    def usable(self) -> bool:
        return bool(self.header and self.headlines and (self.credit or self.promo))

    def add_article(self, article: Article, rules: FurnitureRules) -> None:
        if article.title:
            self.headlines.append(article.title)
        for para in article.paragraphs:
            if is_empty_paragraph(para):
                continue
            hit = rules.match(normalize(para))
            if hit is None:
                continue
            if hit.opens_block:
                self.header.append(para)
            elif hit.kind in ("credit", "promo"):
                getattr(self, hit.kind).append(para)
            elif hit.kind in ("nav", "legal", "dateline"):
                self.other.append(para)


def collect_bank(articles: Iterable[Article], rules: FurnitureRules) -> FurnitureBank:
    bank = FurnitureBank()
    for article in articles:
        bank.add_article(article, rules)
    return bank


@dataclass
class SyntheticPages:
    """What pass 2 needs to compose pages: which articles (``fraction``, by id hash) and the bank."""

    fraction: float
    seed: int
    bank: FurnitureBank

    def chosen(self, article_id: str) -> bool:
        digest = hashlib.blake2b(f"{self.seed}:{article_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.fraction

    def rng(self, article_id: str) -> random.Random:
        return random.Random(f"{self.seed}:page:{article_id}")


def _pick(rng: random.Random, items: list[str]) -> list[str]:
    return [rng.choice(items)] if items else []


def _trailer_lines(rng: random.Random, bank: FurnitureBank) -> list[str]:
    """One to four furniture lines in a random order: credit, read-also + headline, promo, other."""
    parts = [
        _pick(rng, bank.credit),
        _pick(rng, bank.header) + _pick(rng, bank.headlines),
        _pick(rng, bank.promo),
        _pick(rng, bank.other),
    ]
    present = [p for p in parts if p]
    chosen = [p for p in present if rng.random() < 0.6] or present[:1]
    rng.shuffle(chosen)
    return [line for part in chosen for line in part]


def _related_list(rng: random.Random, bank: FurnitureBank) -> list[str]:
    n = min(len(bank.headlines), rng.randint(2, 5))
    return _pick(rng, bank.header) + rng.sample(bank.headlines, n)


def _story(article: Article) -> list[str]:
    return [p for p in article.paragraphs if not is_empty_paragraph(p)]


def _mid_block(host: Article, labels, prov, bank, rng):
    paras = list(host.paragraphs)
    cut = rng.randint(2, len(paras) - 2)
    block = _pick(rng, bank.header) + _pick(rng, bank.headlines)
    paras[cut:cut] = block
    labels[cut:cut] = [BOILERPLATE] * len(block)
    prov[cut:cut] = ["synthetic:related"] * len(block)
    return paras, labels, prov


def _tail(rng: random.Random, donors: list[Article], bank: FurnitureBank) -> list[tuple[str, str]]:
    """The added trailer as (paragraph, provenance): other stories after furniture."""
    tail = [(x, "synthetic:trailer") for x in _trailer_lines(rng, bank)]
    if rng.random() < STORY_LEADS_SHARE / (1 - MID_BLOCK_SHARE):
        leads = [s[0] for s in map(_story, donors[: rng.randint(2, 5)]) if s]
        return tail + [(x, "synthetic:story_lead") for x in leads]
    story = _story(donors[0])[: rng.randint(1, MAX_INLINED_PARAGRAPHS)]
    tail += [(x, "synthetic:inlined_story") for x in story]
    if rng.random() < 0.5:
        tail += [(x, "synthetic:related") for x in _related_list(rng, bank)]
    return tail


def compose_page(
    host: Article,
    host_labels: list[str | None],
    host_provenance: list[str],
    donors: list[Article],
    bank: FurnitureBank,
    rng: random.Random,
) -> tuple[Article, list[str | None], list[str]]:
    """A page built from ``host``: (article, labels, provenance), aligned with its paragraphs.

    ``donors`` are other articles (the first one is inlined whole or in part; the leads of up to
    five are appended); the page's id is the host's with ``~page``.
    """
    labels, prov = list(host_labels), list(host_provenance)
    if rng.random() < MID_BLOCK_SHARE and len(host.paragraphs) >= 4:
        paras, labels, prov = _mid_block(host, labels, prov, bank, rng)
    else:
        tail = _tail(rng, donors, bank)
        paras = list(host.paragraphs) + [x for x, _ in tail]
        labels += [BOILERPLATE] * len(tail)
        prov += [p for _, p in tail]
    page = replace(host, id=f"{host.id}{PAGE_ID_SUFFIX}", paragraphs=paras, labels=None)
    return page, labels, prov


def page_rows(
    hosts: list[tuple[Article, list]],
    pool: list[Article],
    spec: SyntheticPages,
    rules: FurnitureRules,
) -> list[dict]:
    """Labeled boilerplate rows of the synthetic pages of the chosen ``hosts``.

    ``hosts``: (training article, its weak labels per paragraph); ``pool``: the articles donors
    are drawn from (the host itself excluded). Host rows carry ``page:<weak provenance>``.
    """
    rows: list[dict] = []
    for host, weak in hosts:
        if not spec.chosen(host.id):
            continue
        others = [a for a in pool if a.id != host.id]
        if not others:
            continue
        rng = spec.rng(host.id)
        donors = rng.sample(others, min(5, len(others)))
        labels = [w.label for w in weak]
        prov = [f"page:{w.provenance}" for w in weak]
        page, labels, prov = compose_page(host, labels, prov, donors, spec.bank, rng)
        for p in boilerplate_inputs(page, rules):
            if labels[p.index] is None:
                continue
            row = boilerplate_row(p)
            row.update(source=host.source or "", label=labels[p.index], provenance=prov[p.index])
            rows.append(row)
    return rows
