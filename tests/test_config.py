"""The typed config: every shipped YAML validates; overrides, env expansion and errors naming keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.tagger import TaggerConfig, load_tagger_config
from training.config import (
    ConfigError,
    DatasetConfig,
    TrainConfig,
    apply_overrides,
    flatten,
    load_dataset_config,
    load_train_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _yaml_files(sub: str) -> list[Path]:
    return sorted((CONFIGS / sub).rglob("*.yaml"))


def test_configs_folder_is_not_empty():
    assert len(_yaml_files("datasets")) >= 2 and len(_yaml_files("train")) >= 8


@pytest.mark.parametrize("path", _yaml_files("datasets"), ids=lambda p: p.name)
def test_every_dataset_config_validates(path):
    assert isinstance(load_dataset_config(path), DatasetConfig)


@pytest.mark.parametrize("path", _yaml_files("train"), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_train_config_validates(path, monkeypatch):
    monkeypatch.setenv("KHABAR_E5_MODEL", "/models/e5")
    cfg = load_train_config(path)
    assert isinstance(cfg, TrainConfig)
    if cfg.model.kind == "transformer" and "e5" in path.name:
        assert cfg.model.name_or_path == "/models/e5"


def test_tagger_config_validates():
    assert isinstance(load_tagger_config(CONFIGS / "tagger.yaml"), TaggerConfig)


def test_dotted_overrides_are_typed():
    raw = apply_overrides(
        {"model": {"C": 1.0}}, ["model.C=2.5", "training.epochs=3", "a.b.c=[1, 2]"]
    )
    assert raw == {"model": {"C": 2.5}, "training": {"epochs": 3}, "a": {"b": {"c": [1, 2]}}}


def test_override_reaches_the_validated_config():
    cfg = load_train_config(CONFIGS / "train" / "topic_sklearn.yaml", ["model.C=0.5"])
    assert cfg.model.C == 0.5


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.sklearn\.Cee: Extra inputs are not permitted"):
        load_train_config(CONFIGS / "train" / "topic_sklearn.yaml", ["model.Cee=1"])


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        load_train_config(CONFIGS / "train" / "topic_sklearn.yaml", ["training.epochs=many"])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_train_config(CONFIGS / "train" / "topic_sklearn.yaml", ["model.C"])
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "nope.yaml")


def test_env_default_and_flatten(tmp_path, monkeypatch):
    monkeypatch.delenv("KHABAR_TEST_MODEL", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text(
        "task: stance\ndata: {dataset_dir: d}\n"
        "model: {kind: transformer, name_or_path: '${KHABAR_TEST_MODEL:-org/model}'}\n"
    )
    cfg = load_train_config(path)
    assert cfg.model.name_or_path == "org/model"
    flat = flatten(cfg)
    assert flat["model.name_or_path"] == "org/model" and flat["task"] == "stance"
    assert flat["training.learning_rate"] == cfg.training.learning_rate
