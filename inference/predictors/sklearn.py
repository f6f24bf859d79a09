"""sklearn models in bundles: the row -> DataFrame mapping and the predictor.

``rows_to_frame`` is the one place that turns predictor rows (``inference.text.preprocess`` *_row
dicts, the same keys as dataset columns) into the DataFrame an sklearn pipeline consumes; the
trainer calls it too, so training and serving see identical columns. Stance pair features are
computed here from the two normalized strings.

Loading never unpickles: ``model.skops`` goes through ``inference.predictors.skops_io`` (types
checked against an explicit allow-list before skops constructs anything).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from inference.predictors.skops_io import (  # noqa: F401  (re-exported: the bundle API)
    UnsafeModelError,
    _vectorizers,
    load_skops,
    save_skops,
    skops_types,
)
from inference.text.ngram_counts import install as install_fast_counts
from inference.text.normalize import normalize
from inference.text.preprocess import FEATURE_NAMES

MODEL_FILE = "model.skops"

# Words that flip or deny a statement. Stored raw; compared after the khabar normalizer, so
# spelling variants (hamza, alef maqsura) collapse the same way the texts do.
_NEGATION_WORDS = (
    "لا",
    "لم",
    "لن",
    "ليس",
    "ليست",
    "لست",
    "ليسوا",
    "غير",
    "عدم",
    "بلا",
    "دون",
    "ما",
    "مش",
    "مو",
    "ولا",
    "ابدا",
)
_DENIAL_WORDS = (
    "نفى",
    "ينفي",
    "تنفي",
    "نفت",
    "نفي",
    "ينفى",
    "كذب",
    "تكذيب",
    "يكذب",
    "كذبت",
    "أنكر",
    "ينكر",
    "شائعة",
    "شائعات",
    "إشاعة",
    "إشاعات",
    "مزاعم",
    "زعم",
    "مفبرك",
    "مفبركة",
    "عار",
    "خطأ",
    "رفض",
    "يرفض",
    "ترفض",
    "دحض",
    "يدحض",
)
# Proclitics that attach to a negation word without changing it ("ولم", "فلا", "بعدم").
_PROCLITICS = ("و", "ف", "ب", "ل")
_DIGITS = re.compile(r"\d+")

STANCE_FEATURE_NAMES: tuple[str, ...] = (
    "word_jaccard",
    "char3_jaccard",
    "target_coverage",
    "len_ratio",
    "target_words_log",
    "text_words_log",
    "target_negation",
    "text_negation",
    "negation_mismatch",
    "text_denial",
    "digits_mismatch",
)


# ---------------------------------------------------------------- stance pair features
@lru_cache(maxsize=1)
def _word_sets() -> tuple[frozenset[str], frozenset[str]]:
    return (
        frozenset(normalize(w) for w in _NEGATION_WORDS),
        frozenset(normalize(w) for w in _DENIAL_WORDS),
    )


@lru_cache(maxsize=1)
def _word_lookups() -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    """Per word list: (the words, the words behind one proclitic) for ``_has_any``."""
    return tuple((vocab, _with_proclitic(vocab)) for vocab in _word_sets())


def _with_proclitic(vocab: frozenset[str]) -> frozenset[str]:
    # A token "p" + w with p a (one-letter) proclitic and w a listed word of 2+ letters: exactly the
    # tokens whose tok[1:] is in ``vocab`` with len(tok) > 2 and tok[0] a proclitic.
    return frozenset(p + w for w in vocab if len(w) >= 2 for p in _PROCLITICS)


def _has_any(
    tokens: set[str], vocab: frozenset[str], prefixed: frozenset[str] | None = None
) -> bool:
    """Whether a token is a listed word, bare or behind a proclitic ("ولم", "فلا", "بعدم").

    Set operations in C against the small lists: a story has hundreds of tokens.
    """
    if prefixed is None:
        prefixed = _with_proclitic(vocab)
    return not vocab.isdisjoint(tokens) or not prefixed.isdisjoint(tokens)


def _jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def _char3_keys(text: str, tokens: list[str] | None = None) -> np.ndarray:
    """The 3-character substrings of the whitespace-collapsed text (repeats included), as code
    point triples packed in one integer each. ``tokens``: ``text.split()`` when the caller has it."""
    compact = " ".join(text.split() if tokens is None else tokens)
    if len(compact) < 3:
        return np.zeros(0, dtype=np.uint64)
    cp = np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cp = cp.astype(np.uint64)  # code points are < 2**21: three fit in 63 bits
    return (cp[:-2] << np.uint64(42)) | (cp[1:-1] << np.uint64(21)) | cp[2:]


def _char3(text: str, tokens: list[str] | None = None) -> np.ndarray:
    """The distinct 3-character substrings (hashed in C; a set of Python strings cost ~0.3 ms per
    story)."""
    return pd.unique(_char3_keys(text, tokens))


def _char3_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = int(np.isin(a, b, assume_unique=True).sum())
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


def _char3_jaccard_keys(a: np.ndarray, keys: np.ndarray) -> float:
    """``_char3_jaccard(a, distinct keys)`` from the text's keys with repeats, in one hashing pass:
    ``pd.factorize`` of ``a`` (distinct) then the keys numbers each distinct value by first
    appearance, so codes below ``len(a)`` are shared with ``a`` and the largest code + 1 is the size
    of the union."""
    if not len(keys):
        return _char3_jaccard(a, keys)
    codes, _ = pd.factorize(np.concatenate([a, keys]))
    text_codes = codes[len(a) :]
    shared = np.zeros(len(a) + 1, dtype=bool)
    shared[np.minimum(text_codes, len(a))] = True
    inter = int(shared[: len(a)].sum())
    union = int(codes.max()) + 1
    return inter / union if union else 0.0


def _numbers(text: str) -> set[int]:
    # int() reads Arabic-Indic digits too, so "٢٠" and "20" compare equal.
    return {int(d) for d in _DIGITS.findall(text) if len(d) < 19}


@lru_cache(maxsize=256)
def _target_side(target: str) -> tuple:
    """What the pair features need from the target: the same few targets recur on every row."""
    tokens = target.split()
    return len(tokens), frozenset(tokens), _char3(target, tokens), frozenset(_numbers(target))


def stance_pair_features(target: str, text: str) -> list[float]:
    """Overlap, length, negation and number agreement between a claim/target and a text."""
    (negation, negation_p), (denial, denial_p) = _word_lookups()
    n_t, t_set, t_char3, t_num = _target_side(target)
    x_tokens = text.split()
    x_set = set(x_tokens)
    t_neg, x_neg = _has_any(t_set, negation, negation_p), _has_any(x_set, negation, negation_p)
    x_num = _numbers(text)
    n_x = len(x_tokens)
    return [
        _jaccard(t_set, x_set),
        _char3_jaccard_keys(t_char3, _char3_keys(text, x_tokens)),
        len(t_set & x_set) / len(t_set) if t_set else 0.0,
        min(n_t, n_x) / max(n_t, n_x) if max(n_t, n_x) else 0.0,
        math.log1p(n_t),
        math.log1p(n_x),
        float(t_neg),
        float(x_neg),
        float(t_neg != x_neg),
        float(_has_any(x_set, denial, denial_p)),
        # Both sides cite numbers and they disagree: a classic "disagree" signal in claim pairs.
        float(bool(t_num) and bool(x_num) and not (t_num & x_num)),
    ]


# ---------------------------------------------------------------- rows -> DataFrame
def _texts(rows: list[dict], key: str) -> list[str]:
    return [str(row.get(key) or "") for row in rows]


def _sources(rows: list[dict]) -> list[str]:
    """Outlet names as the topic source feature sees them: case and spacing do not matter, and a
    row without one (older datasets, records without a source) is the empty, unknown outlet."""
    return [str(row.get("source") or "").strip().casefold() for row in rows]


def _text_column(texts: list[str]) -> pd.Series:
    # Plain Python strings (object dtype), not pandas' Arrow-backed default: the vectorizers get the
    # very same str objects back (no conversion either way, and their cached hashes make the token
    # caches' lookups cheap). The values, hence the features, are the same.
    return pd.Series(texts, dtype=object)


def _boilerplate_frame(rows: list[dict]) -> pd.DataFrame:
    feats = np.asarray([row["features"] for row in rows], dtype=np.float64)
    if feats.ndim != 2 or feats.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"boilerplate rows need {len(FEATURE_NAMES)} features each "
            f"(inference.text.preprocess.FEATURE_NAMES), got shape {feats.shape}"
        )
    frame = pd.DataFrame(feats, columns=list(FEATURE_NAMES))
    for key in ("text", "prev_text", "next_text"):
        frame[key] = _text_column(_texts(rows, key))
    return frame


def _stance_frame(rows: list[dict]) -> pd.DataFrame:
    targets, texts = _texts(rows, "target"), _texts(rows, "text")
    pair = [stance_pair_features(t, x) for t, x in zip(targets, texts, strict=True)]
    frame = pd.DataFrame(
        np.asarray(pair, dtype=np.float64).reshape(len(rows), len(STANCE_FEATURE_NAMES)),
        columns=list(STANCE_FEATURE_NAMES),
    )
    frame["target"] = _text_column(targets)
    frame["text"] = _text_column(texts)
    return frame


def rows_to_frame(task: str, rows: list[dict]) -> pd.DataFrame:
    """Predictor rows -> the DataFrame every khabar sklearn pipeline of ``task`` consumes."""
    if task == "boilerplate":
        return _boilerplate_frame(rows)
    if task == "topic":
        return pd.DataFrame({"text": _text_column(_texts(rows, "text")), "source": _sources(rows)})
    if task == "stance":
        return _stance_frame(rows)
    raise ValueError(f"unknown task {task!r} (expected boilerplate, topic or stance)")


# ---------------------------------------------------------------- predictor
def _softmax(scores: np.ndarray) -> np.ndarray:
    if scores.ndim == 1:  # binary decision_function: one margin for classes_[1]
        scores = np.column_stack([-scores, scores])
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class SklearnPredictor:
    """An sklearn pipeline over ``rows_to_frame`` columns; scores in the bundle's label order."""

    def __init__(self, model: Any, task: str, labels: list[str]):
        self.model = model
        self.task = task
        self.labels = list(labels)
        classes = [str(c) for c in getattr(model, "classes_", [])]
        unknown = sorted(set(classes) - set(self.labels))
        if not classes or unknown:
            raise ValueError(
                f"model classes {classes} do not match the bundle labels {self.labels}"
            )
        # Column j of the model output goes to column _columns[j] of the bundle output.
        self._columns = np.array([self.labels.index(c) for c in classes])

    @classmethod
    def load(cls, directory: str | Path, meta: dict) -> SklearnPredictor:
        path = Path(directory) / MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(f"{directory}: sklearn bundle without {MODEL_FILE}")
        model = load_skops(path)
        # Same counts as sklearn's own Python loop, computed much faster
        # (inference.text.ngram_counts).
        for vec in _vectorizers(model):
            install_fast_counts(vec)
        return cls(model, meta["task"], meta["labels"])

    @property
    def feature_columns(self) -> frozenset[str] | None:
        """The ``FEATURE_NAMES`` columns the pipeline reads; None when it cannot tell (not a
        ColumnTransformer pipeline), which callers read as "all of them"."""
        steps = getattr(self.model, "named_steps", {})
        features = steps.get("features") if isinstance(steps, dict) else None
        blocks = getattr(features, "transformers_", None)
        if blocks is None:
            return None
        read: set[str] = set()
        for _name, transformer, columns in blocks:
            if isinstance(transformer, str) and transformer == "drop":  # the unread remainder
                continue
            read.update([columns] if isinstance(columns, str) else list(columns))
        return frozenset(read) & frozenset(FEATURE_NAMES)

    def _model_scores(self, frame: pd.DataFrame) -> np.ndarray:
        if hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict_proba(frame), dtype=np.float64)
        # An uncalibrated margin classifier (LinearSVC): softmax keeps the argmax, gives a 0-1 score.
        return _softmax(np.asarray(self.model.decision_function(frame), dtype=np.float64))

    def predict_proba(self, rows: list[dict]) -> np.ndarray:
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        if not rows:
            return out
        frame = rows_to_frame(self.task, rows)
        # Threaded BLAS only adds contention for sparse linear models (see
        # training.fit.sklearn_models).
        with threadpool_limits(limits=1, user_api="blas"):
            out[:, self._columns] = self._model_scores(frame)
        return out
