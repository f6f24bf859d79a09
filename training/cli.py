"""The ``khabar`` command line. Thin by design: parse, load config, call a library function.

Exit codes (DESIGN.md): 0 ok; 1 failed; 2 usage/config error; 3 finished with records in error (tag).
Heavy libraries are imported inside the commands so ``khabar --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Tag Arabic news articles.")
runs_app = typer.Typer(help="Compare MLflow runs.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
annotate_app = typer.Typer(
    no_args_is_help=True,
    help="Review round with Label Studio: export what the models are least sure of, import the "
    "reviews as an annotation file for build-dataset.",
)
app.add_typer(annotate_app, name="annotate")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Dotted override KEY=VALUE.")]


TrackingOpt = Annotated[
    str | None,
    typer.Option(help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
]


def _print_json(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@app.command("build-dataset")
def build_dataset_cmd(
    config: Annotated[Path, typer.Option(help="Dataset config YAML.")],
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: config out_dir).")
    ] = None,
) -> None:
    """Parsed articles (+ annotation files) -> labeled HF datasets + manifest.json."""
    from training.config import load_dataset_config
    from training.dataset.build import build_datasets
    from training.dataset.manifest import manifest_summary

    cfg = load_dataset_config(config, set_ or [])
    manifest = build_datasets(cfg, Path(out or cfg.out_dir))
    typer.echo(json.dumps(manifest_summary(manifest), ensure_ascii=False, indent=2))


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training config YAML.")],
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Bundle folder.")] = None,
    register: Annotated[
        str | None, typer.Option(help="Register the model under this name.")
    ] = None,
) -> None:
    """Train one task's model from a typed YAML config; log to MLflow; write a bundle."""
    from training.config import load_train_config
    from training.fit.train import train as train_model

    cfg = load_train_config(config, set_ or [])
    out_dir = Path(out or Path("bundles") / cfg.task)
    _print_json(train_model(cfg, out_dir, register=register).as_dict())


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="Bundle dir or MLflow model URI.")],
    data: Annotated[Path, typer.Option(help="Labeled file (any supported format).")],
    task: Annotated[str, typer.Option(help="boilerplate | topic | stance")],
) -> None:
    """Print a JSON object of metrics for MODEL on a labeled file."""
    from training.tracking.evaluate import evaluate_model

    _print_json(evaluate_model(model, data, task))


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    test_data: Annotated[
        str | None, typer.Option(help="Re-score both versions on this labeled file or dataset.")
    ] = None,
) -> None:
    """Move alias 'champion' to the 'candidate' version if it beats the champion."""
    from training.tracking.registry import promote as promote_model

    result = promote_model(name, test_data_ref=test_data)
    _print_json(result)
    if not result.get("promoted", False):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def tag(
    model: Annotated[list[str], typer.Option(help="Bundle dir or MLflow URI; repeat per task.")],
    input: Annotated[Path, typer.Option(help="Archive: file or folder.")],
    output: Annotated[Path, typer.Option(help="Output .jsonl or .parquet.")],
    engine: Annotated[str, typer.Option(help="local | ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    config: Annotated[
        Path | None, typer.Option(help="Tagger config YAML (stance targets...).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Articles per batch.")] = 256,
    backend: Annotated[
        str, typer.Option(help="auto | torch | onnx | onnx-int8 (transformer bundles).")
    ] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Tagging processes (default: 2 for sklearn models, else 1)."),
    ] = None,
    max_record_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="A bigger input record is a 'too large' error record (default: the tagger "
            "config's max_record_bytes, 16 MiB).",
        ),
    ] = None,
) -> None:
    """Tag an archive, streaming, with a progress bar."""
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"unknown engine {engine!r} (local | ray)")
    if engine == "ray" and resume:
        raise typer.BadParameter("--resume works with --engine local only")
    from inference.engines.tag import tag_archive

    summary = tag_archive(
        model,
        input,
        output,
        engine=engine,
        config=config,
        address=address,
        resume=resume,
        batch_size=batch_size,
        backend=backend,
        workers=workers,
        max_record_bytes=max_record_bytes,
    )
    typer.echo(json.dumps(summary, ensure_ascii=False), err=True)
    if summary.get("errors", 0):
        raise typer.Exit(EXIT_PARTIAL)


@app.command("log-tagger")
def log_tagger(
    model: Annotated[list[str], typer.Option(help="Bundle dir or MLflow URI; repeat per task.")],
    config: Annotated[Path | None, typer.Option(help="Tagger config YAML.")] = None,
    register: Annotated[str | None, typer.Option(help="Register under this name.")] = None,
) -> None:
    """Log the whole tagger as one MLflow pyfunc model (serve it with `mlflow models serve`)."""
    from inference.engines.serving import log_tagger_model

    typer.echo(log_tagger_model(model, config=config, registered_name=register))


