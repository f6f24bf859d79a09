"""``khabar demo``: the whole chain on the sample corpus shipped in the repo, offline.

build datasets -> train three sklearn models (+ a tiny transformer) -> register and promote ->
tag the sample archive with the champions -> print where everything is and how to open MLflow.
Everything lands in one working folder (default ``khabar-demo/``), MLflow in its own sqlite store.
"""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SKLEARN_MODELS = {"boilerplate": "boilerplate", "topic": "topic", "stance": "stance_claims"}


def sample_path(name: str) -> Path:
    return Path(str(resources.files("training").joinpath("sample_data", name)))


def _train(config: Path, dataset_dir: Path, out: Path, uri: str, register: str, extra=()):
    from training.config import load_train_config
    from training.fit.train import train

    overrides = [f"data.dataset_dir={dataset_dir}", f"tracking.tracking_uri={uri}", *extra]
    return train(load_train_config(config, overrides), out, register=register)


def _tiny_transformer(work: Path, uri: str, console: Console):
    """Fine-tune a tiny BERT built from the sample text (offline, seconds on a CPU)."""
    from inference.text.normalize import normalize
    from training.fit.tiny_bert import build_tiny_bert

    lines = sample_path("articles.jsonl").read_text("utf-8").splitlines()
    texts = [normalize(p) for line in lines for p in json.loads(line)["paragraphs"]]
    model_dir = build_tiny_bert(work / "tiny-bert", [t for t in texts if t])
    console.print(f"[bold]transformer[/] fine-tuning a tiny BERT ({model_dir}) for boilerplate")
    return _train(
        CONFIGS / "train" / "sample" / "boilerplate_tiny_bert.yaml",
        work / "datasets" / "boilerplate",
        work / "bundles" / "boilerplate_transformer",
        uri,
        register="khabar-demo-boilerplate",
        extra=[f"model.name_or_path={model_dir}"],
    )


def run_demo(workdir: Path, with_transformer: bool = True, console: Console | None = None) -> dict:
    console = console or Console()
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri  # models:/ URIs below resolve in the demo's store
    try:
        return _run_chain(work, uri, with_transformer, console)
    finally:
        import mlflow

        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        mlflow.set_tracking_uri(previous)


def _run_chain(work: Path, uri: str, with_transformer: bool, console: Console) -> dict:
    from inference.engines.runner import run_tagging
    from inference.tagger import TaggerConfig, load_tagger
    from training.config import load_dataset_config
    from training.dataset.build import build_datasets
    from training.tracking.registry import promote

    t0 = time.perf_counter()

    console.rule("1. build datasets from the sample corpus")
    cfg = load_dataset_config(CONFIGS / "datasets" / "sample.yaml")
    manifest = build_datasets(cfg, work / "datasets")
    console.print(
        f"datasets in {work / 'datasets'} (content hash {manifest.get('content_hash', '')[:12]})"
    )

    console.rule("2. train, register and promote")
    results, promotions = {}, {}
    for task, dataset in SKLEARN_MODELS.items():
        name = f"khabar-demo-{task}"
        results[task] = _train(
            CONFIGS / "train" / "sample" / f"{task}_sklearn.yaml",
            work / "datasets" / dataset,
            work / "bundles" / task,
            uri,
            register=name,
        )
        promotions[task] = promote(name)
    if with_transformer:
        # Registered under the same name as the sklearn boilerplate model: promote keeps
        # whichever scores higher on the same test split as champion.
        results["boilerplate_transformer"] = _tiny_transformer(work, uri, console)
        promotions["boilerplate_transformer"] = promote("khabar-demo-boilerplate")

    console.rule("3. tag the sample archive with the champions")
    refs = [f"models:/khabar-demo-{task}@champion" for task in SKLEARN_MODELS]
    tagger = load_tagger(refs, config=TaggerConfig(stance_targets=["الحكومة تدعم الاقتصاد"]))
    tagged = run_tagging(tagger, sample_path("articles.jsonl"), work / "tagged.jsonl")

    summary = _summary(work, uri, results, promotions, tagged, time.perf_counter() - t0)
    _print_summary(console, summary, results)
    (work / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
    return summary


def _summary(work: Path, uri: str, results: dict, promotions: dict, tagged: dict, seconds: float):
    return {
        "workdir": str(work),
        "tracking_uri": uri,
        "models": {
            name: {
                "bundle": str(r.bundle_dir),
                "run_id": r.run_id,
                "test_macro_f1": r.metrics.get("test", {}).get("macro_f1"),
                "promoted": promotions.get(name, {}).get("promoted"),
            }
            for name, r in results.items()
        },
        "tagged": tagged,
        "seconds": round(seconds, 1),
        "mlflow_ui": f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000",
        # The store's absolute URI: the command works from any folder, not only the demo's.
        "runs": f"khabar runs --experiment khabar-demo-boilerplate --tracking-uri {uri}",
    }


def _print_summary(console: Console, summary: dict, results: dict) -> None:
    console.rule("summary")
    table = Table("model", "test macro-F1", "champion?", "bundle")
    for name, info in summary["models"].items():
        f1 = info["test_macro_f1"]
        table.add_row(
            name, f"{f1:.3f}" if f1 is not None else "-", str(info["promoted"]), info["bundle"]
        )
    console.print(table)
    tagged = summary["tagged"]
    console.print(
        f"tagged {tagged['records']} articles ({tagged['errors']} errors) -> {tagged['output']}"
    )
    first = Path(tagged["output"]).read_text("utf-8").splitlines()[0]
    console.print("first output record:", json.loads(first))
    console.print(f"done in {summary['seconds']} s. Open the runs with:")
    console.print(f"  {summary['mlflow_ui']}", soft_wrap=True)
    console.print(f"  {summary['runs']}", soft_wrap=True)
