"""A real Label Studio server for the round-trip test: its own environment, its own sqlite in a
temporary folder, bound to 127.0.0.1, no telemetry, one user with a legacy API token.

Label Studio pins Django and friends, and its SDK would downgrade numpy in khabar's environment, so
``make setup`` installs it into ``.venv-ls`` (``KHABAR_LABEL_STUDIO`` may name another
``label-studio`` executable). The test drives it over HTTP with the SDK of that environment
(``ls_driver.py``).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "KHABAR_LABEL_STUDIO"
USER = "reviewer@khabar.test"
START_TIMEOUT_S = 300  # first start migrates a fresh sqlite: ~35-50 s on 2 busy cores


@dataclass
class Server:
    url: str
    token: str
    python: Path  # Label Studio's interpreter (it has label-studio-sdk)
    log: Path


def find_label_studio() -> tuple[Path | None, str]:
    """(the label-studio executable, or None and why not)."""
    given = os.environ.get(ENV_VAR)
    exe = Path(given) if given else REPO / ".venv-ls" / "bin" / "label-studio"
    if not exe.is_file():
        where = f"{ENV_VAR}={given}" if given else f"{exe.relative_to(REPO)}"
        return None, f"Label Studio is not installed ({where} not found): run `make setup`"
    return exe, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextmanager
def label_studio(exe: Path, workdir: Path) -> Iterator[Server]:
    """Start Label Studio in ``workdir``; stop it (its whole process group) on exit."""
    port, token = _free_port(), secrets.token_hex(20)
    url = f"http://127.0.0.1:{port}"
    data, home = workdir / "data", workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    drop = {"USERNAME", "PASSWORD", "USER_TOKEN"}  # Label Studio reads these bare names too
    env = {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LABEL_STUDIO")
    }
    env.update(
        HOME=str(home),
        LABEL_STUDIO_BASE_DATA_DIR=str(data),  # its sqlite and media
        SENTRY_DSN="",  # no error reports
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",  # no usage analytics
        LATEST_VERSION_CHECK="false",  # no PyPI version check
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
    )
    cmd = [
        str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--username", USER, "--password", secrets.token_hex(8), "--user-token", token,
        "--enable-legacy-api-token", "--skip-long-migrations", "--log-level", "WARNING",
    ]  # fmt: skip
    log = workdir / "label_studio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text("utf-8", errors="replace")[-3000:]
                raise RuntimeError(f"Label Studio did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield Server(url, token, exe.parent / "python", log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
