"""The one typed config schema (pydantic, ``extra="forbid"``) for dataset building and training.

YAML files in ``configs/`` are validated against these models. ``--set a.b=c`` overrides are applied
to the raw mapping before validation (values parsed as YAML scalars), ``${VAR:-default}`` in strings
is expanded from the environment (how a config names a hub id yet runs on a local folder offline),
and every error names the dotted key at fault.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Task = Literal["boilerplate", "topic", "stance"]


class ConfigError(ValueError):
    """A config file, key or override that is wrong; the message names the dotted key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# ---------------------------------------------------------------- dataset building
class InputSpec(Strict):
    path: str
    name: str | None = None
    tasks: list[Literal["boilerplate", "topic", "stance"]] = ["boilerplate", "topic"]
    encoding: Literal["auto", "utf-8", "cp1256"] = "auto"
    limit: int | None = Field(default=None, ge=1)

    @property
    def label(self) -> str:
        return self.name or Path(self.path).parent.name or Path(self.path).stem


class RepetitionConfig(Strict):
    enabled: bool = True
    min_articles: int = Field(default=5, ge=2)
    min_share: float = Field(default=0.0, ge=0, le=1)
    max_words: int = Field(default=30, ge=1)


class RelatedTitlesConfig(Strict):
    enabled: bool = True
    max_words: int = Field(default=25, ge=1)


class WeakLabelConfig(Strict):
    rules: list[dict] | None = None  # None: the shipped inference/text/rules/furniture_v1.json
    repetition: RepetitionConfig = RepetitionConfig()
    related_titles: RelatedTitlesConfig = RelatedTitlesConfig()
    content_min_words: int = Field(default=12, ge=1)
    use_gold: bool = True


class SyntheticPagesConfig(Strict):
    # Share of the training split's articles also emitted as a composed page whose trailer inlines
    # other stories (training/dataset/synthetic_pages.py). 0 turns it off.
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
    # The furniture lines and headlines are collected from this many input articles (the first
    # ones of each boilerplate input, shared equally).
    bank_articles: int = Field(default=5000, ge=1)


class BoilerplateDatasetConfig(Strict):
    enabled: bool = True
    weak: WeakLabelConfig = WeakLabelConfig()
    synthetic_pages: SyntheticPagesConfig = SyntheticPagesConfig()
    # Files of {id (article id), labels (one per paragraph: content | boilerplate | null)}, e.g.
    # written by `khabar annotate import`; a label given there replaces the paragraph's weak label.
    annotations: list[str] = []


class TopicDatasetConfig(Strict):
    name: str = "topic"  # the output folder; several topic outputs: see DatasetConfig.topics
    enabled: bool = True
    labels: list[str] | None = None
    label_map: dict[str, str] = {}
    section_rules: dict[str, str] = {}
    url_rules: dict[str, str] = {}
    clean_boilerplate: bool = True
    inputs: list[str] | None = None  # input names; None: every input with task "topic"
    annotations: list[str] = []  # files of {id (article id), label}: replace the article's label


class StanceSetConfig(Strict):
    name: str = "stance"
    inputs: list[str] | None = None
    annotations: list[str] = []  # files of {id (article id), claim|target, label}
    labels: list[str] | None = None
    label_map: dict[str, str] = {}
    # "target": every pair of one claim/target lands in the same split (ANS: many pairs per claim);
    # "pair": pairs are placed independently (Mawqif: 3 targets, so grouping would be meaningless).
    group_by: Literal["pair", "target"] = "pair"


class DedupConfig(Strict):
    enabled: bool = True
    threshold: float = Field(default=0.8, gt=0, le=1)
    num_perm: int = Field(default=64, ge=8)
    bands: int = Field(default=16, ge=1)
    shingle_words: int = Field(default=3, ge=1)
    batch_size: int = Field(default=256, ge=1)  # documents hashed per vectorized batch
    # Articles are compared on their paragraphs of at least this many words (all of them when none
    # is that long): the story, not the site's short furniture lines, says whether two are copies.
    min_paragraph_words: int = Field(default=12, ge=0)

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(
                f"dedup.num_perm ({self.num_perm}) must be a multiple of dedup.bands ({self.bands})"
            )
        return self


