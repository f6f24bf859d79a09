"""Shared by the benchmarks: real articles from ``../shared/data`` and quickly trained sklearn bundles.

Nothing from ``../shared/data`` is copied into the repository: archives and bundles are written to
a folder the caller chooses (a temp dir by default).

Bundles (``train_quick_bundles``), trained with ``training.fit.train.train`` and the default
``SklearnModel`` config (word 1-2 + char 2-5 TF-IDF, 200k features, logistic regression), i.e. what
``khabar train`` gives a user who changes nothing:
- boilerplate: weak labels (``training.dataset.weak_labels.WeakLabeler``, ``use_gold=False``) over a
  seeded sample of SaudiNewsNet + ANT multi-source articles, every furniture example kept and story
  examples subsampled, at most ``max_examples``;
- topic: ANT multi-source articles of the same sample with their gold labels, text cleaned with the
  weak boilerplate labels (as the dataset builder does);
- stance: ANS claim/text pairs (official train -> train, dev -> validation and test).
They are realistic in size and shape, not tuned for accuracy.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = Path(os.environ.get("KHABAR_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_E5 = REPO.parent / "shared" / "models" / "multilingual-e5-small-ar"
ARTICLE_FILES = ("saudinewsnet_raw/articles.jsonl", "ant_corpus_multisource_v2_1/topic.jsonl")
ANS_FILE = "ans_stance/stance.jsonl"
# Every article is tagged for its stance toward this claim (an ANS-style headline claim).
STANCE_TARGET = "الحكومة تعلن خطة جديدة لدعم الاقتصاد"

for _var, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    os.environ.setdefault(_var, _value)


def require(path: Path, what: str) -> Path:
    """``path`` if it exists, else exit 0 with a clear message (benchmarks skip, never fail)."""
    if not path.exists():
        print(f"SKIP: {what} not found at {path}", file=sys.stderr)
        raise SystemExit(0)
    return path


def machine_line() -> str:
    """CPUs and load, printed with every result: timings on a shared machine need both."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"cpus={os.cpu_count()} loadavg(1/5/15 min)=({load}) date={time.strftime('%Y-%m-%d %H:%M')}"
    )


# ---------------------------------------------------------------- articles
def _read_lines(path: Path) -> list[bytes]:
    with open(path, "rb") as fh:
        return [line for line in fh if line.strip()]


def real_article_lines(data: Path, n: int | None = None) -> list[bytes]:
    """Raw JSONL lines of the two scraped corpora, interleaved (one of each in turn), first ``n``."""
    corpora = [_read_lines(require(data / f, f)) for f in ARTICLE_FILES]
    out: list[bytes] = []
    for i in range(max(len(c) for c in corpora)):
        out.extend(c[i] for c in corpora if i < len(c))
        if n is not None and len(out) >= n:
            break
    return out[:n] if n is not None else out


