"""Safe ``model.skops`` files: save with packed vocabularies, load only allow-listed types.

Loading never unpickles: the file's ``schema.json`` is read first and every type it names is checked
against an explicit allow-list of sklearn / numpy / scipy (and plain builtin) types before skops
constructs anything. Vocabularies of fitted text vectorizers are stored as one string array (a
dict of 400k terms is slow to save and load node by node) and rebuilt at load.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class UnsafeModelError(ValueError):
    """A ``model.skops`` file that names a type outside the allow-list; it is never constructed."""


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
