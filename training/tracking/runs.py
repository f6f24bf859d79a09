"""Compare khabar's MLflow runs: ``khabar runs`` and ``khabar runs diff``.

``list_runs`` gives one row per run (short id, name, task, model kind, registered aliases, the key
test metrics, duration, and only the params that differ between the runs shown), sorted by a metric.
``diff_runs`` puts two runs side by side with per-class F1 deltas. ``render_runs`` / ``render_diff``
print either as a rich table (terminal) or as plain CSV / JSON (pipes).

The store is read through an ``MlflowClient`` bound to an explicit tracking URI (argument, else
``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``), so the global MLflow state is never touched.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Literal

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.table import Table

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT_PREFIX = "khabar-"
SHORT_ID_LEN = 8
KEY_METRICS = ("test_accuracy", "test_macro_f1")
OPTIONAL_METRICS = ("test_furniture_f1", "test_content_recall")
PER_CLASS_PREFIX = "test_f1_"
ID_COLUMNS = ("run_id", "name", "task", "model_kind", "alias")
DELTA_DECIMALS = 6

Format = Literal["auto", "table", "csv", "json"]


class RunsError(ValueError):
    """An unknown experiment, run or metric, or an ambiguous run reference."""


# ---------------------------------------------------------------- store access
def _client(tracking_uri: str | None) -> MlflowClient:
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
        # MLflow would create an empty store here and report nothing found.
        raise RunsError(
            f"no MLflow store at {uri} (run from the folder that holds mlflow.db, or pass "
            "--tracking-uri / set MLFLOW_TRACKING_URI)"
        )
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _khabar_experiments(client: MlflowClient) -> list:
    found = client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")
    return [exp for exp in found if exp.name.startswith(EXPERIMENT_PREFIX)]


def _resolve_experiments(client: MlflowClient, experiment: str | None) -> list:
    """``None``: every ``khabar-*`` experiment; a name (``topic`` means ``khabar-topic``)."""
    if experiment is None:
        return _khabar_experiments(client)
    for name in (experiment, EXPERIMENT_PREFIX + experiment):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return [exp]
    known = ", ".join(sorted(exp.name for exp in _khabar_experiments(client))) or "none"
    raise RunsError(f"no MLflow experiment named {experiment!r} (khabar experiments: {known})")


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str = "") -> list:
    if not experiment_ids:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _aliases_by_run(client: MlflowClient, run_ids: list[str]) -> dict[str, list[str]]:
    """``run_id -> ["khabar-topic@champion", ...]`` for registered versions that carry aliases."""
    versions = []
    for start in range(0, len(run_ids), 50):
        quoted = ", ".join(f"'{rid}'" for rid in run_ids[start : start + 50])
        versions.extend(client.search_model_versions(f"run_id IN ({quoted})"))
    model_aliases: dict[str, dict[str, Any]] = {}
    found: dict[str, list[str]] = {}
    for mv in versions:
        if mv.name not in model_aliases:  # search results leave ``aliases`` empty
            model_aliases[mv.name] = client.get_registered_model(mv.name).aliases
        for alias, version in sorted(model_aliases[mv.name].items()):
            if str(version) == str(mv.version):
                found.setdefault(mv.run_id, []).append(f"{mv.name}@{alias}")
    return found


# ---------------------------------------------------------------- list_runs
def metric_key(metric: str) -> str:
    """``macro_f1`` / ``test_macro_f1`` / ``metrics.test_macro_f1`` -> ``test_macro_f1``."""
    key = metric.removeprefix("metrics.")
    return key if key.startswith(("test_", "val_")) else f"test_{key}"


def _run_task(run: Run, experiment_names: dict[str, str]) -> str | None:
    task = run.data.tags.get("khabar.task")
    if task:
        return task
    name = experiment_names.get(run.info.experiment_id, "")
    return name.removeprefix(EXPERIMENT_PREFIX) if name.startswith(EXPERIMENT_PREFIX) else None


def _duration_s(run: Run) -> float | None:
    if run.info.end_time is None or run.info.start_time is None:
        return None
    return round((run.info.end_time - run.info.start_time) / 1000, 1)


def _differing_params(runs: list[Run]) -> list[str]:
    keys = sorted({key for run in runs for key in run.data.params})
    return [k for k in keys if len({run.data.params.get(k) for run in runs}) > 1]


def _metric_columns(runs: list[Run], metric: str) -> list[str]:
    present = {key for run in runs for key in run.data.metrics}
    if runs and metric not in present:
        known = ", ".join(sorted(present)) or "none"
        raise RunsError(f"no run has metric {metric!r} (metrics logged: {known})")
    columns = list(KEY_METRICS)
    if metric not in columns:
        columns.append(metric)
    return columns + [m for m in OPTIONAL_METRICS if m in present and m not in columns]


def _run_row(run: Run, task: str | None, aliases: list[str], metrics: list[str], params: list[str]):
    row: dict[str, Any] = {
        "run_id": run.info.run_id[:SHORT_ID_LEN],
        "name": run.info.run_name or run.data.tags.get("mlflow.runName"),
        "task": task,
        "model_kind": run.data.tags.get("khabar.model_kind"),
        "alias": ", ".join(aliases) or None,
    }
    row.update({m: run.data.metrics.get(m) for m in metrics})
    row["duration_s"] = _duration_s(run)
    row["status"] = run.info.status
    row.update({_param_column(p, row): run.data.params.get(p) for p in params})
    return row


def _param_column(key: str, taken) -> str:
    """A param's column: its key, or ``params.<key>`` when that names another column (``task``)."""
    return f"params.{key}" if key in taken else key