def write_archive(lines: list[bytes], path: Path, n: int) -> Path:
    """``n`` records cycling through ``lines``; repeats get a new id so every id stays unique."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for i in range(n):
            line = lines[i % len(lines)]
            rep = i // len(lines)
            if rep:
                rec = json.loads(line)
                rec["id"] = f"{rec.get('id')}~{rep}"
                line = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
            fh.write(line if line.endswith(b"\n") else line + b"\n")
    return path


def iter_ans(data: Path) -> Iterator[dict]:
    with open(require(data / ANS_FILE, ANS_FILE), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# ---------------------------------------------------------------- quick bundles
def _split(key: str, test_share: int = 5) -> str:
    return "test" if int(hashlib.md5(key.encode()).hexdigest(), 16) % test_share == 0 else "train"


def _save_dataset(rows_by_split: dict[str, list[dict]], labels: list[str], out: Path) -> Path:
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict

    datasets.disable_progress_bars()

    dsd = {
        name: Dataset.from_list(rows).cast_column("label", ClassLabel(names=labels))
        for name, rows in rows_by_split.items()
    }
    dsd.setdefault("validation", dsd["test"])
    DatasetDict(dsd).save_to_disk(str(out))
    return out


def _weak_datasets(data: Path, n_articles: int, max_examples: int, seed: int, root: Path) -> dict:
    """Boilerplate (weak labels) and topic (ANT gold, weakly cleaned) datasets from one sample."""
    from inference.errors import RecordError
    from inference.text.preprocess import boilerplate_inputs, topic_row
    from inference.text.schema import article_from_record
    from training.config import WeakLabelConfig
    from training.dataset.examples import boilerplate_rows
    from training.dataset.weak_labels import WeakLabeler

    rng = random.Random(seed)
    lines = real_article_lines(data)
    arts = []
    for line in rng.sample(lines, min(n_articles, len(lines))):
        try:
            arts.append(article_from_record(json.loads(line)))
        except RecordError:  # a few scraped records have no body; the tagger reports them
            continue
    labeler = WeakLabeler(WeakLabelConfig(use_gold=False))
    for art in arts:
        labeler.observe(art)
    labeler.finalize()
    bp: dict[str, list] = {"train": [], "test": []}
    topic: dict[str, list] = {"train": [], "test": []}
    for art in arts:
        inputs = boilerplate_inputs(art, labeler.rules_)
        weak = labeler.label(art, inputs=inputs)
        rows, _ = boilerplate_rows(art, inputs, weak)
        bp[_split(art.id)].extend(rows)
        if art.label:
            row = topic_row(art, [w.label for w in weak])
            topic[_split(art.id)].append({**row, "label": art.label})
    for split, rows in bp.items():  # keep all furniture, subsample story paragraphs
        cap = max_examples if split == "train" else max_examples // 4
        furniture = [r for r in rows if r["label"] == "boilerplate"]
        story = [r for r in rows if r["label"] == "content"]
        rng.shuffle(story)
        bp[split] = furniture[:cap] + story[: max(cap - len(furniture), 0)]
        for r in bp[split]:
            r.pop("provenance", None)
            r.pop("source", None)
    topics = sorted({r["label"] for rows in topic.values() for r in rows})
    return {
        "boilerplate": _save_dataset(bp, ["content", "boilerplate"], root / "boilerplate"),
        "topic": _save_dataset(topic, topics, root / "topic"),
    }


def _stance_dataset(data: Path, root: Path) -> Path:
    from inference.text.preprocess import stance_row

    rows: dict[str, list] = {"train": [], "test": []}
    for rec in iter_ans(data):
        row = stance_row(rec["id"], rec["claim"], rec["text"])
        rows["train" if rec.get("split") == "train" else "test"].append(
            {**row, "label": rec["label"]}
        )
    return _save_dataset(rows, ["agree", "disagree", "other"], root / "stance")


def train_quick_bundles(
    data: Path, out: Path, n_articles: int = 3000, max_examples: int = 6000, seed: int = 13
) -> dict[str, Path]:
    """Train one default-config sklearn bundle per task under ``out``; no MLflow tracking."""
    from training.config import TrainConfig
    from training.fit.train import train

    datasets = _weak_datasets(data, n_articles, max_examples, seed, out / "datasets")
    datasets["stance"] = _stance_dataset(data, out / "datasets")
    bundles = {}
    for task in ("boilerplate", "topic", "stance"):
        started = time.perf_counter()
        cfg = TrainConfig.model_validate(
            {
                "task": task,
                "data": {"dataset_dir": str(datasets[task])},
                "model": {"kind": "sklearn"},
                "tracking": {"enabled": False},
            }
        )
        result = train(cfg, out / "bundles" / task)
        bundles[task] = result.bundle_dir
        macro = (result.metrics.get("test") or {}).get("macro_f1")
        print(
            f"  trained {task}: {result.metrics['n_train']} examples, test macro_f1={macro}, "
            f"{time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
    return bundles


def bundles_from_dir(path: Path) -> dict[str, Path]:
    """``DIR/{boilerplate,topic,stance}`` bundle folders (those present)."""
    found = {t: path / t for t in ("boilerplate", "topic", "stance") if (path / t).is_dir()}
    if not found:
        raise SystemExit(f"{path}: no boilerplate/ topic/ stance/ bundle folders inside")
    return found
