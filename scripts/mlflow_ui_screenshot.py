"""Screenshot MLflow's compare-runs page for a khabar experiment, and check what it shows.

Starts ``mlflow server`` on 127.0.0.1 (a free port, one worker, job execution off) over the given
store, checks through the REST API that the experiment's runs follow khabar's conventions (tags,
params, key metrics, a servable ``confusion_matrix.png``), loads the compare-runs page in headless
Chromium, saves a screenshot, and checks the rendered DOM lists the runs, their params, the key
metrics and the confusion-matrix artifact. The server is always stopped.

    python scripts/mlflow_ui_screenshot.py --tracking-uri sqlite:///mlflow.db \\
        --experiment khabar-topic --out docs/img/mlflow-compare.png

Needs a Chromium binary (``apt-get update && apt-get install -y chromium`` on Debian/Ubuntu, or
``--chromium PATH``); this script never installs anything.
Exit codes: 0 every check passed; 1 a check failed; 2 setup error (no Chromium, server did not
start, bad arguments).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The page is loaded from this name (mapped to 127.0.0.1 inside Chromium only): MLflow 3's UI
# opens its "Assistant" side panel, a third of the page, when the page's host is localhost.
UI_HOST = "khabar-mlflow"
KEY_METRICS = ("test_accuracy", "test_macro_f1")
KHABAR_TAGS = ("khabar.task", "khabar.model_kind")
CONFUSION_MATRIX = "confusion_matrix.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium (or pass --chromium)"


class SetupError(RuntimeError):
    """Exit 2: the tools around the check are missing or broken."""


# ---------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
        help="backend store of the server (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    parser.add_argument("--experiment", default="khabar-topic", help="experiment name")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--artifact-root", help="server artifact root (default: next to the db)")
    parser.add_argument("--max-runs", type=int, default=4, help="compare the N best runs")
    parser.add_argument("--window-size", default="1600,2200", help="W,H of the browser window")
    parser.add_argument("--chromium", help="Chromium binary (default: found on PATH)")
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds")
    return parser.parse_args(argv)


def find_chromium(explicit: str | None) -> str:
    for name in [explicit] if explicit else CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise SetupError(
        f"no Chromium binary found ({explicit or ', '.join(CHROMIUM_NAMES)}); " + INSTALL_HINT
    )


def sqlite_path(tracking_uri: str) -> Path | None:
    return (
        Path(tracking_uri.removeprefix("sqlite:///"))
        if tracking_uri.startswith("sqlite:///")
        else None
    )


def check_store(tracking_uri: str) -> None:
    """Refuse a sqlite file that is not there: the server would create an empty store."""
    if tracking_uri.startswith(("http://", "https://")):
        raise SetupError(
            "--tracking-uri must be a store (sqlite:///..., a database URI), not a server"
        )
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise SetupError(
            f"no MLflow store at {path} (train something first, or fix --tracking-uri)"
        )


def default_artifact_root(tracking_uri: str) -> str:
    path = sqlite_path(tracking_uri)
    return str((path.resolve().parent if path else Path.cwd()) / "mlartifacts")


# ---------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tracking_uri: str, artifact_root: str, port: int, log) -> subprocess.Popen:
    ui_origin = f"http://{UI_HOST}:{port}"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", tracking_uri,
        "--default-artifact-root", artifact_root,
        "--artifacts-destination", artifact_root,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--allowed-hosts", f"{UI_HOST}:{port},127.0.0.1:{port},localhost:{port}",
        "--cors-allowed-origins", ui_origin,
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner / huey consumer to start
        "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def wait_until_up(proc: subprocess.Popen, base: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SetupError(f"mlflow server exited with code {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SetupError(f"mlflow server did not answer on {base} within {timeout:.0f}s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's own process group (it forks uvicorn), SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- REST checks
def api(base: str, path: str, body: dict | None = None, raw: bool = False):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
    return payload if raw else json.loads(payload or b"{}")


def fetch_runs(base: str, experiment: str, max_runs: int) -> tuple[dict, list[dict]]:
    query = urllib.parse.urlencode({"experiment_name": experiment})
    try:
        exp = api(base, f"/api/2.0/mlflow/experiments/get-by-name?{query}")["experiment"]
    except urllib.error.HTTPError as err:
        raise CheckFailed([f"experiment {experiment!r} not found ({err.code})"]) from err
    body = {
        "experiment_ids": [exp["experiment_id"]],
        "max_results": max_runs,
        "order_by": ["metrics.test_macro_f1 DESC", "attributes.start_time DESC"],
    }
    runs = api(base, "/api/2.0/mlflow/runs/search", body).get("runs", [])
    if not runs:
        raise CheckFailed([f"experiment {experiment!r} has no runs"])
    return exp, runs


class CheckFailed(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _as_dict(entries: list[dict] | None) -> dict[str, str]:
    return {entry["key"]: entry.get("value") for entry in entries or []}


def run_name(run: dict) -> str:
    return run["info"].get("run_name") or _as_dict(run["data"].get("tags")).get("mlflow.runName")


def check_run_contents(run: dict) -> list[str]:
    name, data = run_name(run), run["data"]
    tags, params, metrics = (_as_dict(data.get(k)) for k in ("tags", "params", "metrics"))
    problems = [f"run {name}: tag {tag} missing" for tag in KHABAR_TAGS if tag not in tags]
    problems += [f"run {name}: metric {m} missing" for m in KEY_METRICS if m not in metrics]
    if not params:
        problems.append(f"run {name}: no params logged")
    return problems


def check_confusion_matrix(base: str, run: dict) -> list[str]:
    run_id, name = run["info"]["run_id"], run_name(run)
    listing = api(base, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}")
    if CONFUSION_MATRIX not in {f["path"] for f in listing.get("files", [])}:
        return [f"run {name}: artifact {CONFUSION_MATRIX} missing"]
    query = urllib.parse.urlencode({"path": CONFUSION_MATRIX, "run_uuid": run_id})
    try:
        content = api(base, f"/get-artifact?{query}", raw=True)
    except urllib.error.HTTPError as err:
        return [f"run {name}: the server cannot serve {CONFUSION_MATRIX} ({err.code})"]
    return [] if content.startswith(PNG_MAGIC) else [f"run {name}: {CONFUSION_MATRIX} is not a PNG"]


# ---------------------------------------------------------------- browser
def compare_url(port: int, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow 3 hash route (``Routes.getCompareRunPageRoute``): ?runs=[..]&experiments=[..]."""
    query = urllib.parse.urlencode(
        {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    )
    return f"http://{UI_HOST}:{port}/#/compare-runs?{query}"


def chromium(binary: str, url: str, port: int, window: str, out: Path) -> str:
    """Load ``url`` once: the screenshot goes to ``out``, the rendered DOM is returned."""
    with tempfile.TemporaryDirectory(prefix="khabar-chromium-") as profile:
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", f"--window-size={window}",
            "--virtual-time-budget=15000",
            f"--host-resolver-rules=MAP {UI_HOST} 127.0.0.1",
            f"--unsafely-treat-insecure-origin-as-secure=http://{UI_HOST}:{port}",
            f"--screenshot={out.resolve()}", "--dump-dom", url,
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired as err:
            raise SetupError("Chromium did not finish within 180 s") from err
    if not out.is_file() or not out.read_bytes().startswith(PNG_MAGIC):
        tail = result.stderr[-2000:]
        raise SetupError(f"Chromium wrote no screenshot (exit {result.returncode}):\n{tail}")
    return result.stdout


def screenshot_and_text(binary: str, url: str, port: int, window: str, out: Path) -> str:
    """Save the screenshot; return the page's visible text (tags stripped, spaces collapsed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    dom = chromium(binary, url, port, window, out)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"\s+", " ", text)


def check_page(text: str, runs: list[dict]) -> list[str]:
    expected = {f"Comparing {len(runs)} Run", CONFUSION_MATRIX, *KEY_METRICS}
    for run in runs:
        expected.add(run_name(run))
        expected.update(_as_dict(run["data"].get("params")))
    return [f"compare page does not show {item!r}" for item in sorted(expected) if item not in text]


# ---------------------------------------------------------------- main
def check_and_shoot(args: argparse.Namespace, binary: str, base: str, port: int) -> list[str]:
    exp, runs = fetch_runs(base, args.experiment, args.max_runs)
    problems = [p for run in runs for p in check_run_contents(run)]
    problems += [p for run in runs for p in check_confusion_matrix(base, run)]
    url = compare_url(port, exp["experiment_id"], [run["info"]["run_id"] for run in runs])
    print(f"compare page: {url}", file=sys.stderr)
    text = screenshot_and_text(binary, url, port, args.window_size, args.out)
    problems += check_page(text, runs)
    names = ", ".join(run_name(run) for run in runs)
    print(f"{args.experiment}: {len(runs)} runs compared ({names})", file=sys.stderr)
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        binary = find_chromium(args.chromium)
        check_store(args.tracking_uri)
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    artifact_root = args.artifact_root or default_artifact_root(args.tracking_uri)
    with tempfile.NamedTemporaryFile("w+", prefix="khabar-mlflow-", suffix=".log") as log:
        proc = start_server(args.tracking_uri, artifact_root, port, log)
        try:
            wait_until_up(proc, base, args.start_timeout, Path(log.name))
            problems = check_and_shoot(args, binary, base, port)
        except SetupError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CheckFailed as err:
            problems = err.problems
        finally:
            stop_server(proc)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: screenshot {args.out} ({args.out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
