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


@pytest.fixture(scope="module")
def fast_bundle(tmp_path_factory):
    """A sample boilerplate bundle (tests/sample_bundles.py) with ``model.page_cohesion: false``."""
    from tests.sample_bundles import build_sample_datasets
    from training.config import TrainConfig
    from training.fit.train import train

    tmp = tmp_path_factory.mktemp("fast")
    data = build_sample_datasets(tmp / "datasets")
    cfg = TrainConfig.model_validate(
        {
            "task": "boilerplate",
            "data": {"dataset_dir": str(data["boilerplate"])},
            "model": {"kind": "sklearn", "min_df": 1, "calibrate": False, "page_cohesion": False},
            "tracking": {"enabled": False},
        }
    )
    return train(cfg, tmp / "bundle").bundle_dir


def test_fast_bundle_skips_cohesion_and_sees_the_trained_columns(
    built, fast_bundle, sample_bundles, fixture_articles, monkeypatch
):
    from inference.text import preprocess
    from inference.text.cohesion import COHESION_FEATURES
    from inference.text.preprocess import FEATURE_NAMES

    fast = load_tagger([str(fast_bundle)])
    bundle = fast.bundles["boilerplate"]
    read = bundle.predictor.feature_columns
    assert read and read.isdisjoint(COHESION_FEATURES) and "pos_rel" in read
    assert fast.boilerplate_cohesion is False
    assert load_tagger([str(sample_bundles["boilerplate"])]).boilerplate_cohesion is True

    def no_cohesion(*args, **kwargs):
        raise AssertionError("the fast model's tagger computed the cohesion features")

    monkeypatch.setattr(preprocess, "cohesion_flags", no_cohesion)
    seen = _capture(bundle)
    articles = [article_from_record(a) for a in fixture_articles]
    tagged = fast.tag_batch(articles)
    assert all("error" not in rec for rec in tagged)
    monkeypatch.undo()

    # Every column the model reads is the builder's value; only unread columns were skipped.
    cols = [i for i, name in enumerate(FEATURE_NAMES) if name in read]
    trained = {r["id"]: r for r in _all_rows(built / "boilerplate")}
    assert trained
    for row in seen:
        if row["id"] in trained:
            got = [row["features"][i] for i in cols]
            assert got == pytest.approx([trained[row["id"]]["features"][i] for i in cols], abs=1e-6)
    # ... so the labels equal those the model gives the builder's full rows.
    full = {r["id"]: r for r in seen}
    for row_id, row in trained.items():
        full[row_id] = {**full[row_id], "features": row["features"]}
    labels, _ = bundle.predict(list(full.values()))
    served = {
        f"{rec['id']}#{i}": lab
        for rec in tagged
        for i, lab in enumerate(rec["boilerplate"]["labels"])
        if lab is not None
    }
    assert served == dict(zip(full, labels, strict=True))
