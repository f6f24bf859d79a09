"""Weak paragraph labels for the boilerplate task, each with the evidence (provenance) behind it.

Gold boilerplate labels are rare, so the dataset builder labels the paragraphs of unlabeled scraped
articles from several independent sources of evidence, in two passes over the archive:

1. ``observe`` every article (streaming): count, per source, how many distinct articles carry each
   normalized paragraph, and index every title. Only 64-bit hashes are kept, and a Bloom filter
   keeps paragraphs seen once (the vast majority) out of the counter, so memory stays small on
   archives of millions of articles.
2. ``finalize`` freezes the statistics; ``label`` then gives every paragraph of an article a
   :class:`WeakLabel`, trying in order:

   - furniture phrase rules (``inference/text/rules/furniture_v1.json``) -> ``rule:<name>``; credit
     and dateline rules only count at the edges of the story, outside its body;
   - the article's own title repeated at its top -> ``content:title`` (story, not a link);
   - a line equal to the article's author/byline field -> ``byline``;
   - cross-article repetition within one source -> ``repetition``;
   - a line equal or near-equal to another article's title (same source) -> ``related_title``, or
     a headline listed under a bare "read also" header -> ``related_block``;
   - another story's paragraph inlined after a related block in the page's trailer (furniture
     before and after it, no story after it; ``inference.text.page_structure.teaser_flags``) ->
     ``related_teaser``;
   - story-like text with no furniture evidence -> ``content:long`` (>= ``content_min_words``
     words) or ``content:sentence`` (a shorter complete statement);
   - otherwise ``abstain``: the paragraph is not a training example.

Paragraph features come from ``inference.text.preprocess.boilerplate_inputs``, so the weak labeler
and the model read the same normalized text and rule hits.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from dataclasses import dataclass

from inference.text.furniture import FurnitureRule, FurnitureRules, default_rules
from inference.text.preprocess import ParagraphInput, is_empty_paragraph
from inference.text.schema import Article
from training.config import WeakLabelConfig
from training.dataset.label_inputs import label_inputs
from training.dataset.line_keys import (  # noqa: F401  (text_hash: part of this module's API)
    MIN_TITLE_WORDS,
    loose_title_key,
    match_key,
    match_keys,
    paragraph_key,
    text_hash,
)
from training.dataset.weak_stats import (  # noqa: F401  (BloomFilter: part of this module's API)
    ArticleKeys,
    BloomFilter,
    ObservationCounts,
    observation_keys,
)

# Credits and datelines are furniture at the edges of a story (bylines above it, agency stamps and
# datelines above or below it). Between two story paragraphs the same shapes are list items,
# table cells or poem signatures, so a credit/dateline rule hit there is not trusted.
EDGE_ONLY_KINDS = frozenset({"credit", "dateline"})
# ... except credits that carry an explicit label ("المصدر:", "تصوير:", "نقلا عن", an e-mail
# address): a photo credit or a chart's source sits wherever the picture or chart is.
LABELLED_CREDIT_RULES = frozenset(
    {
        "source_line",
        "photo_caption_tag",
        "transfer_credit",
        "contact_alone",
        "author_bio_note",
        "pen_byline",
        "republished_from",
    }
)
# Headlines listed under a "read also" header; a longer block is the story resuming.
MAX_BLOCK_HEADLINES = 8
# A header this short stands alone ("اقرأ أيضاً:"); a longer one carries its own single headline.
BARE_HEADER_WORDS = 4
# A paragraph equal to the article's author/byline field is a standalone byline credit.
MAX_BYLINE_WORDS = 8
# Story sentences often open with a conjunction + verb or particle ("وقال", "وفي", "ولم") or end in a
# colon (a list follows); headlines listed under a related header do neither.
_STORY_OPENING = re.compile(
    r"^[\W_]*[وف](قال|قالت|اضاف|اضافت|كان|كانت|قد|في|لم|لن|لا|من|ما|هو|هي|ذلك|تابع|تابعت|اكد|اكدت"
    r"|اشار|اشارت|اوضح|اوضحت|ذكر|ذكرت|يذكر|تشير|يشير|يشار|بحسب|حسب|تعد|يعد|تم|بعد|خلال|عن|علي|الي"
    r"|مع|منذ|ان|لكن|كما|اما|هذا|هذه|يري|تري)\b"
)
# A statement this long (ending in . or !) is story text; a question may be a linked headline.
MIN_SENTENCE_WORDS = 6
_SENTENCE_END = re.compile(r"[.!]$")
# A columnist's recurring closing words are story text (annotation guidelines), not furniture.
_CLOSING_WORDS = re.compile(
    r"(الي اللقاء|نلتقي|والله (ولي|من وراء|الموفق|المستعان)|السلام عليكم|وتقبلوا|ودمتم|انا لله"
    r"|رحمه الله|حفظه الله|حفظها الله|والله اعلم|وبالله التوفيق)"
)


@dataclass
class WeakLabel:
    """One paragraph's weak label. ``label`` None means empty paragraph or abstain (no example)."""

    label: str | None
    provenance: str
    kind: str | None = None


