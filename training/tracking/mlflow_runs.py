"""MLflow tracking for ``khabar train``: one run per training, the bundle logged as a pyfunc model.

Where runs go: ``MLFLOW_TRACKING_URI`` if set, else ``cfg.tracking.tracking_uri`` (default
``sqlite:///mlflow.db``). Experiments are created with an explicit artifact location (default: a
``mlartifacts/`` folder next to the sqlite file) so artifacts never land in whatever directory the
command happened to run from.

A run holds: params (the flattened resolved config), per-epoch ``val_*`` metrics (transformers),
final ``test_*`` / ``val_*`` metrics, the confusion matrix PNG, a classification report, the
resolved config YAML, the dataset manifest, tags (task, model kind, git commit, library versions,
dataset and test-split hashes) and the model, logged "from code" (no pickled Python object).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from inference.predictors.bundle import library_versions
from training.config import TrackingConfig, TrainConfig, flatten
from training.tracking.metrics import flat_scores

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
MAX_PARAM_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
TAG_TASK = "khabar.task"
TAG_KIND = "khabar.model_kind"
TAG_TEST_HASH = "khabar.test_data_hash"
TAG_DATASET_HASH = "khabar.dataset_hash"
TAG_BUNDLE_VERSION = "khabar.bundle_version"

# The pyfunc model is logged "from code": MLflow stores and runs this file instead of pickling a
# Python object, so loading the logged model never unpickles anything.
_PYFUNC_CODE = """\
import mlflow
from inference.engines.pyfunc import KhabarBundleModel

mlflow.models.set_model(KhabarBundleModel())
"""


# ---------------------------------------------------------------- where runs go
def resolve_tracking_uri(tracking: TrackingConfig | None = None) -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return tracking.tracking_uri if tracking is not None else TrackingConfig().tracking_uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """``file://.../mlartifacts`` next to a sqlite store; None (the server decides) otherwise."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db_path = Path(tracking_uri[len("sqlite:///") :]).resolve()
    return (db_path.parent / "mlartifacts").as_uri()


def use_tracking_uri(tracking: TrackingConfig | None = None) -> str:
    import mlflow

    uri = resolve_tracking_uri(tracking)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, tracking: TrackingConfig) -> str:
    """The id of experiment ``name``, created with an explicit artifact location if new."""
    import mlflow

    uri = use_tracking_uri(tracking)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = tracking.artifact_location or default_artifact_location(uri)
    return mlflow.create_experiment(name, artifact_location=location)


# ---------------------------------------------------------------- small helpers
def metric_name(name: str) -> str:
    """MLflow accepts letters, digits, ``_ - . /`` and spaces; labels may hold anything."""
    return re.sub(r"[^\w.\- ]", "_", name)


def param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= MAX_PARAM_CHARS:
        return text
    marker = "...[truncated]"
    return text[: MAX_PARAM_CHARS - len(marker)] + marker


def git_commit(start: Path | None = None) -> str | None:
    """The checked-out commit of the repository around ``start`` (read from .git, no subprocess)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        git_dir = folder / ".git"
        if git_dir.is_file():  # a worktree or submodule: "gitdir: <path>"
            git_dir = (folder / git_dir.read_text().split(":", 1)[1].strip()).resolve()
        if not (git_dir / "HEAD").is_file():
            continue
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        for base in (git_dir, git_dir / "commondir"):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = git_dir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
        return None
    return None


def classification_report(metrics: dict) -> str:
    """A plain-text per-class table, like sklearn's report, from ``compute_metrics`` output."""
    per_class = metrics["per_class"]
    width = max([len(label) for label in per_class] + [12])
    lines = [f"{'':{width}}  precision  recall     f1  support"]
    for label, s in per_class.items():
        lines.append(
            f"{label:{width}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:5.4f}"
            f"  {s['support']:7d}"
        )
    lines.append("")
    for key in ("accuracy", "macro_f1", "furniture_f1", "content_recall"):
        if key in metrics:
            lines.append(f"{key:{width}}  {metrics[key]:.4f}")
    return "\n".join(lines) + "\n"