class SplitConfig(Strict):
    method: Literal["random", "source", "time"] = "random"
    fractions: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
    seed: int = 13
    respect_record_split: bool = True
    test_sources: list[str] = []

    @model_validator(mode="after")
    def _fractions_sum(self) -> SplitConfig:
        total = sum(self.fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.fractions must sum to 1, got {total}")
        return self


class DatasetConfig(Strict):
    inputs: list[InputSpec]
    boilerplate: BoilerplateDatasetConfig = BoilerplateDatasetConfig()
    topic: TopicDatasetConfig = TopicDatasetConfig()
    # More topic outputs, each with its own name/inputs/labels (``topic`` stays the first one).
    topics: list[TopicDatasetConfig] = []
    stance: list[StanceSetConfig] = []
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    out_dir: str = "datasets"
    # Relative input paths resolve against this. Default: the config's folder's parent; a relative
    # base_dir is relative to the config file's folder.
    base_dir: str | None = None
    workers: int = Field(default=1, ge=1)  # processes for the per-record work of both passes

    def topic_outputs(self) -> list[TopicDatasetConfig]:
        """The enabled topic outputs: ``topic`` then ``topics``; names must be unique."""
        outs = [t for t in [self.topic, *self.topics] if t.enabled]
        names = [t.name for t in outs] + [s.name for s in self.stance]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes or "boilerplate" in names:
            raise ValueError(
                f"dataset output names must be unique and not 'boilerplate': {dupes or names}"
            )
        return outs


# ---------------------------------------------------------------- training
class TransitivePairs(Strict):
    """Stance labels for ``training.fit.pair_augment`` (claim pairs where agree means
    "restates")."""

    agree: str
    disagree: str | None = None
    unrelated: str | None = None


class DataRef(Strict):
    dataset_dir: str
    train_split: str = "train"
    eval_split: str = "validation"
    test_split: str = "test"
    max_train_examples: int | None = Field(default=None, ge=1)
    filter: dict[str, Any] = {}
    # Stance only: add the pairs that follow by transitivity through a claim's paraphrases to the
    # training split (training/fit/pair_augment.py). None: off.
    transitive_pairs: TransitivePairs | None = None
    # sklearn only: the weight of the training examples of each provenance, e.g. {review: 20} to
    # let a few reviewed articles count against many weak labels; others weigh 1.
    provenance_weights: dict[str, Annotated[float, Field(gt=0)]] = {}
    # Boilerplate only: train on the synthetic pages of the dataset (boilerplate.synthetic_pages
    # of the dataset config). A model without the cohesion features (model.page_cohesion: false)
    # cannot tell an inlined story from a story resuming after a mid-article block, and learns to
    # flag both: leave-one-outlet-out content recall 0.975 with them, 1.000 without (BENCHMARKS.md).
    synthetic_pages: bool = True


class SklearnModel(Strict):
    kind: Literal["sklearn"] = "sklearn"
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = (2, 5)
    max_features: int | None = 200_000
    min_df: int = 2
    sublinear_tf: bool = True
    classifier: Literal["logreg", "linear_svc"] = "logreg"
    C: float = 4.0
    class_weight: Literal["balanced"] | None = "balanced"
    calibrate: bool = True
    max_iter: int = 2000
    # Topic only: weight of a one-hot of the article's source (outlet) next to the text features.
    # Outlets file the same story under different sections (ANT: AlArabiya has no middleEast), so
    # the outlet tells the model which taxonomy applies. Unknown or missing sources add nothing.
    source_weight: float | None = Field(default=None, gt=0)
    # Boilerplate only: read the page-cohesion features (inference.text.cohesion). False gives the
    # fast model: the tagger then skips computing them (0.69 -> 0.39 ms of features an article).
    # It catches far less of a second story inlined in a page's trailer (leave-one-outlet-out
    # inlined-story pages F1 0.775 vs 0.994; BENCHMARKS.md, configs/train/boilerplate_sklearn_fast.yaml).
    page_cohesion: bool = True


class TransformerModel(Strict):
    kind: Literal["transformer"] = "transformer"
    name_or_path: str
    max_length: int = Field(default=128, ge=8)
    stride: int = Field(default=32, ge=0)
    max_chunks: int = Field(default=8, ge=1)
    text_prefix: str = ""
    # Stance pair order; "both": each pair in both orders, the two predictions averaged (for
    # symmetric claim pairs such as ANS's paraphrase / contradiction / unrelated).
    pair_first: Literal["target", "text", "both"] = "target"
    pooling: Literal["mean", "max"] = "mean"
    # Classifier input: the first token ("cls", the stock HF head) or the masked mean of the token
    # states ("mean": what sentence encoders such as e5 are pretrained to produce).
    head: Literal["cls", "mean"] = "cls"


class TrainingParams(Strict):
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    class_weights: Literal["none", "balanced", "sqrt"] = "sqrt"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    early_stopping_patience: int | None = 2
    seed: int = 42
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    max_steps: int | None = None
    threads: int | None = None


class TrackingConfig(Strict):
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str | None = None  # default: khabar-<task>
    artifact_location: str | None = None  # default: ./mlartifacts next to the sqlite file
    run_name: str | None = None
    enabled: bool = True


class TrainConfig(Strict):
    task: Task
    data: DataRef
    model: Annotated[SklearnModel | TransformerModel, Field(discriminator="kind")]
    training: TrainingParams = TrainingParams()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _task_specific_options(self) -> TrainConfig:
        if getattr(self.model, "source_weight", None) and self.task != "topic":
            raise ValueError(f"model.source_weight is a topic feature, not for task {self.task!r}")
        if getattr(self.model, "page_cohesion", True) is False and self.task != "boilerplate":
            raise ValueError(
                f"model.page_cohesion is a boilerplate feature, not for task {self.task!r}"
            )
        if not self.data.synthetic_pages and self.task != "boilerplate":
            raise ValueError(
                f"data.synthetic_pages is for boilerplate datasets, not task {self.task!r}"
            )
        if self.data.transitive_pairs and self.task != "stance":
            raise ValueError(f"data.transitive_pairs is for stance pairs, not task {self.task!r}")
        if self.data.provenance_weights and self.model.kind != "sklearn":
            raise ValueError("data.provenance_weights is for sklearn models")
        return self


# ---------------------------------------------------------------- loading
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (``3``, ``true``, ``[1, 2]``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    return raw


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def load_raw(path: str | Path) -> dict:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return raw


def load_config(path: str | Path, model: type[BaseModel], overrides: list[str] | None = None):
    raw = _expand_env(apply_overrides(load_raw(path), overrides or []))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


def load_dataset_config(path: str | Path, overrides: list[str] | None = None) -> DatasetConfig:
    cfg = load_config(path, DatasetConfig, overrides)
    if cfg.base_dir is None:
        cfg.base_dir = str(Path(path).resolve().parent.parent)
    elif not Path(cfg.base_dir).is_absolute():
        # A relative base_dir is relative to the config file, so the config works from any cwd.
        cfg.base_dir = str((Path(path).resolve().parent / cfg.base_dir).resolve())
    return cfg


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    return load_config(path, TrainConfig, overrides)


def flatten(cfg: BaseModel | dict, prefix: str = "") -> dict[str, Any]:
    """``{"model.C": 4.0, ...}``: the resolved config as MLflow params."""
    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else cfg
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
