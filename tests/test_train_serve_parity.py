"""Train/serve parity: what the dataset builder writes is exactly what the tagger feeds its models.

The builder (training) and the tagger (inference) share ``inference.text.preprocess``; these tests
build a real dataset, tag the same articles, capture the rows each model receives, and compare them.
"""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk

from inference.tagger import TaggerConfig, load_tagger
from inference.text.schema import article_from_record
from training.config import load_dataset_config
from training.dataset.build import build_datasets

BP_KEYS = ("text", "prev_text", "next_text", "features", "rule")


@pytest.fixture(scope="module")
def built(tmp_path_factory, fixture_articles):
    tmp = tmp_path_factory.mktemp("parity")
    arts = tmp / "articles.jsonl"
    pairs = tmp / "pairs.jsonl"
    arts.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in fixture_articles))
    from tests.fixtures_articles import FIXTURE_STANCE

    pairs.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in FIXTURE_STANCE))
    cfg_path = tmp / "dataset.yaml"
    cfg_path.write_text(
        f"inputs:\n  - {{name: arts, path: {arts}, tasks: [boilerplate]}}\n"
        f"  - {{name: pairs, path: {pairs}, tasks: [stance]}}\n"
        "boilerplate: {weak: {use_gold: true}}\n"
        "topic: {enabled: false}\n"
        "stance: [{name: stance, inputs: [pairs]}]\n"
        "dedup: {enabled: false}\n"
    )
    build_datasets(load_dataset_config(cfg_path), tmp / "ds", progress=False)
    return tmp / "ds"


def _all_rows(path) -> list[dict]:
    dsd = load_from_disk(str(path))
    return [row for split in dsd.values() for row in split]


def _capture(bundle) -> list[dict]:
    seen: list[dict] = []
    real = bundle.predictor.predict_proba
    bundle.predictor.predict_proba = lambda rows: (seen.extend(rows), real(rows))[1]
    return seen


def test_boilerplate_rows_are_identical(built, sample_bundles, fixture_articles):
    tagger = load_tagger([str(sample_bundles["boilerplate"])])
    seen = _capture(tagger.bundles["boilerplate"])
    tagger.tag_batch([article_from_record(a) for a in fixture_articles])
    served = {r["id"]: {k: r[k] for k in BP_KEYS} for r in seen}
    trained = {r["id"]: {k: r[k] for k in BP_KEYS} for r in _all_rows(built / "boilerplate")}
    assert trained, "the builder wrote no boilerplate rows"
    for row_id, row in trained.items():
        assert served[row_id]["features"] == pytest.approx(row["features"], abs=1e-6)
        assert {k: v for k, v in served[row_id].items() if k != "features"} == {
            k: v for k, v in row.items() if k != "features"
        }


def test_stance_rows_are_identical(built, sample_bundles):
    from tests.fixtures_articles import FIXTURE_STANCE

    tagger = load_tagger([str(sample_bundles["stance"])], config=TaggerConfig())
    seen = _capture(tagger.bundles["stance"])
    tagger.tag_batch([article_from_record(p) for p in FIXTURE_STANCE])
    served = {(r["target"], r["text"]) for r in seen}
    trained = {(r["target"], r["text"]) for r in _all_rows(built / "stance")}
    assert trained and trained == served
