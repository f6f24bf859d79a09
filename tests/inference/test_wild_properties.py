"""Property: whatever an archive holds, ``khabar tag`` exits 0 or 3, never crashes, and writes
exactly one output record per input record (in input order under the local engine).

Archives come from ``wild_archives`` (the generator counts the records it writes). Examples are
derandomized so CI sees the same ones every run; the Ray and kill -9 variants are ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.inference.wild_archives import LIMIT, archives, check_output
from training.cli import main

SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,
    # no shrinking: every example is a whole CLI run, and a failure prints its archive anyway
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def models(sample_bundles) -> list[str]:
    return [a for p in sample_bundles.values() for a in ("--model", str(p))]


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def _tag(models, archive, folder: Path, *extra: str) -> tuple[int, list[dict]]:
    path = folder / f"in{archive.suffix}"
    path.write_bytes(archive.data)
    out = folder / "out.jsonl"
    argv = ["tag", *models, "--input", str(path), "--output", str(out)]
    code = main([*argv, "--max-record-bytes", str(LIMIT), *extra])
    return code, _read(out)


@settings(
    max_examples=int(os.environ.get("WILD_EXAMPLES", 40)),
    **dict(SETTINGS, derandomize=not os.environ.get("WILD_EXAMPLES")),
)
@given(archive=archives(), batch=st.sampled_from(["1", "3", "256"]), workers=st.sampled_from("12"))
def test_local_engine_one_output_per_input(models, archive, batch, workers):
    with tempfile.TemporaryDirectory() as tmp:
        code, out = _tag(models, archive, Path(tmp), "--batch-size", batch, "--workers", workers)
    check_output(archive, out)
    assert code == (3 if any("error" in r for r in out) else 0)


# ---------------------------------------------------------------- Ray
@pytest.mark.slow
@settings(max_examples=5, **SETTINGS)
@given(archive=archives(max_records=12))
def test_ray_engine_one_output_per_input(models, ray_runtime, archive):
    with tempfile.TemporaryDirectory() as tmp:
        code, out = _tag(models, archive, Path(tmp), "--engine", "ray", "--batch-size", "4")
    check_output(archive, out, ordered=False)
    assert code == (3 if any("error" in r for r in out) else 0)


# ---------------------------------------------------------------- kill -9, then --resume
def _cli(models, *args: str) -> list[str]:
    boot = "import sys; from training.cli import main; sys.exit(main())"
    return [sys.executable, "-c", boot, "tag", *models, *args]


def _checkpointed(ckpt: Path) -> int:
    try:
        return json.loads(ckpt.read_text())["records_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@settings(max_examples=3, **SETTINGS)
@given(archive=archives(max_records=10, repeat=40), delay=st.floats(0.0, 0.5))
def test_kill_minus_nine_then_resume_gives_the_uninterrupted_output(models, archive, delay):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        code, reference = _tag(models, archive, folder, "--batch-size", "7")
        check_output(archive, reference)
        path, out = folder / f"in{archive.suffix}", folder / "killed.jsonl"
        args = ["--input", str(path), "--output", str(out), "--batch-size", "2", "--workers", "1"]
        args += ["--max-record-bytes", str(LIMIT)]
        proc = subprocess.Popen(
            _cli(models, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        ckpt = folder / "killed.jsonl.ckpt.json"
        deadline = time.time() + 120
        while proc.poll() is None and _checkpointed(ckpt) < 1 and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        resumed = subprocess.run(_cli(models, *args, "--resume"), capture_output=True)
        assert resumed.returncode == code, resumed.stderr.decode()[-2000:]
        assert _read(out) == reference  # none lost, none doubled, same order
        KILLS.append(killed)


KILLS: list[bool] = []


@pytest.mark.slow
def test_the_kill_test_killed_runs_mid_way():
    """Guards the test above: its runs must really have been cut (not finished before the kill)."""
    if not KILLS:
        pytest.skip("the kill test did not run")
    assert sum(KILLS) >= 2, KILLS


# ---------------------------------------------------------------- kill -9 of a Ray run
def _session(pid: int) -> list[int]:
    """The processes of the session ``pid`` leads (the killed run's Ray workers, Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[3]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_kill_minus_nine_of_a_ray_run_leaves_no_half_output(models, ray_runtime, tmp_path):
    from tests.fixtures_articles import FIXTURE_ARTICLES

    lines = [
        json.dumps(dict(art, id=f"{art['id']}-{c}"), ensure_ascii=False).encode()
        for c in range(150)
        for art in FIXTURE_ARTICLES
    ]
    lines[7] = b"\xff broken \xfe"  # and a fault or two
    lines[9] = b'{"text": "\\ud83d"}'
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    out.write_text("previous output\n")
    args = ["--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--engine", "ray"]
    proc = subprocess.Popen(
        _cli(models, *args, "--batch-size", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    partial = tmp_path / "out.jsonl.partial.jsonl"
    try:
        deadline = time.time() + 180
        while proc.poll() is None and time.time() < deadline:
            if partial.exists() and partial.stat().st_size > 0:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the Ray run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert out.read_text() == "previous output\n"  # never a half-written final output
    finally:
        time.sleep(2)  # the driver's death stops most of its Ray processes; end the rest
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert main(["tag", *models, *args, "--batch-size", "64"]) == 3
    records = _read(out)
    assert len(records) == len(lines) and not partial.exists()
    assert len({r["id"] for r in records}) == len(lines)
    assert sum("error" in r for r in records) == 2
