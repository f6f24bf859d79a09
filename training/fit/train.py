"""``khabar train``: fit one task's model from a built dataset, evaluate it, write and track a bundle.

Flow: load the DatasetDict (``cfg.data``: splits, optional ``filter``, ``max_train_examples``) ->
fit (sklearn here; transformers via ``training.fit.transformer_trainer``) -> write the bundle ->
reload it with ``inference.predictors.bundle.load_bundle`` and score the validation and test splits
through it (so reported metrics are those of the shipped artifact, on held-out data only) -> rewrite
``bundle.json`` with the metrics -> log the run and the model to MLflow (optionally register it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.predictors.bundle import Bundle, load_bundle, write_bundle_meta
from inference.predictors.sklearn import MODEL_FILE, rows_to_frame, save_skops
from inference.text.furniture import default_rule_dicts
from training.config import TrainConfig
from training.dataset.synthetic_pages import PAGE_ID_SUFFIX
from training.tracking.evaluate import ROW_COLUMNS, gold_labels, predict_labels, split_rows
from training.tracking.metrics import compute_metrics
from training.tracking.mlflow_runs import RunTracker, training_run

log = logging.getLogger(__name__)

# What a previous bundle in the output folder may hold; removed so nothing stale survives.
BUNDLE_ENTRIES = ("bundle.json", MODEL_FILE, "model", "model.onnx")


class TrainError(ValueError):
    """Training cannot start: missing dataset or split, bad filter, single-class data."""


@dataclass
class TrainData:
    splits: Any  # datasets.DatasetDict after filter / max_train_examples
    labels: list[str]
    eval_splits: dict[str, str]  # metric prefix ("val_", "test_") -> split name
    test_hash: str | None = None
    manifest_path: Path | None = None
    manifest: dict = field(default_factory=dict)
    dataset_hash: str | None = None


@dataclass
class TrainResult:
    bundle_dir: Path
    metrics: dict[str, Any]
    run_id: str | None
    version: str
    model_uri: str | None = None
    registered: dict[str, str] | None = None
    history: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (what ``khabar train`` prints)."""
        return {
            "bundle_dir": str(self.bundle_dir),
            "version": self.version,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "registered": self.registered,
            "metrics": self.metrics,
            "history": self.history,
        }


# ---------------------------------------------------------------- data
def _label_names(split) -> list[str]:
    feature = split.features.get("label")
    if feature is None:
        raise TrainError("dataset has no 'label' column")
    if hasattr(feature, "names"):
        return list(feature.names)
    return sorted({str(x) for x in split["label"]})


def _apply_filter(splits, filters: dict[str, Any], labels: list[str]):
    for column, wanted in filters.items():
        allowed = set(wanted) if isinstance(wanted, list) else {wanted}
        if column == "label":  # let a config name labels, not ClassLabel ids
            allowed |= {labels.index(v) for v in list(allowed) if v in labels}
        for name, split in splits.items():
            if column not in split.column_names:
                raise TrainError(f"data.filter: split {name!r} has no column {column!r}")
            splits[name] = split.filter(
                lambda values, ok=allowed: [v in ok for v in values],
                input_columns=[column],
                batched=True,
                keep_in_memory=True,
            )
    return splits


def _without_synthetic_pages(split):
    """The split without the rows of synthetic pages (``training.dataset.synthetic_pages``)."""
    if "article_id" not in split.column_names:
        raise TrainError("data.synthetic_pages: the training split has no 'article_id' column")
    return split.filter(
        lambda ids: [not i.endswith(PAGE_ID_SUFFIX) for i in ids],
        input_columns=["article_id"],
        batched=True,
        keep_in_memory=True,
    )