def confusion_png(metrics: dict, path: Path, title: str) -> Path:
    """Render the confusion matrix without touching matplotlib's global backend (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = metrics["confusion_matrix"]["labels"]
    matrix = metrics["confusion_matrix"]["matrix"]
    size = 2.5 + 0.6 * len(labels)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------- the run
class RunTracker:
    """Logs one training run; a disabled tracker (``run_id is None``) ignores every call."""

    def __init__(self, run_id: str | None):
        self.run_id = run_id

    @property
    def enabled(self) -> bool:
        return self.run_id is not None

    def log_config(self, cfg: TrainConfig) -> None:
        if not self.enabled:
            return
        import mlflow

        mlflow.log_params({k: param_value(v) for k, v in flatten(cfg).items()})
        tags = {TAG_TASK: cfg.task, TAG_KIND: cfg.model.kind}
        commit = git_commit()
        if commit:
            tags["git_commit"] = commit
        tags.update({f"khabar.lib.{k}": v for k, v in library_versions().items()})
        mlflow.set_tags(tags)
        text = yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
        mlflow.log_text(text, "config/train_config.yaml")

    def log_dataset(
        self, manifest_path: Path | None, dataset_hash: str | None, test_hash: str | None
    ) -> None:
        if not self.enabled:
            return
        import mlflow

        if manifest_path is not None:
            mlflow.log_artifact(str(manifest_path), "dataset")
        tags = {TAG_DATASET_HASH: dataset_hash, TAG_TEST_HASH: test_hash}
        mlflow.set_tags({k: v for k, v in tags.items() if v})

    def log_epoch(self, epoch: float, metrics: dict) -> None:
        """Per-epoch validation scores (transformers) as ``val_*`` with step = epoch."""
        if not self.enabled:
            return
        import mlflow

        if "per_class" in metrics:  # a full compute_metrics result
            scores = flat_scores(metrics, "val_")
        else:  # already-named scores (val_macro_f1, train_loss, ...); bare names are dev scores
            scores = {
                (k if k.startswith(("val_", "train_")) else f"val_{k}"): float(v)
                for k, v in metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"
            }
        finite = {metric_name(k): v for k, v in scores.items() if math.isfinite(v)}
        mlflow.log_metrics(finite, step=int(round(epoch)))

    def log_evaluation(self, split: str, prefix: str, metrics: dict, step: int = 0) -> None:
        """Final held-out scores (``test_*`` / ``val_*``), confusion matrix PNG and report.

        ``step``: the last epoch for transformers, so the final ``val_*`` value comes after the
        per-epoch ones and is what MLflow shows as the run's value.
        """
        if not self.enabled:
            return
        import mlflow

        scores = flat_scores(metrics, prefix)
        mlflow.log_metrics({metric_name(k): v for k, v in scores.items()}, step=step)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            confusion_png(metrics, folder / f"confusion_matrix_{split}.png", f"{split} split")
            (folder / f"classification_report_{split}.txt").write_text(
                classification_report(metrics), "utf-8"
            )
            (folder / f"metrics_{split}.json").write_text(
                json.dumps(metrics, ensure_ascii=False, indent=2), "utf-8"
            )
            mlflow.log_artifacts(str(folder), "evaluation")
            if split == "test":
                # The held-out test matrix also sits at the run root, where the UI shows it first.
                root_png = folder / "root" / "confusion_matrix.png"
                root_png.parent.mkdir()
                shutil.copyfile(folder / "confusion_matrix_test.png", root_png)
                mlflow.log_artifact(str(root_png))

    def log_scalars(self, values: dict[str, float]) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_metrics({metric_name(k): float(v) for k, v in values.items()})

    def log_bundle(self, bundle_dir: Path, version: str) -> str | None:
        """Log the bundle as a pyfunc model (artifact ``model``); return its model URI."""
        if not self.enabled:
            return None
        import mlflow

        mlflow.set_tag(TAG_BUNDLE_VERSION, version)
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp) / "khabar_pyfunc_model.py"
            code.write_text(_PYFUNC_CODE, "utf-8")
            # MLflow stores a directory artifact under its own base name: stage it as "bundle" so
            # the logged layout is always model/artifacts/bundle (what load_bundle looks for).
            staged = Path(tmp) / "bundle"
            shutil.copytree(bundle_dir, staged)
            info = _log_pyfunc(code, staged)
        return info.model_uri


def _log_pyfunc(code: Path, staged: Path):
    import mlflow

    with warnings.catch_warnings():
        # Rows differ per task, so there is deliberately no input example / input schema.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(code),
            artifacts={"bundle": str(staged)},
            pip_requirements=_pip_requirements(),
            signature=_signature(),
        )


def _signature():
    """Output columns only: input rows differ per task (boilerplate rows carry a feature list), and
    the bundle validates them itself."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]))


def _pip_requirements() -> list[str]:
    # Explicit, so MLflow does not spawn a subprocess to infer them from a loaded model.
    versions = library_versions()
    pins = [
        f"{dist}=={versions[dist]}"
        for dist in ("khabar", "scikit-learn", "skops", "mlflow")
        if dist in versions
    ]
    return pins or ["khabar"]


@contextmanager
def training_run(cfg: TrainConfig) -> Iterator[RunTracker]:
    """An MLflow run for one training (a disabled tracker when ``cfg.tracking.enabled`` is off)."""
    if not cfg.tracking.enabled:
        yield RunTracker(None)
        return
    import mlflow

    experiment = cfg.tracking.experiment or f"khabar-{cfg.task}"
    experiment_id = ensure_experiment(experiment, cfg.tracking)
    with mlflow.start_run(experiment_id=experiment_id, run_name=cfg.tracking.run_name) as run:
        log.info(
            "MLflow run %s in experiment %s (%s)",
            run.info.run_id,
            experiment,
            mlflow.get_tracking_uri(),
        )
        yield RunTracker(run.info.run_id)
