"""The tagger as an MLflow pyfunc model: same records as ``Tagger.tag_batch``, in process and served
by ``mlflow models serve`` over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from inference.engines.serving import input_records, log_tagger_model
from inference.tagger import TaggerConfig, load_tagger
from inference.text.schema import article_from_record
from tests.inference.test_ray_engine import train_tiny_bundles

TARGET = "خطة وطنية لتطوير المستشفيات"
ARTICLES = [
    {
        "id": "a1",
        "title": "خطة صحية",
        "text": "المصدر: وكالة الأنباء\nأعلنت وزارة الصحة اليوم عن خطة وطنية جديدة لتطوير المستشفيات.\n\n"
        "شارك هذا الخبر",
    },
    {
        "id": 2,
        "title": "الفريق يفوز",
        "paragraphs": ["المباراة انتهت بفوز الفريق", "اقرأ أيضاً:"],
        "claim": "فوز الفريق بالمباراة",
    },
    {"id": "empty", "title": "بلا نص"},  # no body -> an error record
    {"maintext": "الأسعار ترتفع في السوق\nجميع الحقوق محفوظة 2024", "source_domain": "x.example"},
]
SERVE_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> list[str]:
    return train_tiny_bundles(tmp_path_factory.mktemp("serving_bundles"))


def expected_records(refs: list[str], config: TaggerConfig, articles: list[dict]) -> list[dict]:
    tagger = load_tagger(refs, config)
    valid = [a for a in articles if a.get("id") != "empty"]
    tagged = iter(tagger.tag_batch([article_from_record(a) for a in valid]))
    return [next(tagged) if a.get("id") != "empty" else None for a in articles]


def test_input_records_drop_missing_cells_and_numpy_types():
    frame = pd.DataFrame(ARTICLES)
    records = input_records(frame)
    assert records[0] == ARTICLES[0]
    assert records[1]["id"] == 2 and records[1]["paragraphs"] == ARTICLES[1]["paragraphs"]
    assert "text" not in records[2] and input_records(ARTICLES[0]) == [ARTICLES[0]]


def test_pyfunc_model_returns_the_taggers_records(mlflow_uri, refs):
    import mlflow

    config = TaggerConfig(stance_targets=[TARGET])
    uri = log_tagger_model(refs, config=config, registered_name="khabar-tagger")
    assert uri == "models:/khabar-tagger/1"
    model = mlflow.pyfunc.load_model(uri)
    from_frame = model.predict(pd.DataFrame(ARTICLES))
    assert model.predict(ARTICLES) == from_frame
    expected = expected_records(refs, config, ARTICLES)
    for got, want in zip(from_frame, expected, strict=True):
        if want is None:
            assert got["id"] == "empty" and got["error"]["type"] == "RecordError"
            assert got["error"]["message"].startswith("request:3: record has no body")
        else:
            assert got == want
    assert (
        from_frame[1]["id"] == "2"
        and from_frame[1]["stance"][1]["target"] == "فوز الفريق بالمباراة"
    )
    # The tagger config can be replaced at load time.
    plain = mlflow.pyfunc.load_model(uri, model_config={"tagger": {}}).predict(ARTICLES[:1])
    assert plain[0]["stance"] == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_ping(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(f"no /ping answer within {SERVE_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (uvicorn workers too)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(mlflow_uri, refs, tmp_path):
    uri = log_tagger_model(refs)
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log_path = tmp_path / "serve.log"
    cmd = [
        str(mlflow_cli),
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    # mlflow execs ``uvicorn`` by name: the venv's bin folder must be on PATH, as when activated.
    path = os.pathsep.join([str(mlflow_cli.parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PATH": path}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_ping(proc, port, log_path)
        body = json.dumps({"dataframe_records": ARTICLES[:1]}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
    finally:
        _stop(proc)
    (record,) = answer["predictions"]
    assert record == expected_records(refs, TaggerConfig(), ARTICLES[:1])[0]
    assert record["id"] == "a1" and record["topic"]["label"]
    assert len(record["boilerplate"]["labels"]) == 4 and record["boilerplate"]["labels"][2] is None