@runs_app.callback()
def runs(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option(help="Experiment name.")] = None,
    metric: Annotated[str, typer.Option(help="Sort by this metric.")] = "macro_f1",
    format: Annotated[str, typer.Option(help="auto | table | csv | json")] = "auto",
    tracking_uri: TrackingOpt = None,
) -> None:
    """One row per run: params that differ, key metrics, duration, alias."""
    if ctx.invoked_subcommand is not None:
        return
    from training.tracking.runs import list_runs, render_runs

    render_runs(list_runs(experiment, metric=metric, tracking_uri=tracking_uri), format)


@runs_app.command("diff")
def runs_diff(
    run_a: str,
    run_b: str,
    format: Annotated[str, typer.Option(help="auto | table | csv | json")] = "auto",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Params and metrics of two runs side by side, with per-class F1 deltas."""
    from training.tracking.runs import diff_runs, render_diff

    render_diff(diff_runs(run_a, run_b, tracking_uri=tracking_uri), format)


@annotate_app.command("export")
def annotate_export(
    model: Annotated[list[str], typer.Option(help="Bundle dir or MLflow URI; repeat per task.")],
    input: Annotated[Path, typer.Option(help="Articles to choose from (any supported input).")],
    task: Annotated[str, typer.Option(help="boilerplate | topic | stance")],
    out: Annotated[
        Path, typer.Option(help="Label Studio tasks (.json); config written next to it.")
    ],
    n: Annotated[int, typer.Option("--n", help="How many tasks (articles; stance: pairs).")] = 50,
    target: Annotated[
        list[str] | None, typer.Option(help="Stance target asked of every article (repeat).")
    ] = None,
) -> None:
    """Label Studio tasks for the N articles the models are least sure of, pre-annotated."""
    from training.annotate.export import export_tasks

    _print_json(export_tasks(model, input, task, n, out, targets=target or []))


@annotate_app.command("import")
def annotate_import(
    from_: Annotated[Path, typer.Option("--from", help="Label Studio JSON export of the tasks.")],
    out: Annotated[Path, typer.Option(help="Annotation file to write (.jsonl).")],
    input: Annotated[
        Path | None, typer.Option(help="The corpus (default: the file the tasks came from).")
    ] = None,
) -> None:
    """Reviews (majority vote) -> the annotation file build-dataset reads."""
    from training.annotate.reviews import import_reviews

    _print_json(import_reviews(from_, out, corpus=input))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Working folder for the demo.")] = Path(
        "khabar-demo"
    ),
    transformer: Annotated[bool, typer.Option(help="Also fine-tune a tiny transformer.")] = True,
) -> None:
    """The whole chain on the sample corpus shipped in the repo, offline."""
    from training.demo import run_demo

    run_demo(workdir, with_transformer=transformer)


def _usage_errors() -> tuple[type[BaseException], ...]:
    from inference.engines.readers import InputError
    from inference.engines.runner import ResumeError
    from inference.errors import BundleError
    from inference.text.normalize import UnknownNormalizerVersion
    from training.annotate.errors import AnnotationError
    from training.config import ConfigError
    from training.fit.train import TrainError
    from training.tracking.evaluate import EvaluateError
    from training.tracking.registry import PromoteError
    from training.tracking.runs import RunsError

    return (
        ConfigError,
        InputError,
        BundleError,
        UnknownNormalizerVersion,
        FileNotFoundError,
        IsADirectoryError,  # a user's path: --output names a folder, ...
        NotADirectoryError,
        PermissionError,
        TrainError,
        EvaluateError,
        PromoteError,
        ResumeError,
        AnnotationError,
        RunsError,
    )


def _one_line(exc: BaseException) -> str:
    # Multi-line messages (YAML errors quote the offending line) joined: one line per error.
    return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _is_click_usage_error(exc: BaseException) -> bool:
    # Typer >= 0.20 vendors click (typer._click); match by class name so both layouts work.
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps library errors to the contract's exit codes."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rv = app(args=argv, standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("interrupted (a tag run continues with --resume)", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # click usage errors in non-standalone mode
        return int(exc.code or 0)
    except Exception as exc:
        if isinstance(exc, typer.Abort):
            typer.echo("aborted", err=True)
            return EXIT_FAILED
        if _is_click_usage_error(exc):
            exc.show()
            return EXIT_USAGE
        if isinstance(exc, _usage_errors()):
            typer.echo(f"error: {_one_line(exc)}", err=True)
            return EXIT_USAGE
        logging.getLogger("khabar").exception("failed")
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return EXIT_FAILED
    # In non-standalone mode click returns typer.Exit codes instead of raising them.
    return rv if isinstance(rv, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