def split_hash(split, task: str) -> str:
    """Content hash of a split's model inputs and labels: two runs compare only on equal hashes."""
    digest = hashlib.sha256()
    columns = [c for c in ROW_COLUMNS[task] if c in split.column_names] + ["label"]
    for batch in split.select_columns(columns).iter(batch_size=4096):
        digest.update(json.dumps(batch, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def find_manifest(dataset_dir: Path) -> Path | None:
    for candidate in (dataset_dir / "manifest.json", dataset_dir.parent / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


def read_manifest(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning(
            "%s: unreadable manifest (%s); dataset hash taken from the file bytes", path, exc
        )
        return {}
    return manifest if isinstance(manifest, dict) else {}


def manifest_hash(path: Path, manifest: dict, dataset_name: str) -> str:
    """The builder's content hash for this output if the manifest has one, else the file's hash."""
    outputs = manifest.get("outputs")
    entry = outputs.get(dataset_name) if isinstance(outputs, dict) else None
    for source in (entry, manifest):
        if isinstance(source, dict) and isinstance(source.get("content_hash"), str):
            return source["content_hash"]
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_training_data(cfg: TrainConfig) -> TrainData:
    import datasets

    path = Path(cfg.data.dataset_dir)
    if not path.exists():
        raise TrainError(f"data.dataset_dir: {path} not found (build it with khabar build-dataset)")
    splits = datasets.load_from_disk(str(path))
    if not isinstance(splits, datasets.DatasetDict):
        raise TrainError(f"{path}: expected a DatasetDict with train/validation/test splits")
    if cfg.data.train_split not in splits:
        raise TrainError(f"{path}: no split {cfg.data.train_split!r} (has {list(splits)})")
    labels = _label_names(splits[cfg.data.train_split])
    splits = _apply_filter(datasets.DatasetDict(splits), cfg.data.filter, labels)
    if not cfg.data.synthetic_pages:
        splits[cfg.data.train_split] = _without_synthetic_pages(splits[cfg.data.train_split])
    train = splits[cfg.data.train_split]
    if cfg.data.max_train_examples and len(train) > cfg.data.max_train_examples:
        train = train.shuffle(seed=cfg.training.seed, keep_in_memory=True)
        splits[cfg.data.train_split] = train.select(range(cfg.data.max_train_examples))
    if cfg.data.transitive_pairs:
        splits[cfg.data.train_split] = _with_transitive_pairs(
            splits[cfg.data.train_split], labels, cfg.data.transitive_pairs
        )
    eval_splits = {
        prefix: name
        for prefix, name in (("val_", cfg.data.eval_split), ("test_", cfg.data.test_split))
        if name in splits and len(splits[name]) > 0
    }
    if not eval_splits:
        raise TrainError(
            f"{path}: no held-out split ({cfg.data.eval_split!r} or {cfg.data.test_split!r}) to "
            "evaluate on; metrics are never computed on the training split"
        )
    manifest_path = find_manifest(path)
    manifest = read_manifest(manifest_path)
    test = splits.get(cfg.data.test_split)
    return TrainData(
        splits=splits,
        labels=labels,
        eval_splits=eval_splits,
        test_hash=split_hash(test, cfg.task) if "test_" in eval_splits else None,
        manifest_path=manifest_path,
        manifest=manifest,
        dataset_hash=manifest_hash(manifest_path, manifest, path.name) if manifest_path else None,
    )


def _with_transitive_pairs(train, labels: list[str], spec):
    from training.fit.pair_augment import add_transitive_pairs

    for key, name in spec.model_dump().items():
        if name is not None and name not in labels:
            raise TrainError(
                f"data.transitive_pairs.{key}: label {name!r} is not in the dataset ({labels})"
            )
    augmented, added = add_transitive_pairs(train, labels, spec)
    log.info("data.transitive_pairs: %d training pairs + %d derived", len(train), added)
    return augmented


# ---------------------------------------------------------------- fitting
def _fit_sklearn(cfg: TrainConfig, data: TrainData, out_dir: Path) -> dict:
    from training.fit.sklearn_models import fit_pipeline

    train = data.splits[cfg.data.train_split]
    y = gold_labels(train, data.labels)
    weights = _provenance_weights(train, cfg.data.provenance_weights)
    start = time.perf_counter()
    pipeline = fit_pipeline(
        cfg.task, cfg.model, rows_to_frame(cfg.task, split_rows(train, cfg.task)), y, weights
    )
    seconds = time.perf_counter() - start
    save_skops(pipeline, out_dir / MODEL_FILE)
    return {"history": [], "train_seconds": seconds}


def _provenance_weights(train, weights: dict[str, float]):
    """One sample weight per training example from its provenance (None: all weigh 1)."""
    import numpy as np

    if not weights:
        return None
    if "provenance" not in train.column_names:
        raise TrainError("data.provenance_weights: the training split has no 'provenance' column")
    return np.array([weights.get(p, 1.0) for p in train["provenance"]], dtype=np.float64)


def _fit_transformer(cfg: TrainConfig, data: TrainData, out_dir: Path, tracker: RunTracker) -> dict:
    from training.fit.transformer_trainer import train_transformer

    def on_epoch(epoch: float, metrics: dict | None = None, **extra: Any) -> None:
        tracker.log_epoch(epoch, {**(metrics or {}), **extra})

    return train_transformer(cfg, data.splits, data.labels, out_dir, on_epoch=on_epoch)


def _model_hash(out_dir: Path) -> str:
    """Short content hash of the model files: the bundle ``version`` shown in tag output."""
    digest = hashlib.sha256()
    model_dir = out_dir / "model"
    files = (
        [out_dir / MODEL_FILE]
        if (out_dir / MODEL_FILE).exists()
        else sorted(p for p in model_dir.rglob("*") if p.is_file())
    )
    for path in files:
        digest.update(path.relative_to(out_dir).as_posix().encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda f=fh: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- evaluation
def evaluate_splits(bundle: Bundle, cfg: TrainConfig, data: TrainData) -> dict[str, dict]:
    """``{"validation": metrics, "test": metrics}`` through the written bundle, held-out only."""
    results = {}
    for name in data.eval_splits.values():
        split = data.splits[name]
        predicted = predict_labels(bundle, split_rows(split, cfg.task))
        metrics = compute_metrics(cfg.task, gold_labels(split, data.labels), predicted, data.labels)
        results[name] = {**metrics, "n": len(split)}
    return results


def _bundle_meta(cfg: TrainConfig, data: TrainData, **extra: Any) -> dict:
    meta = {
        "task": cfg.task,
        "labels": data.labels,
        "kind": cfg.model.kind,
        "config": cfg.model_dump(mode="json"),
        "dataset": {
            "dir": str(Path(cfg.data.dataset_dir)),
            "hash": data.dataset_hash,
            "test_hash": data.test_hash,
        },
        **extra,
    }
    # Rows were normalized by the dataset builder: the bundle must say with which rules.
    if data.manifest.get("normalizer_version"):
        meta["normalizer_version"] = str(data.manifest["normalizer_version"])
    if cfg.task == "boilerplate":
        # The tagger must match paragraphs with exactly the rules the features were built with.
        meta["furniture_rules"] = _dataset_rules(data) or [dict(r) for r in default_rule_dicts()]
    return meta


def _dataset_rules(data: TrainData) -> list[dict] | None:
    """The rule list the dataset builder recorded (a dataset config may replace the shipped one)."""
    rules = data.manifest.get("furniture_rules")
    return rules if isinstance(rules, list) and rules else None


def _last_epoch(fitted: dict) -> int:
    epochs = [int(entry.get("epoch") or 0) for entry in fitted.get("history", [])]
    return max(epochs, default=0)


def _clear_bundle(out_dir: Path) -> None:
    """Remove a previous bundle in ``out_dir``; refuse to overwrite model files of anything else."""
    present = [name for name in BUNDLE_ENTRIES if (out_dir / name).exists()]
    if present and "bundle.json" not in present:
        raise TrainError(
            f"{out_dir} holds {present} but is not a khabar bundle; choose another --out"
        )
    for name in present:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def _fit(cfg: TrainConfig, data: TrainData, out_dir: Path, tracker: RunTracker) -> dict:
    if cfg.model.kind == "sklearn":
        return _fit_sklearn(cfg, data, out_dir)
    return _fit_transformer(cfg, data, out_dir, tracker)


def _write_bundle(
    cfg: TrainConfig, data: TrainData, out_dir: Path, fitted: dict, run_id: str | None
) -> tuple[str, dict]:
    """Write bundle.json, score the held-out splits through the written bundle, add the scores."""
    extra = {"version": _model_hash(out_dir), "run_id": run_id}
    write_bundle_meta(out_dir, _bundle_meta(cfg, data, **extra))
    results = evaluate_splits(load_bundle(out_dir), cfg, data)
    metrics = {
        **results,
        "n_train": len(data.splits[cfg.data.train_split]),
        "train_seconds": fitted["train_seconds"],
    }
    write_bundle_meta(out_dir, _bundle_meta(cfg, data, metrics=metrics, **extra))
    return extra["version"], metrics


def _log_results(tracker: RunTracker, data: TrainData, metrics: dict, fitted: dict) -> None:
    for prefix, name in data.eval_splits.items():
        tracker.log_evaluation(name, prefix, metrics[name], step=_last_epoch(fitted))
    tracker.log_scalars({k: metrics[k] for k in ("n_train", "train_seconds")})


# ---------------------------------------------------------------- entry point
def train(cfg: TrainConfig, out_dir: Path, register: str | None = None) -> TrainResult:
    """Train ``cfg``'s model, write its bundle to ``out_dir``, track it; ``register``: model name."""
    if register and not cfg.tracking.enabled:
        raise TrainError("--register needs tracking (tracking.enabled is false)")
    data = load_training_data(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_bundle(out_dir)
    log.info(
        "training %s %s on %d examples, labels %s",
        cfg.task,
        cfg.model.kind,
        len(data.splits[cfg.data.train_split]),
        data.labels,
    )
    with training_run(cfg) as tracker:
        tracker.log_config(cfg)
        tracker.log_dataset(data.manifest_path, data.dataset_hash, data.test_hash)
        fitted = _fit(cfg, data, out_dir, tracker)
        version, metrics = _write_bundle(cfg, data, out_dir, fitted, tracker.run_id)
        _log_results(tracker, data, metrics, fitted)
        model_uri = tracker.log_bundle(out_dir, version)
        registered = None
        if register:
            from training.tracking.registry import register_model

            registered = register_model(model_uri, register)
    return TrainResult(
        out_dir, metrics, tracker.run_id, version, model_uri, registered, fitted.get("history", [])
    )