@dataclass
class _ArticleView:
    """What ``label`` needs about one article besides its paragraphs."""

    source: str
    title_key: str
    loose_title_key: str  # loose_title_key(title_key): once per article, not once per paragraph
    author_key: str
    lead_end: int  # position (among non-empty paragraphs) of the first story paragraph
    tail_start: int  # position of the last story paragraph
    related_block: list[bool]  # per non-empty paragraph: a headline listed under a related header


class WeakLabeler:
    """Two-pass weak labeler: ``observe`` every article, ``finalize``, then ``label`` each one."""

    def __init__(self, config: WeakLabelConfig, rules: FurnitureRules | None = None):
        self.config = config
        self.rules = rules

    # ------------------------------------------------------------ pass 1
    def _ensure_counting(self) -> ObservationCounts:
        if hasattr(self, "repeat_counts_"):
            raise RuntimeError("WeakLabeler.observe() called after finalize()")
        if not hasattr(self, "_counts"):
            self._counts = ObservationCounts()
        return self._counts

    def observe(self, article: Article) -> None:
        """Count ``article``'s paragraphs and index its title (pass 1, streaming)."""
        self.observe_keys([observation_keys(article)])

    def observe_keys(self, batch: list[ArticleKeys]) -> None:
        """Add the :func:`observation_keys` of articles, in input order (the dataset builder
        computes them in its worker processes); the same as observing the articles one by one."""
        self._ensure_counting().add(batch)

    def finalize(self) -> None:
        """Freeze the pass-1 statistics into the fitted attributes (names ending in ``_``)."""
        counts = self._ensure_counting()
        self.rules_ = self.rules or (
            FurnitureRules.from_dicts(self.config.rules) if self.config.rules else default_rules()
        )
        self._rule_by_name = {rule.name: rule for rule in self.rules_.rules}
        self.repeat_counts_ = counts.repeat_counts
        self.source_articles_ = dict(counts.source_articles)
        self.title_hashes_ = counts.title_hashes()
        # The filters are only needed while counting; they are most of the memory.
        del self._counts

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_title_list", None)  # a lookup copy of title_hashes_, rebuilt on demand
        return state

    # ------------------------------------------------------------ statistics lookups
    def articles_with(self, source: str, key: str) -> int:
        """How many distinct observed articles of ``source`` carry the paragraph ``key`` (>= 1)."""
        return self.repeat_counts_.get(text_hash(source, key), 1)

    def is_repeated_furniture(self, source: str, text: str, key: str) -> bool:
        """A line recurring verbatim across many articles of one source is page furniture."""
        n_words = len(text.split())
        return self._may_repeat(text, n_words) and self._repeated(
            source, self.articles_with(source, key)
        )

    def _may_repeat(self, text: str, n_words: int) -> bool:
        """Whether a line of ``n_words`` words may be repeated furniture (needs no counts)."""
        rep = self.config.repetition
        return (
            rep.enabled
            and n_words <= rep.max_words
            and _may_be_repeated_furniture(text, n_words, self.config.content_min_words)
        )

    def _repeated(self, source: str, count: int) -> bool:
        rep = self.config.repetition
        share = count / max(self.source_articles_.get(source, 1), 1)
        return count >= rep.min_articles and share >= rep.min_share

    def is_other_title(self, source: str, key: str, own_title_key: str) -> bool:
        """``key`` equals or near-equals the title of another observed article of ``source``."""
        own_loose = loose_title_key(own_title_key)
        return self._other_title(source, key, text_hash(source, key), own_title_key, own_loose)

    def _other_title(self, source: str, key: str, h: int, own_key: str, own_loose: str) -> bool:
        """``is_other_title`` given ``h = text_hash(source, key)`` (the paragraph's count key)."""
        cfg = self.config.related_titles
        if not cfg.enabled or key == own_key:
            return False
        if not MIN_TITLE_WORDS <= len(key.split()) <= cfg.max_words:
            return False
        if self._has_title(h):
            return True
        loose = loose_title_key(key)
        return bool(loose) and loose != own_loose and self._has_title(text_hash(source, "~", loose))

    def _has_title(self, h: int) -> bool:
        # bisect on an array of Python-comparable ints: a scalar np.searchsorted costs ~5x more.
        titles = self.__dict__.get("_title_list")
        if titles is None:
            titles = self._title_list = array("Q", self.title_hashes_.tobytes())
        i = bisect_left(titles, h)
        return i < len(titles) and titles[i] == h

    # ------------------------------------------------------------ pass 2
    def label(
        self, article: Article, inputs: list[ParagraphInput] | None = None
    ) -> list[WeakLabel]:
        """One :class:`WeakLabel` per paragraph of ``article.paragraphs`` (empty ones included).

        ``inputs``: ``boilerplate_inputs(article, rules)`` when the caller already has them (the
        dataset builder computes them for its rows), computed with the same rules as this labeler;
        else the fields the labeler reads are computed (``training.dataset.label_inputs``).
        """
        return self.label_many([article], [inputs])[0]

    def label_many(
        self, articles: list[Article], inputs: list[list[ParagraphInput] | None]
    ) -> list[list[WeakLabel]]:
        """``[label(a, i) for a, i in zip(articles, inputs)]``; the line keys of all the articles
        are computed in one ``match_keys`` call (its cost is per character, not per call)."""
        gold = [self.config.use_gold and art.labels is not None for art in articles]
        if not all(gold) and not hasattr(self, "repeat_counts_"):
            raise RuntimeError("WeakLabeler.label() called before observe()/finalize()")
        inputs = [
            None
            if is_gold
            else given
            if given is not None
            else label_inputs(art, self.rules_)  # the fields it reads, not the model's features
            for art, given, is_gold in zip(articles, inputs, gold, strict=True)
        ]
        keys = iter(match_keys([p.text for ps in inputs if ps for p in ps]))
        out = []
        for art, ps, is_gold in zip(articles, inputs, gold, strict=True):
            if is_gold:
                out.append(gold_labels(art))
            else:
                out.append(self._label_article(art, ps, [next(keys) for _ in ps]))
        return out

    def _label_article(
        self, article: Article, inputs: list[ParagraphInput], keys: list[str]
    ) -> list[WeakLabel]:
        out = [WeakLabel(None, "empty") for _ in article.paragraphs]
        n_words = [len(p.text.split()) for p in inputs]  # once per paragraph, read by every test
        view = self._view(article, inputs, n_words)
        for k, p in enumerate(inputs):
            hit = self._rule_by_name[p.rule] if p.rule else None
            out[p.index] = self._label_one(p, k, n_words[k], keys[k], view, hit)
        return out

    def _view(
        self, article: Article, inputs: list[ParagraphInput], n_words: list[int]
    ) -> _ArticleView:
        min_words = self.config.content_min_words
        story = [
            k
            for k, p in enumerate(inputs)
            if p.rule is None and n_words[k] >= min_words and not p.features["related_teaser"]
        ]
        author = article.extra.get("author")
        title_key = paragraph_key(article.title or "")
        return _ArticleView(
            source=article.source or "",
            title_key=title_key,
            loose_title_key=loose_title_key(title_key),
            author_key=paragraph_key(author) if isinstance(author, str) else "",
            lead_end=story[0] if story else len(inputs),
            tail_start=story[-1] if story else -1,
            related_block=related_block_flags(inputs),
        )

    def _label_one(
        self,
        p: ParagraphInput,
        k: int,
        n_words: int,
        key: str,
        view: _ArticleView,
        hit: FurnitureRule | None,
    ) -> WeakLabel:
        if hit is not None:
            in_body = view.lead_end < k < view.tail_start
            edge_only = hit.kind in EDGE_ONLY_KINDS and hit.name not in LABELLED_CREDIT_RULES
            if edge_only and in_body:
                return WeakLabel(None, "abstain")
            return WeakLabel("boilerplate", f"rule:{hit.name}", hit.kind)
        if key == view.title_key:
            # The scraped headline repeated above the story is story text.
            at_top = k <= view.lead_end
            return WeakLabel("content", "content:title") if at_top else WeakLabel(None, "abstain")
        if view.author_key and key == view.author_key and len(key.split()) <= MAX_BYLINE_WORDS:
            return WeakLabel("boilerplate", "byline", "credit")
        # One hash of the line serves both lookups: the repetition counts and the title index
        # are keyed by the same text_hash(source, key).
        h = text_hash(view.source, key)
        count = self.repeat_counts_.get(h, 1)  # distinct observed articles carrying this line
        if self._may_repeat(p.text, n_words) and self._repeated(view.source, count):
            return WeakLabel("boilerplate", "repetition", "other")
        if self._other_title(view.source, key, h, view.title_key, view.loose_title_key):
            return WeakLabel("boilerplate", "related_title", "related")
        if view.related_block[k]:
            return WeakLabel("boilerplate", "related_block", "related")
        if p.features["related_teaser"]:
            return WeakLabel("boilerplate", "related_teaser", "related")
        return self._content_or_abstain(p.text, n_words, count)

    def _content_or_abstain(self, text: str, n_words: int, count: int) -> WeakLabel:
        """Story-like text with no furniture evidence is content; short lines stay unlabeled."""
        if count > 1:
            # Seen in another article too: a teaser or a re-run paragraph, not safe either way.
            return WeakLabel(None, "abstain")
        if n_words >= self.config.content_min_words:
            return WeakLabel("content", "content:long")
        if n_words >= MIN_SENTENCE_WORDS and _SENTENCE_END.search(text.rstrip()):
            return WeakLabel("content", "content:sentence")
        return WeakLabel(None, "abstain")


