"""sklearn pipelines for the three tasks, built from standard estimators only.

Only stock sklearn types go into a pipeline (no custom transformers, no lambdas), so skops can save
and load it against the allow-list in ``inference.predictors.sklearn``. Every pipeline consumes the
DataFrame of ``inference.predictors.sklearn.rows_to_frame``:

- topic: word + char n-gram TF-IDF of the text (+ a weighted one-hot of the source, optional)
- stance: TF-IDF of the target, of the text, and scaled pair features (overlap, negation, numbers)
- boilerplate: TF-IDF of the paragraph, of its neighbours, and scaled shape/position/rule features
  (``in_related_block``, ``prev_rule_any``... carry the paragraph sequence)

followed by LogisticRegression, or LinearSVC (wrapped in CalibratedClassifierCV when
``calibrate``, so scores are probabilities).
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from inference.predictors.sklearn import STANCE_FEATURE_NAMES
from inference.text.cohesion import COHESION_FEATURES
from inference.text.preprocess import FEATURE_NAMES
from training.config import SklearnModel

log = logging.getLogger(__name__)

# Keep one-letter tokens (digits, abbreviations): sklearn's default pattern drops them.
TOKEN_PATTERN = r"(?u)\b\w+\b"
CALIBRATION_FOLDS = 3
# Neighbour text is a weaker signal than the paragraph itself: give it a smaller vocabulary.
CONTEXT_VOCAB_SHARE = 4
# Shape features the boilerplate model does NOT read. The weak labeler only calls a paragraph story
# when it is long or a complete sentence (content:long / content:sentence) and abstains on short
# story lines, so in the training data length and sentence shape separate the classes perfectly:
# a model given them learns "short = furniture" and drops crossheads, poem lines and short quotes
# (measured on boilerplate_gold_dev: furniture precision 0.46, content recall 0.92 with them;
# 0.96 / 0.998 without, same weak labels; see BENCHMARKS.md). Rule hits, position, ratios and the
# related-block features stay.
# title_jaccard / equals_title are left out too: on synthetic pages (training/dataset/
# synthetic_pages.py) overlap with the title separates host from inlined story so well that the
# model let it outweigh furniture rules ("link to this story: <its own title>" trailers were kept;
# leave-one-outlet-out, benchmarks/boilerplate_looo.py). The plain-paragraph cohesion features
# (inference.text.cohesion) carry the same signal without touching rule hits.
BOILERPLATE_EXCLUDED_FEATURES = frozenset(
    {
        "n_words_log",
        "n_chars_log",
        "is_short",
        "headline_like",
        "ends_sentence",
        "title_jaccard",
        "equals_title",
    }
)
BOILERPLATE_SHAPE_FEATURES = [f for f in FEATURE_NAMES if f not in BOILERPLATE_EXCLUDED_FEATURES]


def boilerplate_shape_features(cfg: SklearnModel) -> list[str]:
    """The scaled feature columns a boilerplate model reads (no cohesion ones for the fast model:
    the tagger then skips computing them, ``inference.tagger``)."""
    if cfg.page_cohesion:
        return list(BOILERPLATE_SHAPE_FEATURES)
    return [f for f in BOILERPLATE_SHAPE_FEATURES if f not in COHESION_FEATURES]


def _word_tfidf(cfg: SklearnModel, max_features: int | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="word",
        ngram_range=tuple(cfg.word_ngrams),
        token_pattern=TOKEN_PATTERN,
        min_df=cfg.min_df,
        max_features=max_features if max_features is not None else cfg.max_features,
        sublinear_tf=cfg.sublinear_tf,
        dtype=np.float32,
    )


def _char_tfidf(cfg: SklearnModel) -> TfidfVectorizer:
    # char_wb: n-grams inside word boundaries, robust to clitics and spelling variants in Arabic.
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=tuple(cfg.char_ngrams),
        min_df=cfg.min_df,
        max_features=cfg.max_features,
        sublinear_tf=cfg.sublinear_tf,
        dtype=np.float32,
    )


def _source_onehot() -> OneHotEncoder:
    # float32 like the TF-IDF blocks: one float64 block would make the whole matrix, and so the
    # fitted coefficients, float64 (twice the model size and the memory at tagging time).
    return OneHotEncoder(handle_unknown="ignore", dtype=np.float32)


def _text_blocks(cfg: SklearnModel, column: str, prefix: str) -> list[tuple]:
    blocks = [(f"{prefix}_word", _word_tfidf(cfg), column)]
    if cfg.char_ngrams is not None:
        blocks.append((f"{prefix}_char", _char_tfidf(cfg), column))
    return blocks


def _context_vocab(cfg: SklearnModel) -> int | None:
    return None if cfg.max_features is None else max(cfg.max_features // CONTEXT_VOCAB_SHARE, 1)


def feature_blocks(task: str, cfg: SklearnModel) -> list[tuple]:
    """The ColumnTransformer blocks (name, transformer, columns) for ``task``."""
    if task == "topic":
        blocks = _text_blocks(cfg, "text", "text")
        if cfg.source_weight:
            blocks.append(("source", _source_onehot(), ["source"]))
        return blocks
    if task == "stance":
        return [
            ("target_word", _word_tfidf(cfg), "target"),
            *_text_blocks(cfg, "text", "text"),
            ("pair", StandardScaler(), list(STANCE_FEATURE_NAMES)),
        ]
    if task == "boilerplate":
        return [
            *_text_blocks(cfg, "text", "text"),
            ("prev_word", _word_tfidf(cfg, _context_vocab(cfg)), "prev_text"),
            ("next_word", _word_tfidf(cfg, _context_vocab(cfg)), "next_text"),
            ("shape", StandardScaler(), boilerplate_shape_features(cfg)),
        ]
    raise ValueError(f"unknown task {task!r} (expected boilerplate, topic or stance)")


def _classifier(cfg: SklearnModel):
    if cfg.classifier == "logreg":
        return LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, max_iter=cfg.max_iter)
    svc = LinearSVC(C=cfg.C, class_weight=cfg.class_weight, max_iter=cfg.max_iter)
    if not cfg.calibrate:
        return svc
    return CalibratedClassifierCV(svc, method="sigmoid", cv=CALIBRATION_FOLDS)


def build_pipeline(task: str, model_cfg: SklearnModel) -> Pipeline:
    """An unfitted pipeline: ColumnTransformer of ``feature_blocks`` -> classifier."""
    blocks = feature_blocks(task, model_cfg)
    weights = {"source": model_cfg.source_weight} if any(b[0] == "source" for b in blocks) else None
    features = ColumnTransformer(blocks, sparse_threshold=1.0, transformer_weights=weights)
    return Pipeline([("features", features), ("clf", _classifier(model_cfg))])


def adapt_to_labels(pipeline: Pipeline, y: list[str]) -> Pipeline:
    """Fit calibration folds to the data: each fold needs every class at least once."""
    clf = pipeline.named_steps["clf"]
    if not isinstance(clf, CalibratedClassifierCV):
        return pipeline
    smallest = min(Counter(y).values())
    if smallest >= clf.cv:
        return pipeline
    if smallest >= 2:
        log.warning("smallest class has %d examples: calibrating with %d folds", smallest, smallest)
        clf.set_params(cv=smallest)
        return pipeline
    log.warning("a class has a single example: LinearSVC left uncalibrated (softmax of margins)")
    pipeline.set_params(clf=clf.estimator)
    return pipeline


def fit_pipeline(
    task: str, model_cfg: SklearnModel, frame, y: list[str], sample_weight=None
) -> Pipeline:
    """Build and fit the pipeline for ``task`` on a ``rows_to_frame`` DataFrame and string labels
    (``sample_weight``: one weight per row for the classifier, or None)."""
    if len(set(y)) < 2:
        raise ValueError(f"training data has a single class {sorted(set(y))}; need at least two")
    pipeline = adapt_to_labels(build_pipeline(task, model_cfg), y)
    # Sparse linear models gain nothing from threaded BLAS; on a busy machine its spinning threads
    # made lbfgs 20x slower. One BLAS thread keeps fitting fast and predictable.
    with threadpool_limits(limits=1, user_api="blas"):
        fit_params = {} if sample_weight is None else {"clf__sample_weight": sample_weight}
        return pipeline.fit(frame, np.asarray(y, dtype=object), **fit_params)
