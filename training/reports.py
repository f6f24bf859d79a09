"""Helpers behind the notebooks: tables and plots of built datasets and of the demo's MLflow runs.

``notebooks/01_datasets.ipynb`` and ``notebooks/02_experiments.ipynb`` read the work folder of
``khabar demo`` (``$KHABAR_DEMO_DIR``, default ``khabar-demo/`` under the repository root) and keep
their cells short; anything longer than a few lines lives here, tested in ``tests/test_reports.py``.

Dataset side: ``label_counts`` / ``provenance_counts`` flatten ``manifest.json``; ``dataset_frame``
turns a saved ``DatasetDict`` into one pandas frame; ``build_weak_sample`` rebuilds the sample with
weak labels only (the demo uses the sample's hand labels) and ``weak_vs_gold`` lines the two up.
Experiment side: ``evaluation_metrics`` reads a run's logged ``metrics_<split>.json``,
``confusion_frame`` / ``plot_confusions`` show its confusion matrix, ``per_class_f1`` tabulates
``training.tracking.runs.diff_runs``, ``ensure_variant`` trains one extra run to compare against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEMO_DIR_ENV = "KHABAR_DEMO_DIR"
DEMO_DIR_NAME = "khabar-demo"
WEAK_DIR_NAME = "datasets_weak"
ABSTAIN = "abstain"
SPLITS = ("train", "validation", "test")
FRAME_COLUMNS = ("id", "article_id", "source", "index", "text", "rule", "label", "provenance")


# ---------------------------------------------------------------- the demo folder
def demo_dir() -> Path:
    """``$KHABAR_DEMO_DIR``, else ``khabar-demo/`` under the repository root (absolute)."""
    value = os.environ.get(DEMO_DIR_ENV)
    if value:
        return Path(value).expanduser().resolve()
    from training.demo import REPO

    return REPO / DEMO_DIR_NAME


def ensure_demo(path: Path, with_transformer: bool = False) -> dict:
    """The demo's ``summary.json``; runs ``khabar demo`` into ``path`` first if it has not
    completed there (no summary yet: a fresh clone, or an interrupted run)."""
    summary = Path(path) / "summary.json"
    if summary.is_file():
        return json.loads(summary.read_text("utf-8"))
    from training.demo import run_demo

    return run_demo(Path(path), with_transformer=with_transformer)


def tracking_uri(work: Path) -> str:
    """The demo's MLflow store: ``sqlite:///<work>/mlflow.db``."""
    return f"sqlite:///{Path(work).resolve() / 'mlflow.db'}"


def read_manifest(datasets_dir: Path) -> dict:
    return json.loads((Path(datasets_dir) / "manifest.json").read_text("utf-8"))


# ---------------------------------------------------------------- manifest tables
def label_counts(manifest: Mapping) -> pd.DataFrame:
    """One row per (output, split, label): ``output, task, split, label, examples``."""
    rows = [
        (name, out["task"], split, label, n)
        for name, out in manifest["outputs"].items()
        for split, info in out["splits"].items()
        for label, n in info["label"].items()
    ]
    return pd.DataFrame(rows, columns=["output", "task", "split", "label", "examples"])


def provenance_counts(manifest: Mapping) -> pd.DataFrame:
    """One row per (output, label, provenance): where each output's labels came from."""
    rows = [
        (name, label, provenance, n)
        for name, out in manifest["outputs"].items()
        for label, by_provenance in out.get("provenance_by_label", {}).items()
        for provenance, n in by_provenance.items()
    ]
    frame = pd.DataFrame(rows, columns=["output", "label", "provenance", "examples"])
    return frame.sort_values(["output", "label", "examples"], ascending=[True, True, False])


def plot_label_counts(counts: pd.DataFrame):
    """One bar chart per output: examples per label, stacked by split (one colour per split)."""
    from matplotlib.figure import Figure

    outputs = list(dict.fromkeys(counts["output"]))
    present = set(counts["split"])
    splits = [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))
    fig = Figure(figsize=(4 * len(outputs), 3.2), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(outputs), squeeze=False)[0], outputs, strict=True):
        table = counts[counts["output"] == name].pivot_table(
            index="label", columns="split", values="examples", aggfunc="sum", fill_value=0
        )
        table = table.reindex(columns=splits, fill_value=0)  # same colours in every chart
        table.plot.bar(ax=ax, stacked=True, rot=30, legend=False)
        ax.set_title(name)
        ax.set_xlabel("")
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, title="split", loc="outside right upper")
    return fig


# ---------------------------------------------------------------- dataset rows
def dataset_frame(dataset_dict, columns=FRAME_COLUMNS) -> pd.DataFrame:
    """Every split of a saved ``DatasetDict`` as one frame, ``split`` first, label names not ids."""
    frames = []
    for split, ds in dataset_dict.items():
        names = ds.features["label"].names
        frame = ds.select_columns([c for c in columns if c in ds.column_names]).to_pandas()
        frame["label"] = [names[i] for i in frame["label"]]
        frame.insert(0, "split", split)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def build_weak_sample(out_dir: Path) -> dict:
    """Rebuild the demo's datasets from the sample with weak boilerplate labels only (no hand
    labels), into ``out_dir``; returns its manifest."""
    from training.config import load_dataset_config
    from training.dataset.build import build_datasets
    from training.demo import CONFIGS

    cfg = load_dataset_config(
        CONFIGS / "datasets" / "sample.yaml", ["boilerplate.weak.use_gold=false"]
    )
    return build_datasets(cfg, Path(out_dir), progress=False)


