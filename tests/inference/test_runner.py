"""khabar tag: streaming runner, error records, exit codes, Parquet output, exactly-once resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from inference.engines.runner import ResumeError, run_tagging
from inference.tagger import load_tagger
from training.cli import main


def _archive(path: Path, fixture_articles, copies: int = 1, bad: bool = True) -> list[str]:
    """Writes an archive; returns the id every line must produce, in order."""
    ids = []
    with path.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for art in fixture_articles:
                rec = dict(art, id=f"{art['id']}-{c}")
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                ids.append(rec["id"])
            if bad:
                fh.write("{broken json\n")
                ids.append(f"{path}:{len(ids) + 1}")
                fh.write(json.dumps({"id": f"nobody-{c}", "title": "بلا نص"}) + "\n")
                ids.append(f"nobody-{c}")
    return ids


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def tagger(sample_bundles):
    return load_tagger([str(p) for p in sample_bundles.values()])


def test_every_record_yields_one_output_in_order(tagger, tmp_path, fixture_articles):
    ids = _archive(tmp_path / "in.jsonl", fixture_articles, copies=2)
    summary = run_tagging(
        tagger, tmp_path / "in.jsonl", tmp_path / "out.jsonl", batch_size=5, progress=False
    )
    assert _ids(tmp_path / "out.jsonl") == ids
    assert summary["records"] == len(ids) and summary["errors"] == 4
    errors = [
        json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines() if "error" in x
    ]
    assert {e["error"]["type"] for e in errors} == {"JSONDecodeError", "RecordError"}
    assert all(":" in e["error"]["message"] for e in errors)  # names file:line


def test_parquet_output(tagger, tmp_path, fixture_articles):
    ids = _archive(tmp_path / "in.jsonl", fixture_articles)
    run_tagging(tagger, tmp_path / "in.jsonl", tmp_path / "out.parquet", progress=False)
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in table] == ids
    first = table[0]
    assert len(json.loads(first["boilerplate"])["labels"]) == len(
        fixture_articles[0].get("paragraphs") or fixture_articles[0]["text"].split("\n")
    )
    assert not (tmp_path / "out.parquet.partial.jsonl").exists()


def test_cli_exit_codes(sample_bundles, tmp_path, fixture_articles):
    _archive(tmp_path / "bad.jsonl", fixture_articles)
    _archive(tmp_path / "good.jsonl", fixture_articles, bad=False)
    models = [a for p in sample_bundles.values() for a in ("--model", str(p))]
    common = ["tag", *models, "--batch-size", "7"]
    assert (
        main(
            [
                *common,
                "--input",
                str(tmp_path / "good.jsonl"),
                "--output",
                str(tmp_path / "o1.jsonl"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                *common,
                "--input",
                str(tmp_path / "bad.jsonl"),
                "--output",
                str(tmp_path / "o2.jsonl"),
            ]
        )
        == 3
    )
    assert (
        main(
            [
                *common,
                "--input",
                str(tmp_path / "missing.jsonl"),
                "--output",
                str(tmp_path / "o3.jsonl"),
            ]
        )
        == 2
    )


def test_resume_refuses_changed_input(tagger, tmp_path, fixture_articles):
    _archive(tmp_path / "in.jsonl", fixture_articles)
    run_tagging(tagger, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    with (tmp_path / "in.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "late", "text": "نص"}) + "\n")
    with pytest.raises(ResumeError, match="input changed"):
        run_tagging(
            tagger, tmp_path / "in.jsonl", tmp_path / "out.jsonl", resume=True, progress=False
        )


def test_resume_after_complete_run_is_a_no_op(tagger, tmp_path, fixture_articles):
    ids = _archive(tmp_path / "in.jsonl", fixture_articles)
    run_tagging(tagger, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    summary = run_tagging(
        tagger, tmp_path / "in.jsonl", tmp_path / "out.jsonl", resume=True, progress=False
    )
    assert _ids(tmp_path / "out.jsonl") == ids and summary["resumed_from"] == len(ids)


def _records_done(ckpt: Path) -> int:
    try:
        return json.loads(ckpt.read_text())["records_done"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.mark.slow
def test_kill_minus_nine_then_resume_is_exactly_once(sample_bundles, tmp_path, fixture_articles):
    """SIGKILL the tagger at random moments while it writes, resume each time: every id once."""
    ids = _archive(tmp_path / "in.jsonl", fixture_articles, copies=60)
    out = tmp_path / "out.jsonl"
    ckpt = tmp_path / "out.jsonl.ckpt.json"
    models = [a for p in sample_bundles.values() for a in ("--model", str(p))]
    cmd = [
        sys.executable,
        "-c",
        "import sys; from training.cli import main; sys.exit(main())",
        "tag",
        *models,
        "--input",
        str(tmp_path / "in.jsonl"),
        "--output",
        str(out),
        "--batch-size",
        "4",
    ]
    rng = random.Random(7)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kills = 0
    for attempt in range(8):
        start_done = _records_done(ckpt)
        proc = subprocess.Popen(
            cmd + (["--resume"] if attempt else []),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Wait until this attempt has checkpointed progress, then kill at a random instant of the
        # write loop (mid-batch, between output and checkpoint, ...).
        deadline = time.time() + 120
        while proc.poll() is None and _records_done(ckpt) <= start_done and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 3  # finished; the archive holds bad records
        break
    else:
        proc = subprocess.run(cmd + ["--resume"], env=env, capture_output=True)
        assert proc.returncode == 3
    assert kills >= 3, "the run finished too soon to be killed; make the archive bigger"
    assert _ids(out) == ids  # none lost, none doubled, same order