def list_runs(
    experiment: str | None,
    metric: str = "macro_f1",
    tracking_uri: str | None = None,
    *,
    all_params: bool = False,
) -> pd.DataFrame:
    """One row per active run of ``experiment`` (``None``: every ``khabar-*`` experiment).

    Columns: ``run_id`` (8 chars), ``name``, ``task``, ``model_kind``, ``alias`` (``model@alias``,
    comma-separated, or None), ``test_accuracy``, ``test_macro_f1``, the chosen metric,
    ``test_furniture_f1`` / ``test_content_recall`` when any run has them, ``duration_s``,
    ``status`` (only when some run is not FINISHED), then the params whose values differ between
    the runs (every param with ``all_params``). Sorted by the chosen metric, best first, runs
    without it last. ``df.attrs["metric"]`` holds the resolved metric key.
    """
    client = _client(tracking_uri)
    key = metric_key(metric)
    experiments = _resolve_experiments(client, experiment)
    names = {exp.experiment_id: exp.name for exp in experiments}
    runs = _search_all(client, list(names))
    metrics = _metric_columns(runs, key)
    params = sorted({k for r in runs for k in r.data.params}) if all_params else None
    params = params if params is not None else _differing_params(runs)
    aliases = _aliases_by_run(client, [r.info.run_id for r in runs]) if runs else {}
    rows = [
        _run_row(r, _run_task(r, names), aliases.get(r.info.run_id, []), metrics, params)
        for r in runs
    ]
    fixed = [*ID_COLUMNS, *metrics, "duration_s", "status"]
    columns = fixed + [_param_column(p, fixed) for p in params]
    df = pd.DataFrame(rows, columns=columns)
    if df.empty or (df["status"] == "FINISHED").all():
        df = df.drop(columns="status")
    df = df.sort_values(key, ascending=False, na_position="last", kind="stable")
    df = df.reset_index(drop=True)
    df.attrs["metric"] = key
    return df


# ---------------------------------------------------------------- diff_runs
def resolve_run(ref: str, tracking_uri: str | None = None, client: MlflowClient | None = None):
    """A run from its full id, a unique id prefix, or its run name (any active experiment)."""
    client = client or _client(tracking_uri)
    if len(ref) == 32:
        try:
            return client.get_run(ref)
        except MlflowException:
            pass  # not a run id: maybe a (long) run name
    experiment_ids = [exp.experiment_id for exp in client.search_experiments()]
    runs = _search_all(client, experiment_ids)
    matches = [r for r in runs if r.info.run_id.startswith(ref) or r.info.run_name == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunsError(f"no MLflow run matches {ref!r} (by run id, id prefix or run name)")
    listed = ", ".join(f"{r.info.run_id[:SHORT_ID_LEN]} ({r.info.run_name})" for r in matches[:10])
    raise RunsError(f"{ref!r} is ambiguous: it matches {len(matches)} runs: {listed}")


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, DELTA_DECIMALS)


def _side_by_side(a: dict, b: dict, keys: list[str], with_delta: bool) -> dict[str, dict]:
    out = {}
    for key in keys:
        entry = {"a": a.get(key), "b": b.get(key)}
        if with_delta:
            entry["delta"] = _delta(entry["a"], entry["b"])
        out[key] = entry
    return out


def _run_summary(run: Run, client: MlflowClient) -> dict[str, Any]:
    experiment = client.get_experiment(run.info.experiment_id)
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "experiment": experiment.name,
        "task": _run_task(run, {experiment.experiment_id: experiment.name}),
        "model_kind": run.data.tags.get("khabar.model_kind"),
        "status": run.info.status,
    }


