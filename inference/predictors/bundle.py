"""Model bundles (DESIGN.md "Model bundle"): a directory with ``bundle.json`` plus the model.

``bundle.json`` holds: task, labels, kind (``sklearn`` | ``transformer``), normalizer_version,
the resolved training config, metrics, library versions, and ``version`` (a short id for the
``models`` field of tag output). Loading never unpickles: sklearn models are skops files whose types
are checked against an allow-list, transformers are safetensors folders. A bundle whose normalizer
version this install does not know is refused.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.errors import BundleError
from inference.text.normalize import KNOWN_NORMALIZER_VERSIONS, NORMALIZER_VERSION

BUNDLE_FILE = "bundle.json"
TASKS = ("boilerplate", "topic", "stance")


class Predictor(Protocol):
    labels: list[str]

    def predict_proba(self, rows: list[dict]) -> np.ndarray:
        """Rows as built by ``inference.text.preprocess`` (*_row functions) -> (n, len(labels))
        scores."""
        ...


@dataclass
class Bundle:
    path: Path
    meta: dict[str, Any]
    predictor: Predictor

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unknown"))

    @property
    def normalizer_version(self) -> str:
        return self.meta["normalizer_version"]

    def reads_any_feature(self, names: tuple[str, ...]) -> bool:
        """Whether the model reads any of these boilerplate feature columns (a predictor that
        cannot tell, such as a transformer over the text, counts as reading them all)."""
        columns = getattr(self.predictor, "feature_columns", None)
        return columns is None or not columns.isdisjoint(names)

    def predict_proba(self, rows: list[dict]) -> np.ndarray:
        if not rows:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.predictor.predict_proba(rows)

    def predict(self, rows: list[dict]) -> tuple[list[str], np.ndarray]:
        probs = self.predict_proba(rows)
        idx = probs.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
        labels = self.labels
        return [labels[i] for i in idx], probs[np.arange(len(idx)), idx]


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "khabar",
        "scikit-learn",
        "skops",
        "transformers",
        "torch",
        "tokenizers",
        "datasets",
        "mlflow",
        "onnxruntime",
        "numpy",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def write_bundle_meta(directory: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``bundle.json`` after checking the keys every loader relies on."""
    for key in ("task", "labels", "kind"):
        if key not in meta:
            raise BundleError(f"bundle.json needs {key!r}")
    if meta["task"] not in TASKS:
        raise BundleError(f"bundle.json: unknown task {meta['task']!r}")
    full = {"normalizer_version": NORMALIZER_VERSION, "libraries": library_versions(), **meta}
    path = Path(directory) / BUNDLE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(full, ensure_ascii=False, indent=2, default=str), "utf-8")
    return path


def read_bundle_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / BUNDLE_FILE
    if not path.exists():
        raise BundleError(f"{directory}: not a khabar bundle (no {BUNDLE_FILE})")
    try:
        meta = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON: {exc}") from exc
    for key in ("task", "labels", "kind", "normalizer_version"):
        if key not in meta:
            raise BundleError(f"{path}: missing key {key!r}")
    if meta["normalizer_version"] not in KNOWN_NORMALIZER_VERSIONS:
        raise BundleError(
            f"{path}: normalizer version {meta['normalizer_version']!r} is unknown to this install "
            f"(known: {', '.join(KNOWN_NORMALIZER_VERSIONS)}); refusing to load"
        )
    return meta


def resolve_ref(ref: str) -> Path:
    """A bundle directory, or an MLflow model URI (``models:/name@alias``, ``runs:/id/model``)."""
    if ref.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        import mlflow

        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref))
        # A logged khabar pyfunc model keeps the bundle under artifacts/bundle.
        for candidate in (local, local / "artifacts" / "bundle", local / "bundle"):
            if (candidate / BUNDLE_FILE).exists():
                return candidate
        raise BundleError(f"{ref}: downloaded, but no {BUNDLE_FILE} inside")
    path = Path(ref)
    if not path.exists():
        raise BundleError(f"bundle not found: {ref}")
    return path


def load_bundle(ref: str | Path, device: str | None = None, backend: str = "auto") -> Bundle:
    """Load a bundle from a directory or MLflow URI. ``backend``: auto | torch | onnx | onnx-int8 (transformers)."""
    path = resolve_ref(str(ref))
    meta = read_bundle_meta(path)
    if meta["kind"] == "sklearn":
        from inference.predictors.sklearn import SklearnPredictor

        predictor = SklearnPredictor.load(path, meta)
    elif meta["kind"] == "transformer":
        from inference.predictors.transformer import load_transformer_predictor

        predictor = load_transformer_predictor(path, meta, device=device, backend=backend)
    else:
        raise BundleError(f"{path}/{BUNDLE_FILE}: unknown kind {meta['kind']!r}")
    return Bundle(path=path, meta=meta, predictor=predictor)
