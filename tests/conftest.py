"""Shared fixtures. Environment is offline (no hub); MLflow goes to a tmp sqlite store per test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KHABAR_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixture_articles() -> list[dict]:
    from tests.fixtures_articles import FIXTURE_ARTICLES

    return [dict(a) for a in FIXTURE_ARTICLES]


@pytest.fixture()
def articles_jsonl(tmp_path, fixture_articles) -> Path:
    path = tmp_path / "articles.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for art in fixture_articles:
            fh.write(json.dumps(art, ensure_ascii=False) + "\n")
    return path


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh sqlite tracking store (and artifact root) for this test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def sample_bundles(tmp_path_factory) -> dict[str, Path]:
    """One tiny sklearn bundle per task, trained once per session on the sample corpus."""
    from tests.sample_bundles import train_sample_bundles

    return train_sample_bundles(tmp_path_factory.mktemp("sample_bundles"))


@pytest.fixture(scope="module")
def ray_runtime():
    """A local Ray runtime for a module's tests (2 CPUs), or skip when Ray is not installed."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 1024**2,
            logging_level="WARNING",
        )
    yield ray
    if started:
        ray.shutdown()
