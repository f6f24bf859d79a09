"""Weak paragraph labels for the boilerplate task, each with the evidence (provenance) behind it.

Gold boilerplate labels are rare, so the dataset builder labels the paragraphs of unlabeled scraped
articles from several independent sources of evidence, in two passes over the archive:

1. ``observe`` every article (streaming): count, per source, how many distinct articles carry each
   normalized paragraph, and index every title. Only 64-bit hashes are kept, and a Bloom filter
   keeps paragraphs seen once (the vast majority) out of the counter, so memory stays small on
   archives of millions of articles.
2. ``finalize`` freezes the statistics; ``label`` then gives every paragraph of an article a
   :class:`WeakLabel`, trying in order:

   - furniture phrase rules (``inference/rules/furniture_v1.json``) -> ``rule:<name>``; credit
     and dateline rules only count at the edges of the story, outside its body;
   - the article's own title repeated at its top -> ``content:title`` (story, not a link);
   - a line equal to the article's author/byline field -> ``byline``;
   - cross-article repetition within one source -> ``repetition``;
   - a line equal or near-equal to another article's title (same source) -> ``related_title``, or
     a headline listed under a bare "read also" header -> ``related_block``;
   - story-like text with no furniture evidence -> ``content:long`` (>= ``content_min_words``
     words) or ``content:sentence`` (a shorter complete statement);
   - otherwise ``abstain``: the paragraph is not a training example.

Paragraph features come from ``inference.preprocess.boilerplate_inputs``, so the weak labeler and
the model read the same normalized text and rule hits.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

from inference.furniture import FurnitureRule, FurnitureRules, default_rules
from inference.normalize import normalize
from inference.preprocess import ParagraphInput, boilerplate_inputs, is_empty_paragraph
from inference.schema import Article
from training.config import WeakLabelConfig

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
# A title shorter than this is too generic ("الرياض", "كلمة أخيرة") to identify a related link.
MIN_TITLE_WORDS = 3
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
_PUNCT_RUN = re.compile(r"[\W_]+")
# Near-equal title matching ignores these particles and a leading definite article.
_PARTICLES = frozenset("في من علي الي عن مع و او ثم ب ل ك ان قد ما لا هل".split())
_DEFINITE = re.compile(r"^(وال|بال|فال|كال|لل|ال)(?=\w{2})")
MIN_LOOSE_TITLE_WORDS = 4
# A statement this long (ending in . or !) is story text; a question may be a linked headline.
MIN_SENTENCE_WORDS = 6
_SENTENCE_END = re.compile(r"[.!]$")
# A tatweel standing alone between spaces is a dash ("الرياضي ـ جدة"), not letter stretching.
_TATWEEL_DASH = re.compile(r"(?<=\s)\u0640+(?=\s)|^\s*\u0640+(?=\s)")
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


def text_hash(*parts: str) -> int:
    """A stable 64-bit hash (Python's ``hash`` changes between processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def match_key(normalized: str) -> str:
    """Normalized text without punctuation, so '...المزيد' and '....المزيد' are one line."""
    key = _PUNCT_RUN.sub(" ", normalized).strip().lower()
    return key or normalized.strip()


def loose_title_key(key: str) -> str:
    """A headline without particles and the article 'ال', so near-equal wordings of one headline
    ("بين الفرقاء في ليبيا" / "بين فرقاء ليبيا") meet; "" when too little is left to be specific."""
    words = [_DEFINITE.sub("", w) for w in key.split() if w not in _PARTICLES]
    return " ".join(words) if len(words) >= MIN_LOOSE_TITLE_WORDS else ""


class BloomFilter:
    """A fixed-size set of 64-bit hashes with rare false positives and no false negatives."""

    def __init__(self, bits_log2: int = 27, n_hashes: int = 4):
        self._mask = (1 << bits_log2) - 1
        self._bits = bytearray((1 << bits_log2) // 8)
        self._k = n_hashes

    def _positions(self, h: int) -> list[int]:
        h1, h2 = h & 0xFFFFFFFF, (h >> 32) | 1
        return [(h1 + i * h2) & self._mask for i in range(self._k)]

    def add(self, h: int) -> bool:
        """Insert ``h``; True when it was (probably) already present."""
        present = True
        for pos in self._positions(h):
            byte, bit = pos >> 3, 1 << (pos & 7)
            if not self._bits[byte] & bit:
                present = False
                self._bits[byte] |= bit
        return present


@dataclass
class _ArticleView:
    """What ``label`` needs about one article besides its paragraphs."""

    source: str
    title_key: str
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
    def _init_stats(self) -> None:
        self._rules = self.rules or (
            FurnitureRules.from_dicts(self.config.rules) if self.config.rules else default_rules()
        )
        self._seen_articles = BloomFilter(bits_log2=26, n_hashes=5)
        self._seen_paragraphs = BloomFilter(bits_log2=28, n_hashes=4)
        self._repeat_counts: dict[int, int] = {}
        self._source_articles: Counter[str] = Counter()
        self._titles = array("Q")

    def _ensure_counting(self) -> None:
        if hasattr(self, "repeat_counts_"):
            raise RuntimeError("WeakLabeler.observe() called after finalize()")
        if not hasattr(self, "_seen_paragraphs"):
            self._init_stats()

    def observe(self, article: Article) -> None:
        """Count ``article``'s paragraphs and index its title (pass 1, streaming)."""
        self._ensure_counting()
        source = article.source or ""
        # The same story fetched twice must not count as two articles repeating its lines.
        if self._seen_articles.add(text_hash(source, article.title or "", article.text)):
            return
        self._source_articles[source] += 1
        title_key = match_key(normalize(article.title or ""))
        if len(title_key.split()) >= MIN_TITLE_WORDS:
            self._titles.append(text_hash(source, title_key))
            loose = loose_title_key(title_key)
            if loose:
                self._titles.append(text_hash(source, "~", loose))
        keys = {match_key(normalize(p)) for p in article.paragraphs if not is_empty_paragraph(p)}
        for key in keys:
            h = text_hash(source, key)
            if self._seen_paragraphs.add(h):
                # Seen before: start exact counting at 2 (this article and the earlier one).
                self._repeat_counts[h] = self._repeat_counts.get(h, 1) + 1

    def finalize(self) -> None:
        """Freeze the pass-1 statistics into the fitted attributes (names ending in ``_``)."""
        self._ensure_counting()
        self.rules_ = self._rules
        self._rule_by_name = {rule.name: rule for rule in self.rules_.rules}
        self.repeat_counts_ = self._repeat_counts
        self.source_articles_ = dict(self._source_articles)
        self.title_hashes_ = np.unique(np.frombuffer(self._titles, dtype=np.uint64))
        # The filters are only needed while counting; they are most of the memory.
        del self._seen_articles, self._seen_paragraphs, self._titles

    # ------------------------------------------------------------ statistics lookups
    def articles_with(self, source: str, key: str) -> int:
        """How many distinct observed articles of ``source`` carry the paragraph ``key`` (>= 1)."""
        return self.repeat_counts_.get(text_hash(source, key), 1)

    def is_repeated_furniture(self, source: str, text: str, key: str) -> bool:
        """A line recurring verbatim across many articles of one source is page furniture."""
        rep = self.config.repetition
        n_words = len(text.split())
        if (
            not rep.enabled
            or n_words > rep.max_words
            or not _may_be_repeated_furniture(text, n_words, self.config.content_min_words)
        ):
            return False
        count = self.articles_with(source, key)
        share = count / max(self.source_articles_.get(source, 1), 1)
        return count >= rep.min_articles and share >= rep.min_share

    def is_other_title(self, source: str, key: str, own_title_key: str) -> bool:
        """``key`` equals or near-equals the title of another observed article of ``source``."""
        cfg = self.config.related_titles
        if not cfg.enabled or key == own_title_key:
            return False
        if not MIN_TITLE_WORDS <= len(key.split()) <= cfg.max_words:
            return False
        if self._has_title(text_hash(source, key)):
            return True
        loose = loose_title_key(key)
        return (
            bool(loose)
            and loose != loose_title_key(own_title_key)
            and self._has_title(text_hash(source, "~", loose))
        )

    def _has_title(self, h: int) -> bool:
        i = int(np.searchsorted(self.title_hashes_, np.uint64(h)))
        return bool(i < len(self.title_hashes_) and self.title_hashes_[i] == h)

    # ------------------------------------------------------------ pass 2
    def label(
        self, article: Article, inputs: list[ParagraphInput] | None = None
    ) -> list[WeakLabel]:
        """One :class:`WeakLabel` per paragraph of ``article.paragraphs`` (empty ones included).

        ``inputs``: ``boilerplate_inputs(article, rules)`` when the caller already has them (the
        dataset builder computes them for its rows), computed with the same rules as this labeler.
        """
        if self.config.use_gold and article.labels is not None:
            return gold_labels(article)
        if not hasattr(self, "repeat_counts_"):
            raise RuntimeError("WeakLabeler.label() called before observe()/finalize()")
        out = [WeakLabel(None, "empty") for _ in article.paragraphs]
        if inputs is None:
            inputs = boilerplate_inputs(article, self.rules_)
        view = self._view(article, inputs)
        for k, p in enumerate(inputs):
            hit = self._rule_by_name[p.rule] if p.rule else self._dash_variant_hit(article, p)
            out[p.index] = self._label_one(p, k, view, hit)
        return out

    def _dash_variant_hit(self, article: Article, p: ParagraphInput) -> FurnitureRule | None:
        """Rule hit once a standalone tatweel separator is read as the dash it stands for.

        "الرياضي ـ جدة" is a byline written with a tatweel as its dash; the normalizer deletes
        tatweel, which leaves "الرياضي جده" with nothing marking it as a byline.
        """
        raw = article.paragraphs[p.index]
        if not _TATWEEL_DASH.search(raw):
            return None
        return self.rules_.match(normalize(_TATWEEL_DASH.sub(" - ", raw)))

    def _is_story(self, p: ParagraphInput) -> bool:
        return p.rule is None and len(p.text.split()) >= self.config.content_min_words

    def _view(self, article: Article, inputs: list[ParagraphInput]) -> _ArticleView:
        story = [k for k, p in enumerate(inputs) if self._is_story(p)]
        author = article.extra.get("author")
        return _ArticleView(
            source=article.source or "",
            title_key=match_key(normalize(article.title or "")),
            author_key=match_key(normalize(author)) if isinstance(author, str) else "",
            lead_end=story[0] if story else len(inputs),
            tail_start=story[-1] if story else -1,
            related_block=related_block_flags(inputs),
        )

    def _label_one(
        self, p: ParagraphInput, k: int, view: _ArticleView, hit: FurnitureRule | None
    ) -> WeakLabel:
        key = match_key(p.text)
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
        if self.is_repeated_furniture(view.source, p.text, key):
            return WeakLabel("boilerplate", "repetition", "other")
        if self.is_other_title(view.source, key, view.title_key):
            return WeakLabel("boilerplate", "related_title", "related")
        if view.related_block[k]:
            return WeakLabel("boilerplate", "related_block", "related")
        return self._content_or_abstain(p.text, view.source, key)

    def _content_or_abstain(self, text: str, source: str, key: str) -> WeakLabel:
        """Story-like text with no furniture evidence is content; short lines stay unlabeled."""
        if self.articles_with(source, key) > 1:
            # Seen in another article too: a teaser or a re-run paragraph, not safe either way.
            return WeakLabel(None, "abstain")
        n_words = len(text.split())
        if n_words >= self.config.content_min_words:
            return WeakLabel("content", "content:long")
        if n_words >= MIN_SENTENCE_WORDS and _SENTENCE_END.search(text.rstrip()):
            return WeakLabel("content", "content:sentence")
        return WeakLabel(None, "abstain")


def _may_be_repeated_furniture(text: str, n_words: int, content_min_words: int) -> bool:
    """Recurring lines that are still story text: subheadings, sign-offs, repeated sentences."""
    if text.rstrip().endswith((":", "：")) or _CLOSING_WORDS.search(text):
        return False
    # A long line repeated across articles is a re-run story paragraph or a teaser of another
    # article; neither is safe to call furniture without a rule saying so.
    return n_words < content_min_words


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
