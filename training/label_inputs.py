"""The paragraph inputs the weak labeler reads, for articles that need labels but no rows.

The weak labeler reads five fields of ``inference.preprocess.boilerplate_inputs``: each non-empty
paragraph's index, normalized text, furniture rule hit (name, kind, ``rule_opens_block``) and its
``headline_like`` shape feature. For an article whose paragraphs become boilerplate rows the
builder has the full inputs anyway; for one that only needs labels (a topic article whose
furniture is removed) computing the ~40 model features of every paragraph is two thirds of the
cost, so :func:`label_inputs` computes these five, with the same functions and the same formula
(``tests/test_weak_labels.py`` checks they equal ``boilerplate_inputs``' fields).
"""

from __future__ import annotations

from inference.furniture import FurnitureRules
from inference.normalize import NORMALIZER_VERSION, normalize
from inference.preprocess import HEADLINE_MAX_WORDS, ParagraphInput, is_empty_paragraph
from inference.schema import Article

# The fields of ParagraphInput.features the weak labeler reads.
LABEL_FEATURES = ("headline_like", "rule_opens_block")


def label_inputs(
    article: Article, rules: FurnitureRules, normalizer_version: str = NORMALIZER_VERSION
) -> list[ParagraphInput]:
    """``boilerplate_inputs(article, rules)`` restricted to what the weak labeler reads
    (neighbour texts empty, ``features`` only :data:`LABEL_FEATURES`)."""
    out = []
    for i, paragraph in enumerate(article.paragraphs):
        if is_empty_paragraph(paragraph):
            continue
        text = normalize(paragraph, normalizer_version)
        n_words = len(text.split())
        hit = rules.match(text, n_words)
        features = {
            # inference.preprocess._shape's "headline_like"
            "headline_like": float(
                n_words <= HEADLINE_MAX_WORDS and not text.rstrip().endswith(".")
            ),
            "rule_opens_block": float(bool(hit and hit.opens_block)),
        }
        out.append(
            ParagraphInput(
                article_id=article.id,
                index=i,
                text=text,
                prev_text="",
                next_text="",
                rule=hit.name if hit else None,
                rule_kind=hit.kind if hit else None,
                features=features,
            )
        )
    return out
