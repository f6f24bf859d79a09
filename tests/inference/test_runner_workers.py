"""run_tagging with worker processes: same bytes, same order, same checkpoints as one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.engines.checkpoint import last_line
from inference.engines.runner import CHECKPOINT_SUFFIX, default_workers, run_tagging
from inference.tagger import TaggerConfig, load_tagger


@pytest.fixture(scope="module")
def tagger(sample_bundles):
    refs = [str(sample_bundles[t]) for t in ("boilerplate", "topic", "stance")]
    return load_tagger(refs, config=TaggerConfig(stance_targets=["ارتفاع أسعار الغذاء"]))


def _archive(path: Path, fixture_articles, copies: int) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for art in fixture_articles:
                fh.write(json.dumps(dict(art, id=f"{art['id']}-{c}"), ensure_ascii=False) + "\n")
                n += 1
            fh.write("{broken json\n")  # error records travel through the workers too
            n += 1
    return n


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_write_the_same_bytes(tagger, tmp_path, fixture_articles, workers):
    n = _archive(tmp_path / "in.jsonl", fixture_articles, copies=12)
    one = run_tagging(
        tagger, tmp_path / "in.jsonl", tmp_path / "one.jsonl", batch_size=4, progress=False,
        workers=1,
    )  # fmt: skip
    many = run_tagging(
        tagger, tmp_path / "in.jsonl", tmp_path / "many.jsonl", batch_size=4, progress=False,
        workers=workers,
    )  # fmt: skip
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert many["records"] == one["records"] == n
    assert many["errors"] == one["errors"] == 12
    ckpt = json.loads((tmp_path / ("many.jsonl" + CHECKPOINT_SUFFIX)).read_text())
    assert ckpt["complete"] and ckpt["output_bytes"] == (tmp_path / "many.jsonl").stat().st_size


def test_resume_with_workers_after_a_partial_output(tagger, tmp_path, fixture_articles):
    _archive(tmp_path / "in.jsonl", fixture_articles, copies=6)
    out = tmp_path / "out.jsonl"
    run_tagging(tagger, tmp_path / "in.jsonl", tmp_path / "ref.jsonl", progress=False, workers=1)
    run_tagging(tagger, tmp_path / "in.jsonl", out, batch_size=4, progress=False, workers=2)
    # Simulate a crash after some batches: an older checkpoint and a torn last line.
    ckpt_path = tmp_path / ("out.jsonl" + CHECKPOINT_SUFFIX)
    lines = out.read_bytes().splitlines(keepends=True)
    ckpt = json.loads(ckpt_path.read_text())
    done = sum(map(len, lines[:8]))
    ckpt.update(records_done=8, output_bytes=done, complete=False, errors=0)
    ckpt["last_line"] = last_line(lines[7], done)
    ckpt_path.write_text(json.dumps(ckpt))
    with out.open("r+b") as fh:
        fh.truncate(sum(map(len, lines[:10])) + 5)
    run_tagging(
        tagger, tmp_path / "in.jsonl", out, resume=True, batch_size=4, progress=False, workers=2
    )
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_default_workers(tagger, monkeypatch):
    monkeypatch.setattr("inference.engines.runner._cpus", lambda: 8)
    assert default_workers(tagger, None, 256) == 2  # unknown size: assume large
    assert default_workers(tagger, 100_000, 256) == 2
    assert default_workers(tagger, 300, 256) == 1  # a few batches: not worth the processes
    monkeypatch.setattr("inference.engines.runner._cpus", lambda: 1)
    assert default_workers(tagger, 100_000, 256) == 1
    monkeypatch.setattr("inference.engines.runner._cpus", lambda: 8)
    monkeypatch.setitem(tagger.bundles["topic"].meta, "kind", "transformer")
    assert default_workers(tagger, 100_000, 256) == 1  # torch uses the cores itself
