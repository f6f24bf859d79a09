"""Where a paragraph sits in the page's layout: related-headline blocks and the teasers inlined after them.

Both the boilerplate model's features (``inference.text.preprocess.boilerplate_inputs``) and the
weak labeler (``training.dataset.weak_labels``, through the same features) read these flags, so the
structure is computed once, one way, at training and at serving time.

A scraped page often ends with the site's trailer: the story's credit, a "read also" header with
another story's headline *and its first paragraph*, an app promo, a related-articles list. That
inlined paragraph is a long, well-formed news sentence: by shape alone it is story text. What gives
it away is its place: it follows a related block that itself opens after furniture (the story had
already ended), more furniture follows it, and no story paragraph comes after it. A "read also"
block in the middle of an article is different: the story resumes after it and goes on, or
the block follows a story paragraph. Measured on the real corpora in ``../shared/data`` (SaudiNewsNet,
ANT multi-source and JawharaFM, the gold dev set): 16 paragraphs follow a related block and every one
is the story resuming; none of them meets these conditions.
"""

from __future__ import annotations

# Related headlines are short and carry no sentence-final period; longer, a line is prose again.
HEADLINE_MAX_WORDS = 22
# A paragraph this long with no furniture evidence reads as story text (the weak labeler's
# ``content_min_words`` default); a teaser is never followed by one.
STORY_MIN_WORDS = 12
# An inlined teaser is a paragraph or two of the other story; a longer run is the story resuming.
TEASER_MAX_PARAGRAPHS = 3


def is_headline_like(text: str, n_words: int) -> bool:
    """Short, and not ending in a period: the shape of a linked headline."""
    return n_words <= HEADLINE_MAX_WORDS and not text.rstrip().endswith(".")


def related_block_flags(
    rule_kinds: list[str | None], opens_block: list[bool], headline_like: list[bool]
) -> list[bool]:
    """Which paragraphs are headlines listed under a block-opening header ("اقرأ أيضاً:").

    ``rule_kinds[k]``: the kind of paragraph ``k``'s furniture rule hit, None without one. A block
    continues while lines stay headline-like with no rule hit, and across another "related" rule
    hit (a link trailer); any other rule hit ends it unless it opens a block itself.
    """
    flags = [False] * len(rule_kinds)
    open_ = False
    for k, (kind, opens, headline) in enumerate(
        zip(rule_kinds, opens_block, headline_like, strict=True)
    ):
        if kind is not None:
            open_ = opens or (open_ and kind == "related")
        else:
            flags[k] = open_ = open_ and headline
    return flags


def teaser_flags(
    has_rule: list[bool], opens_block: list[bool], in_block: list[bool], n_words: list[int]
) -> list[bool]:
    """Paragraphs of another story inlined after a related block in the page's trailer.

    A run of paragraphs (no rule hit, outside any block) is a teaser when: it starts right after a
    related block or its header; the block's header follows furniture (a rule hit or another
    block), not story; the run is at most ``TEASER_MAX_PARAGRAPHS`` long; furniture follows it
    directly; and no story-like paragraph (``STORY_MIN_WORDS``+ words, no rule, no block) follows.
    """
    n = len(has_rule)
    flags = [False] * n
    story_after = _story_after(has_rule, in_block, n_words)
    k = 1
    while k < n:
        if has_rule[k] or in_block[k] or not (in_block[k - 1] or opens_block[k - 1]):
            k += 1
            continue
        end = k  # the run's last paragraph
        while end + 1 < n and not has_rule[end + 1] and not in_block[end + 1]:
            end += 1
        header = _block_header(opens_block, k - 1)
        if (
            header > 0
            and (has_rule[header - 1] or in_block[header - 1])
            and end - k < TEASER_MAX_PARAGRAPHS
            and end + 1 < n  # furniture follows (a paragraph after the run has a rule hit)
            and not story_after[end]
        ):
            flags[k : end + 1] = [True] * (end - k + 1)
        k = end + 1
    return flags


def _story_after(has_rule: list[bool], in_block: list[bool], n_words: list[int]) -> list[bool]:
    """``out[k]``: a story-like paragraph comes somewhere after paragraph ``k``."""
    out = [False] * len(has_rule)
    seen = False
    for k in range(len(has_rule) - 1, -1, -1):
        out[k] = seen
        seen = seen or (not has_rule[k] and not in_block[k] and n_words[k] >= STORY_MIN_WORDS)
    return out


def _block_header(opens_block: list[bool], k: int) -> int:
    """Index of the header that opened the block paragraph ``k`` belongs to (-1 if none)."""
    while k >= 0 and not opens_block[k]:
        k -= 1
    return k
