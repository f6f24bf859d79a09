"""sklearn models in bundles: the row -> DataFrame mapping and safe loading of ``model.skops``.

``rows_to_frame`` is the one place that turns predictor rows (``inference.preprocess`` *_row dicts,
the same keys as dataset columns) into the DataFrame an sklearn pipeline consumes; the trainer calls
it too, so training and serving see identical columns. Stance pair features are computed here from
the two normalized strings.

Loading never unpickles: ``model.skops`` is checked node by node against an explicit allow-list of
sklearn / numpy / scipy (and plain builtin) types before skops constructs anything.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from inference.ngram_counts import install as install_fast_counts
from inference.normalize import normalize
from inference.preprocess import FEATURE_NAMES

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


class UnsafeModelError(ValueError):
    """A ``model.skops`` file that names a type outside the allow-list; it is never constructed."""


# ---------------------------------------------------------------- stance pair features
@lru_cache(maxsize=1)
def _word_sets() -> tuple[frozenset[str], frozenset[str]]:
    return (
        frozenset(normalize(w) for w in _NEGATION_WORDS),
        frozenset(normalize(w) for w in _DENIAL_WORDS),
    )


def _has_any(tokens: set[str], vocab: frozenset[str]) -> bool:
    # Set operations in C: a story has hundreds of tokens and is checked for two word lists.
    if not vocab.isdisjoint(tokens):
        return True
    stems = {tok[1:] for tok in tokens if len(tok) > 2 and tok[0] in _PROCLITICS}
    return not vocab.isdisjoint(stems)


def _jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def _char3(text: str) -> np.ndarray:
    """The distinct 3-character substrings of the whitespace-collapsed text, as code point triples
    packed in one integer each (hashed in C; a set of Python strings cost ~0.3 ms per story)."""
    compact = " ".join(text.split())
    if len(compact) < 3:
        return np.zeros(0, dtype=np.uint64)
    cp = np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cp = cp.astype(np.uint64)  # code points are < 2**21: three fit in 63 bits
    return pd.unique((cp[:-2] << np.uint64(42)) | (cp[1:-1] << np.uint64(21)) | cp[2:])


def _char3_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = int(np.isin(a, b, assume_unique=True).sum())
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


def _numbers(text: str) -> set[int]:
    # int() reads Arabic-Indic digits too, so "٢٠" and "20" compare equal.
    return {int(d) for d in _DIGITS.findall(text) if len(d) < 19}


def stance_pair_features(target: str, text: str) -> list[float]:
    """Overlap, length, negation and number agreement between a claim/target and a text."""
    negation, denial = _word_sets()
    t_tokens, x_tokens = target.split(), text.split()
    t_set, x_set = set(t_tokens), set(x_tokens)
    t_neg, x_neg = _has_any(t_set, negation), _has_any(x_set, negation)
    t_num, x_num = _numbers(target), _numbers(text)
    n_t, n_x = len(t_tokens), len(x_tokens)
    return [
        _jaccard(t_set, x_set),
        _char3_jaccard(_char3(target), _char3(text)),
        len(t_set & x_set) / len(t_set) if t_set else 0.0,
        min(n_t, n_x) / max(n_t, n_x) if max(n_t, n_x) else 0.0,
        math.log1p(n_t),
        math.log1p(n_x),
        float(t_neg),
        float(x_neg),
        float(t_neg != x_neg),
        float(_has_any(x_set, denial)),
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


def _boilerplate_frame(rows: list[dict]) -> pd.DataFrame:
    feats = np.asarray([row["features"] for row in rows], dtype=np.float64)
    if feats.ndim != 2 or feats.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"boilerplate rows need {len(FEATURE_NAMES)} features each "
            f"(inference.preprocess.FEATURE_NAMES), got shape {feats.shape}"
        )
    frame = pd.DataFrame(feats, columns=list(FEATURE_NAMES))
    for key in ("text", "prev_text", "next_text"):
        frame[key] = _texts(rows, key)
    return frame


def _stance_frame(rows: list[dict]) -> pd.DataFrame:
    targets, texts = _texts(rows, "target"), _texts(rows, "text")
    pair = [stance_pair_features(t, x) for t, x in zip(targets, texts, strict=True)]
    frame = pd.DataFrame(
        np.asarray(pair, dtype=np.float64).reshape(len(rows), len(STANCE_FEATURE_NAMES)),
        columns=list(STANCE_FEATURE_NAMES),
    )
    frame["target"] = targets
    frame["text"] = texts
    return frame


def rows_to_frame(task: str, rows: list[dict]) -> pd.DataFrame:
    """Predictor rows -> the DataFrame every khabar sklearn pipeline of ``task`` consumes."""
    if task == "boilerplate":
        return _boilerplate_frame(rows)
    if task == "topic":
        return pd.DataFrame({"text": _texts(rows, "text"), "source": _sources(rows)})
    if task == "stance":
        return _stance_frame(rows)
    raise ValueError(f"unknown task {task!r} (expected boilerplate, topic or stance)")


# ---------------------------------------------------------------- safe skops loading
# Only types from these packages (plus plain builtins) may appear in a bundle's model.
ALLOWED_MODULE_ROOTS = ("sklearn", "numpy", "scipy")
ALLOWED_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool",
                 "slice", "NoneType")
)  # fmt: skip


def _schema_types(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
            found.add(f"{node['__module__']}.{node['__class__']}")
        for value in node.values():
            _schema_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _schema_types(value, found)


def _is_allowed(type_name: str) -> bool:
    if type_name.startswith("builtins."):
        return type_name in ALLOWED_BUILTINS
    return type_name.split(".", 1)[0] in ALLOWED_MODULE_ROOTS


def _skops_io():
    """``skops.io``, imported without importing torch.

    Importing skops walks every sklearn subpackage (``all_estimators``), which imports
    ``sklearn.externals.array_api_compat.torch`` and so torch itself when it is installed: ~2.5 s
    and ~250 MB per process, for an sklearn model that never uses it. ``externals`` modules are
    excluded from the estimator list anyway, so hiding torch during that import changes nothing
    else (walk_packages ignores the ImportError).
    """
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io
    sys.meta_path.insert(0, _NoTorch)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(_NoTorch)
    return skops.io


class _NoTorch:
    """A meta path finder that makes ``import torch`` fail without touching ``sys.modules``."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"torch hidden while importing skops ({name})", name=name)
        return None