def _may_be_repeated_furniture(text: str, n_words: int, content_min_words: int) -> bool:
    """Recurring lines that are still story text: subheadings, sign-offs, repeated sentences."""
    # A long line repeated across articles is a re-run story paragraph or a teaser of another
    # article; neither is safe to call furniture without a rule saying so. (Tested first: it is
    # the cheap test, and the answer is the same in any order.)
    if n_words >= content_min_words:
        return False
    return not (text.rstrip().endswith((":", "：")) or _CLOSING_WORDS.search(text))


def _is_bare_header(p: ParagraphInput) -> bool:
    """'اقرأ أيضاً:' on its own line opens a list; 'للمزيد: <headline>' is a single link."""
    return bool(p.features["rule_opens_block"]) and len(p.text.split()) <= BARE_HEADER_WORDS


def _is_listed_headline(p: ParagraphInput) -> bool:
    text = p.text.rstrip()
    return (
        p.features["headline_like"] == 1.0
        and len(text.split()) >= MIN_TITLE_WORDS
        and not text.endswith((":", "："))
        and not _STORY_OPENING.match(text)
    )


def related_block_flags(inputs: list[ParagraphInput]) -> list[bool]:
    """Which paragraphs are headlines listed under a bare "read also" / "related" header."""
    flags = [False] * len(inputs)
    is_open, run = False, 0
    for k, p in enumerate(inputs):
        if p.rule is not None:
            # Another related line (a link trailer) keeps a list going; any other furniture ends it.
            is_open = _is_bare_header(p) or (is_open and p.rule_kind == "related")
            run = 0
            continue
        if is_open and run < MAX_BLOCK_HEADLINES and _is_listed_headline(p):
            flags[k], run = True, run + 1
        else:
            is_open = False
    return flags


def gold_labels(article: Article) -> list[WeakLabel]:
    """The article's hand labels, passed through with provenance ``gold``."""
    kinds = article.extra.get("kinds") or [None] * len(article.paragraphs)
    out = []
    for para, label, kind in zip(article.paragraphs, article.labels or [], kinds, strict=False):
        if label is None and is_empty_paragraph(para):
            out.append(WeakLabel(None, "empty"))
        else:
            out.append(WeakLabel(label, "gold", kind if label == "boilerplate" else None))
    return out
