"""``khabar tag --engine ray`` gives the local engine's records, each input record exactly once.

The archive mixes what the local reader must survive (malformed JSON, a blank line, a record with
no body, bad gold labels, Windows-1256, gzip) and is read both whole and cut into byte ranges.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from inference.engines.ray import group_pieces, plan_pieces, read_piece, run_tagging_ray
from inference.engines.readers import InputError, ReadStats, iter_items
from inference.engines.runner import run_tagging
from inference.errors import BundleError
from inference.tagger import TaggerConfig, load_tagger
from tests.fit.test_sklearn_train import boilerplate_articles, make_config, make_dataset

TARGET = "خطة وطنية لتطوير المستشفيات"


def train_tiny_bundles(root: Path) -> list[str]:
    """One sklearn bundle per task, trained without tracking on tiny inline Arabic datasets."""
    from training.fit.train import train

    refs = []
    for task in ("boilerplate", "topic", "stance"):
        result = train(make_config(task, make_dataset(task, root)), root / "bundles" / task)
        refs.append(str(result.bundle_dir))
    return refs


def write_archive(folder: Path) -> int:
    """A folder of three files; returns the number of input records (non-blank lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = boilerplate_articles(6, 11)
    for rec in records:
        rec.pop("labels")
    records[0]["claim"] = "الحكومة تعلن خطة صحية"
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(2, '{"id": "broken", "title": "نص')  # malformed JSON
    lines.insert(4, "")  # blank: skipped, not a record
    lines.append(json.dumps({"id": "nobody", "title": "بلا نص"}, ensure_ascii=False))
    lines.append(
        json.dumps({"id": "badlabels", "text": "سطر", "labels": ["x"]}, ensure_ascii=False)
    )
    lines.append(json.dumps({"text": "الفريق فاز بالمباراة\n\nالمصدر: وكالة"}, ensure_ascii=False))
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    cp1256 = [
        {"id": f"w{i}", "title": "خبر", "maintext": "أعلنت الوزارة خطة جديدة.\nاقرأ أيضاً:"}
        for i in range(3)
    ]
    (folder / "b.jsonl").write_bytes(
        b"".join(json.dumps(r, ensure_ascii=False).encode("cp1256") + b"\n" for r in cp1256)
    )
    with gzip.open(folder / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        for i in range(2):
            fh.write(
                json.dumps(
                    {"id": f"g{i}", "paragraphs": ["الأسعار ترتفع في السوق", ""]},
                    ensure_ascii=False,
                )
                + "\n"
            )
    return sum(1 for line in lines if line.strip()) + len(cp1256) + 2


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> list[str]:
    return train_tiny_bundles(tmp_path_factory.mktemp("ray_bundles"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, int]:
    folder = tmp_path_factory.mktemp("archive") / "in"
    return folder, write_archive(folder)


@pytest.mark.parametrize("split_bytes", [40, 300, 1 << 30])
def test_pieces_read_exactly_like_the_local_reader(archive, split_bytes):
    folder, n_records = archive
    pieces = plan_pieces(folder, split_bytes=split_bytes)
    if split_bytes < 1000:
        assert sum(p.end is not None for p in pieces) > 2  # JSONL files were cut into ranges
    assert len(group_pieces(pieces, 3)) >= 1
    ours = [item for piece in pieces for item in read_piece(piece)]
    assert ours == list(iter_items(folder, stats=ReadStats()))
    assert len(ours) == n_records


def test_bad_input_and_bad_bundle_fail_before_starting_ray(tmp_path, refs):
    with pytest.raises(InputError):
        run_tagging_ray(refs, tmp_path / "missing.jsonl", tmp_path / "out.jsonl")
    with pytest.raises(BundleError):
        run_tagging_ray([str(tmp_path)], tmp_path, tmp_path / "out.jsonl")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_ray_engine_matches_local_engine(ray_runtime, refs, archive, tmp_path):
    folder, n_records = archive
    config = TaggerConfig(stance_targets=[TARGET])
    local = run_tagging(load_tagger(refs, config), folder, tmp_path / "local.jsonl", progress=False)
    summary = run_tagging_ray(
        refs,
        folder,
        tmp_path / "ray.jsonl",
        config=config,
        batch_size=4,
        progress=False,
        split_bytes=300,
    )
    assert ray_runtime.is_initialized()  # a runtime it did not start is left running

    ours, theirs = _records(tmp_path / "ray.jsonl"), _records(tmp_path / "local.jsonl")
    assert len(ours) == len(theirs) == n_records  # every input record exactly once
    assert len({r["id"] for r in ours}) == n_records
    assert {r["id"]: r for r in ours} == {r["id"]: r for r in theirs}
    assert {k: summary[k] for k in ("records", "errors", "models")} == {
        k: local[k] for k in ("records", "errors", "models")
    }
    assert set(local) - {"workers"} <= set(summary)  # the Ray engine sizes an actor pool instead
    assert summary["errors"] == 3  # malformed line, no body, bad gold labels
    assert not list(tmp_path.glob("*.partial.jsonl"))
    tagged = next(r for r in ours if r["id"] == "w0")  # Windows-1256 input tagged like UTF-8
    assert tagged["boilerplate"]["labels"][1] == "boilerplate"
    assert tagged["stance"][0]["target"] == TARGET