def skops_types(path: str | Path) -> set[str]:
    """Every type named in a skops file (its ``schema.json``), read without constructing anything."""
    sio = _skops_io()

    try:
        with zipfile.ZipFile(path) as zf:
            schema = json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise UnsafeModelError(f"{path}: not a skops file ({exc})") from exc
    found: set[str] = set()
    _schema_types(schema, found)
    # skops' own audit list, in case a node type is implied rather than spelled out in the schema.
    found.update(sio.get_untrusted_types(file=str(path)))
    return found


# A fitted TfidfVectorizer keeps ``vocabulary_``, a dict of every term. skops writes a dict entry by
# entry into its JSON schema (~250 bytes per term, and a node per term to rebuild on load): 400k
# terms made a 110 MB file that took seconds to load. Stored instead as one string array, in index
# order, under this attribute, and turned back into the dict right after loading.
PACKED_VOCABULARY = "khabar_vocabulary_terms_"


def _vectorizers(model: Any) -> list[Any]:
    """Fitted text vectorizers with a vocabulary, anywhere in a Pipeline / ColumnTransformer."""
    from sklearn.feature_extraction.text import CountVectorizer

    found, stack = [], [model]
    while stack:
        node = stack.pop()
        if isinstance(node, CountVectorizer):  # TfidfVectorizer included
            found.append(node)
        for _, child, *_ in getattr(node, "steps", []) + getattr(node, "transformers_", []):
            if not isinstance(child, str):  # "drop" / "passthrough"
                stack.append(child)
    return found


def _pack_vocabularies(model: Any) -> list[tuple[Any, dict]]:
    packed = []
    for vec in _vectorizers(model):
        vocab = getattr(vec, "vocabulary_", None)
        if isinstance(vocab, dict):
            terms = sorted(vocab, key=vocab.__getitem__)
            setattr(vec, PACKED_VOCABULARY, np.asarray(terms, dtype=np.str_))
            del vec.vocabulary_
            packed.append((vec, vocab))
    return packed


def _unpack_vocabularies(model: Any) -> Any:
    for vec in _vectorizers(model):
        terms = getattr(vec, PACKED_VOCABULARY, None)
        if terms is not None:
            vec.vocabulary_ = {str(term): i for i, term in enumerate(terms.tolist())}
            delattr(vec, PACKED_VOCABULARY)
    return model


def load_skops(path: str | Path) -> Any:
    """Load a skops file if every type in it is allow-listed; raise UnsafeModelError otherwise."""
    sio = _skops_io()

    types = skops_types(path)
    refused = sorted(t for t in types if not _is_allowed(t))
    if refused:
        raise UnsafeModelError(
            f"{path}: refusing to load; it contains types outside the allow-list "
            f"({', '.join(ALLOWED_MODULE_ROOTS)}, plain builtins): {', '.join(refused)}"
        )
    return _unpack_vocabularies(sio.load(path, trusted=sorted(types)))


def save_skops(model: Any, path: str | Path) -> Path:
    """Save with skops (compressed, vocabularies packed); ``model`` is left as it was."""
    sio = _skops_io()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = _pack_vocabularies(model)
    try:
        sio.dump(model, path, compression=zipfile.ZIP_DEFLATED)
    finally:
        for vec, vocab in packed:
            delattr(vec, PACKED_VOCABULARY)
            vec.vocabulary_ = vocab
    return path


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
        # Same counts as sklearn's own Python loop, computed much faster (inference.ngram_counts).
        for vec in _vectorizers(model):
            install_fast_counts(vec)
        return cls(model, meta["task"], meta["labels"])

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
        # Threaded BLAS only adds contention for sparse linear models (see training.sklearn_models).
        with threadpool_limits(limits=1, user_api="blas"):
            out[:, self._columns] = self._model_scores(frame)
        return out