def weak_vs_gold(gold: pd.DataFrame, weak: pd.DataFrame) -> pd.DataFrame:
    """Gold boilerplate rows with the weak label and provenance of the same paragraph.

    Columns ``split, id, source, text, rule, gold, weak, provenance``; a paragraph the weak labeler
    abstained on has ``weak`` and ``provenance`` = ``"abstain"``.
    """
    keep = ["split", "id", "source", "text", "rule", "label"]
    weak_part = weak[["id", "label", "provenance"]].rename(columns={"label": "weak"})
    merged = gold[keep].rename(columns={"label": "gold"}).merge(weak_part, on="id", how="left")
    return merged.fillna({"weak": ABSTAIN, "provenance": ABSTAIN})


def furniture_examples(frame: pd.DataFrame, per_source: int = 3, label_column: str = "gold"):
    """Up to ``per_source`` paragraphs labeled boilerplate per source, different provenances
    first (so a source shows a rule hit, a repeated line and a related headline, not 3 rules)."""
    furniture = frame[frame[label_column] == "boilerplate"]
    first_of_kind = ~furniture.duplicated(["source", "provenance"])
    ordered = pd.concat([furniture[first_of_kind], furniture[~first_of_kind]])
    picked = ordered.groupby("source", sort=False).head(per_source)
    return picked.sort_values(["source", "provenance"]).reset_index(drop=True)


# ---------------------------------------------------------------- runs
def artifact_file(run_id: str, uri: str, artifact_path: str) -> Path:
    """A local copy of one artifact of a run (no progress bar)."""
    import mlflow

    with _env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"):
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, tracking_uri=uri
        )
    return Path(local)


def evaluation_metrics(run_id: str, uri: str, split: str = "test") -> dict:
    """The ``metrics_<split>.json`` a training run logged (``khabar evaluate`` format)."""
    path = artifact_file(run_id, uri, f"evaluation/metrics_{split}.json")
    return json.loads(path.read_text("utf-8"))


def confusion_frame(metrics: Mapping) -> pd.DataFrame:
    """Gold labels down, predicted labels across, from a metrics JSON's ``confusion_matrix``."""
    labels = list(metrics["confusion_matrix"]["labels"])
    return pd.DataFrame(
        metrics["confusion_matrix"]["matrix"],
        index=pd.Index(labels, name="gold"),
        columns=pd.Index(labels, name="predicted"),
    )


def plot_confusions(frames: Mapping[str, pd.DataFrame]):
    """One annotated heatmap per confusion frame, side by side, titled by the mapping's keys."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6 * len(frames), 3.4), layout="constrained")
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, (title, frame) in zip(axes, frames.items(), strict=True):
        ax.imshow(frame.to_numpy(), cmap="Blues")
        ax.set_xticks(range(frame.shape[1]), frame.columns, rotation=45, ha="right")
        ax.set_yticks(range(frame.shape[0]), frame.index)
        ax.set(title=title, xlabel="predicted", ylabel="gold")
        peak = frame.to_numpy().max(initial=0)
        for (i, j), count in np.ndenumerate(frame.to_numpy()):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    return fig


def per_class_f1(diff: Mapping[str, Any]) -> pd.DataFrame:
    """``diff_runs`` per-class test F1 as a frame: one row per label, columns = the two run
    names (``a`` / ``b`` when unnamed or equal) and ``delta`` (b - a)."""
    a = diff["a"].get("name") or "a"
    b = diff["b"].get("name") or "b"
    if a == b:
        a, b = "a", "b"
    rows = {
        label: {a: entry["a"], b: entry["b"], "delta": entry["delta"]}
        for label, entry in diff["per_class_f1"].items()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[a, b, "delta"])
    frame.index.name = "label"
    return frame


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment variables set for the block, restored (or removed) after it."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_variant(work: Path, task: str, run_name: str, overrides: list[str]) -> str:
    """Run id of ``run_name`` in experiment ``khabar-demo-<task>`` of the demo store; trains it
    first (the demo's sklearn config + ``overrides``, not registered) if there is none yet."""
    from mlflow import MlflowClient

    uri = tracking_uri(work)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(f"khabar-demo-{task}")
    if experiment is not None:
        found = client.search_runs(
            [experiment.experiment_id], f"attributes.run_name = '{run_name}'", max_results=1
        )
        if found:
            return found[0].info.run_id
    from training.config import load_train_config
    from training.demo import CONFIGS, SKLEARN_MODELS
    from training.fit.train import train

    work = Path(work).resolve()
    settings = [
        f"data.dataset_dir={work / 'datasets' / SKLEARN_MODELS[task]}",
        f"tracking.tracking_uri={uri}",  # as the demo's runs, so the param does not differ
        f"tracking.run_name={run_name}",
        *overrides,
    ]
    cfg = load_train_config(CONFIGS / "train" / "sample" / f"{task}_sklearn.yaml", settings)
    # MLFLOW_TRACKING_URI wins over the config's URI: point it at the demo store too.
    with _env(MLFLOW_TRACKING_URI=uri, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"):
        result = train(cfg, work / "bundles" / f"variant-{run_name}")
    return result.run_id