def diff_runs(
    run_a: str, run_b: str, tracking_uri: str | None = None, *, all_params: bool = False
) -> dict[str, Any]:
    """Two runs side by side: ``{"a", "b", "params", "metrics", "per_class_f1"}``.

    ``params``: ``{key: {"a", "b"}}``, only the differing ones unless ``all_params``.
    ``metrics``: ``{key: {"a", "b", "delta"}}`` for every metric except the per-class test F1s,
    which go to ``per_class_f1``: ``{label: {"a", "b", "delta"}}`` from ``test_f1_<label>``.
    ``delta`` is ``b - a`` rounded to 6 decimals (None when a side lacks the metric).
    """
    client = _client(tracking_uri)
    ra, rb = resolve_run(run_a, client=client), resolve_run(run_b, client=client)
    pa, pb = ra.data.params, rb.data.params
    param_keys = sorted(set(pa) | set(pb))
    if not all_params:
        param_keys = [k for k in param_keys if pa.get(k) != pb.get(k)]
    ma, mb = ra.data.metrics, rb.data.metrics
    metric_keys = sorted(set(ma) | set(mb))
    per_class = [k for k in metric_keys if k.startswith(PER_CLASS_PREFIX)]
    overall = [k for k in metric_keys if not k.startswith(PER_CLASS_PREFIX)]
    f1a = {k.removeprefix(PER_CLASS_PREFIX): v for k, v in ma.items() if k in per_class}
    f1b = {k.removeprefix(PER_CLASS_PREFIX): v for k, v in mb.items() if k in per_class}
    labels = [k.removeprefix(PER_CLASS_PREFIX) for k in per_class]
    return {
        "a": _run_summary(ra, client),
        "b": _run_summary(rb, client),
        "params": _side_by_side(pa, pb, param_keys, with_delta=False),
        "metrics": _side_by_side(ma, mb, overall, with_delta=True),
        "per_class_f1": _side_by_side(f1a, f1b, labels, with_delta=True),
    }


# ---------------------------------------------------------------- rendering
def _resolve_format(fmt: Format, console: Console) -> str:
    if fmt not in ("auto", "table", "csv", "json"):
        raise RunsError(f"unknown format {fmt!r}: use table, csv or json")
    if fmt != "auto":
        return fmt
    return "table" if console.is_terminal else "csv"


def _cell(value: Any, decimals: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def _write(console: Console, text: str) -> None:
    """Plain text, no rich markup or wrapping (what a pipe or a file must get)."""
    console.file.write(text if text.endswith("\n") else text + "\n")
    console.file.flush()


def _runs_table(df: pd.DataFrame) -> Table:
    metric = df.attrs.get("metric")
    table = Table(title=f"khabar runs, best {metric} first" if metric else "khabar runs")
    for column in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[column])
        style = "bold green" if column == metric else None
        table.add_column(column, justify="right" if numeric else "left", style=style)
    for record in _records(df):
        table.add_row(*(_cell(v, 1 if k == "duration_s" else 4) for k, v in record.items()))
    return table


def render_runs(df: pd.DataFrame, fmt: Format = "auto", console: Console | None = None) -> None:
    """Print ``list_runs`` output: a rich table on a terminal, CSV when piped (``auto``)."""
    console = console or Console()
    kind = _resolve_format(fmt, console)
    if kind == "csv":
        _write(console, df.to_csv(index=False))
    elif kind == "json":
        _write(console, json.dumps(_records(df), ensure_ascii=False, indent=2))
    elif df.empty:
        console.print("no runs found")
    else:
        console.print(_runs_table(df))


def _diff_rows(diff: dict[str, Any]) -> list[tuple[str, str, Any, Any, Any]]:
    rows = [("run", key, diff["a"][key], diff["b"][key], None) for key in ("run_id", "name")]
    for section in ("params", "metrics", "per_class_f1"):
        for key, entry in diff[section].items():
            rows.append((section, key, entry["a"], entry["b"], entry.get("delta")))
    return rows


def _delta_cell(value: Any) -> str:
    if value is None:
        return ""
    colour = "green" if value > 0 else "red" if value < 0 else "dim"
    return f"[{colour}]{value:+.4f}[/{colour}]"


def render_diff(diff: dict[str, Any], fmt: Format = "auto", console: Console | None = None) -> None:
    """Print ``diff_runs`` output: a rich table (terminal), CSV rows or the JSON object."""
    console = console or Console()
    kind = _resolve_format(fmt, console)
    rows = _diff_rows(diff)
    if kind == "json":
        _write(console, json.dumps(diff, ensure_ascii=False, indent=2))
        return
    if kind == "csv":
        frame = pd.DataFrame(rows, columns=["section", "key", "a", "b", "delta"])
        _write(console, frame.to_csv(index=False))
        return
    a, b = diff["a"], diff["b"]
    table = Table(
        title=f"a = {a['name']} ({a['run_id'][:8]})   b = {b['name']} ({b['run_id'][:8]})"
    )
    for column in ("section", "key", "a", "b", "b - a"):
        table.add_column(column, justify="right" if column in ("a", "b", "b - a") else "left")
    for section, key, va, vb, delta in rows[2:]:
        table.add_row(section, key, _cell(va), _cell(vb), _delta_cell(delta))
    console.print(table)
