"""The paragraph inputs the weak labeler reads, for articles that need labels but no rows.

The weak labeler reads these fields of ``inference.text.preprocess.boilerplate_inputs``: each
non-empty paragraph's index, normalized text, furniture rule hit (name, kind, ``rule_opens_block``)
and its ``headline_like`` and ``related_teaser`` features. For an article whose paragraphs become
boilerplate rows the builder has the full inputs anyway; for one that only needs labels (a topic
article whose furniture is removed) computing the ~40 model features of every paragraph is two
thirds of the cost, so :func:`label_inputs` computes these, with the same functions
(``tests/dataset/test_weak_labels.py`` checks they equal ``boilerplate_inputs``' fields).
"""

from __future__ import annotations

from inference.text.furniture import FurnitureRules
from inference.text.normalize import NORMALIZER_VERSION, normalize
from inference.text.page_structure import is_headline_like, related_block_flags, teaser_flags
from inference.text.preprocess import ParagraphInput, is_empty_paragraph
from inference.text.schema import Article

# The fields of ParagraphInput.features the weak labeler reads.
LABEL_FEATURES = ("headline_like", "rule_opens_block", "related_teaser")


def label_inputs(
    article: Article, rules: FurnitureRules, normalizer_version: str = NORMALIZER_VERSION
) -> list[ParagraphInput]:
    """``boilerplate_inputs(article, rules)`` restricted to what the weak labeler reads
    (neighbour texts empty, ``features`` only :data:`LABEL_FEATURES`)."""
    index = [i for i, p in enumerate(article.paragraphs) if not is_empty_paragraph(p)]
    texts = [normalize(article.paragraphs[i], normalizer_version) for i in index]
    n_words = [len(text.split()) for text in texts]
    hits = [rules.match(text, n) for text, n in zip(texts, n_words, strict=True)]
    headline = [is_headline_like(text, n) for text, n in zip(texts, n_words, strict=True)]
    opens = [bool(hit and hit.opens_block) for hit in hits]
    in_block = related_block_flags([hit.kind if hit else None for hit in hits], opens, headline)
    teaser = teaser_flags([hit is not None for hit in hits], opens, in_block, n_words)
    return [
        ParagraphInput(
            article_id=article.id,
            index=i,
            text=text,
            prev_text="",
            next_text="",
            rule=hit.name if hit else None,
            rule_kind=hit.kind if hit else None,
            features={
                "headline_like": float(headline[k]),
                "rule_opens_block": float(opens[k]),
                "related_teaser": float(teaser[k]),
            },
        )
        for k, (i, text, hit) in enumerate(zip(index, texts, hits, strict=True))
    ]
