"""sklearn training end to end on tiny, trivially separable Arabic datasets (one per task).

The datasets are built here with ``datasets`` from rows made by ``inference.text.preprocess``,
exactly the rows the dataset builder writes, so these tests do not depend on the builder. Also
imported by ``test_tracking.py`` and ``test_evaluate.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from inference.predictors.bundle import load_bundle, read_bundle_meta
from inference.predictors.sklearn import (
    MODEL_FILE,
    SklearnPredictor,
    UnsafeModelError,
    load_skops,
    rows_to_frame,
    save_skops,
    skops_types,
)
from inference.text.preprocess import boilerplate_inputs, boilerplate_row, stance_row, topic_row
from inference.text.schema import Article
from training.config import TrainConfig
from training.fit.train import TrainError, train
from training.tracking.evaluate import gold_labels, split_rows

# ---------------------------------------------------------------- tiny corpora
TOPIC_WORDS = {
    "sports": ["المباراة", "الفريق", "الهدف", "الدوري", "اللاعب", "المدرب", "الملعب", "البطولة"],
    "economy": ["الأسعار", "السوق", "البنك", "النفط", "التضخم", "الاستثمار", "الأسهم", "الميزانية"],
    "politics": [
        "الحكومة",
        "البرلمان",
        "الانتخابات",
        "الوزير",
        "الحزب",
        "المعارضة",
        "الدستور",
        "السفير",
    ],
}
FILLER = ["قال", "اليوم", "في", "بعد", "أن", "مع", "على", "خلال", "الأسبوع", "الماضي"]

CLAIMS = [
    ("ارتفاع أسعار النفط في الأسواق العالمية", "أسعار النفط ترتفع في الأسواق العالمية اليوم"),
    ("افتتاح مطار جديد في العاصمة", "تم افتتاح مطار جديد في العاصمة صباح اليوم"),
    ("فوز المنتخب بكأس البطولة", "المنتخب يفوز بكأس البطولة بعد مباراة قوية"),
    ("زيادة رواتب المعلمين", "الحكومة تقر زيادة رواتب المعلمين"),
    ("إغلاق المدارس بسبب العاصفة", "إغلاق المدارس بسبب العاصفة الثلجية"),
    ("انخفاض معدل البطالة", "معدل البطالة ينخفض هذا العام"),
]
UNRELATED = [
    "الطقس مشمس ولطيف في الساحل",
    "مهرجان للكتاب يفتح أبوابه للزوار",
    "افتتاح معرض للفنون التشكيلية",
    "وصفة جديدة لطبق تقليدي",
]

STORY = [
    "أعلنت وزارة الصحة اليوم عن خطة وطنية جديدة لتطوير المستشفيات في جميع المحافظات خلال العام المقبل.",
    "وقال المتحدث باسم الوزارة إن الخطة تشمل بناء مراكز صحية حديثة وتدريب آلاف الأطباء والممرضين.",
    "وأضاف أن الحكومة خصصت ميزانية كبيرة لتنفيذ المشروع على مراحل متتالية تبدأ في الربيع.",
    "وأشار إلى أن المواطنين سيلمسون تحسنا واضحا في جودة الخدمات الطبية خلال الأشهر القادمة.",
    "ويأتي هذا الإعلان بعد سلسلة من الاجتماعات بين المسؤولين وممثلي القطاع الصحي في البلاد.",
    "وأكد الوزير أن الوزارة ستتابع تنفيذ الخطة عن كثب وتنشر تقارير دورية عن سير العمل.",
]
FURNITURE = [
    "المصدر: وكالة الأنباء",
    "اقرأ أيضاً:",
    "تابعونا على تويتر وفيسبوك",
    "جميع الحقوق محفوظة 2024",
    "شارك هذا الخبر",
]


def _topic_articles(n_per_class: int, rng: random.Random) -> list[tuple[Article, str]]:
    out = []
    for label, words in TOPIC_WORDS.items():
        for i in range(n_per_class):
            paras = [" ".join(rng.sample(words, 4) + rng.sample(FILLER, 3)) for _ in range(2)]
            title = " ".join(rng.sample(words, 3))
            out.append((Article(id=f"{label}-{i}", paragraphs=paras, title=title), label))
    return out


def topic_examples(n_per_class: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{**topic_row(a), "label": y} for a, y in _topic_articles(n_per_class, rng)]


def stance_examples(seed: int, repeat: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for r in range(repeat):
        for i, (claim, agree) in enumerate(CLAIMS):
            disagree = "نفت مصادر رسمية " + claim + " ولم يحدث ذلك"
            other = rng.choice(UNRELATED)
            for label, text in (("agree", agree), ("disagree", disagree), ("other", other)):
                out.append({**stance_row(f"{r}-{i}-{label}", claim, text), "label": label})
    return out


def boilerplate_articles(n: int, seed: int) -> list[dict]:
    """Raw records with gold ``labels``: furniture at the top and bottom, story in between."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        story = rng.sample(STORY, 4)
        head, tail = rng.sample(FURNITURE, 1), rng.sample(FURNITURE, 2)
        paragraphs = [*head, story[0], "", *story[1:], *tail]
        labels = [
            "boilerplate",
            "content",
            None,
            "content",
            "content",
            "content",
            "boilerplate",
            "boilerplate",
        ]
        records.append(
            {
                "id": f"bp-{seed}-{i}",
                "title": "خطة صحية",
                "paragraphs": paragraphs,
                "labels": labels,
            }
        )
    return records


def boilerplate_examples(n: int, seed: int) -> list[dict]:
    out = []
    for rec in boilerplate_articles(n, seed):
        article = Article(id=rec["id"], paragraphs=rec["paragraphs"], title=rec["title"])
        for para in boilerplate_inputs(article):
            out.append({**boilerplate_row(para), "label": rec["labels"][para.index]})
    return out


LABELS = {
    "topic": ["sports", "economy", "politics"],
    "stance": ["agree", "disagree", "other"],
    "boilerplate": ["content", "boilerplate"],
}


def task_splits(task: str) -> dict[str, list[dict]]:
    if task == "topic":
        return {
            "train": topic_examples(8, 1),
            "validation": topic_examples(3, 2),
            "test": topic_examples(4, 3),
        }
    if task == "stance":
        return {
            "train": stance_examples(1, repeat=2),
            "validation": stance_examples(2),
            "test": stance_examples(3),
        }
    return {
        "train": boilerplate_examples(8, 1),
        "validation": boilerplate_examples(3, 2),
        "test": boilerplate_examples(4, 3),
    }


def make_dataset(task: str, root: Path, splits: dict[str, list[dict]] | None = None) -> Path:
    """Save a DatasetDict like ``khabar build-dataset`` does (``label`` is a ClassLabel)."""
    import datasets

    splits = splits or task_splits(task)
    label_feature = datasets.ClassLabel(names=LABELS[task])
    out = {}
    for name, rows in splits.items():
        ds = datasets.Dataset.from_list(
            [{**r, "label": LABELS[task].index(r["label"])} for r in rows]
        )
        out[name] = ds.cast_column("label", label_feature)
    path = root / "datasets" / task
    datasets.DatasetDict(out).save_to_disk(str(path))
    return path


def make_config(task: str, dataset_dir: Path, **model) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "task": task,
            "data": {"dataset_dir": str(dataset_dir)},
            "model": {
                "kind": "sklearn",
                "min_df": 1,
                "char_ngrams": [2, 4],
                "max_features": 5000,
                "C": 10.0,
                **model,
            },
            "tracking": {"enabled": False},
        }
    )


# ---------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One bundle per task, trained without tracking (tracking is covered in test_tracking.py)."""
    root = tmp_path_factory.mktemp("train")
    out = {}
    for task in ("topic", "stance", "boilerplate"):
        ds = make_dataset(task, root)
        cfg = make_config(task, ds)
        out[task] = (cfg, train(cfg, root / "bundles" / task))
    return out


@pytest.mark.parametrize("task", ["topic", "stance", "boilerplate"])
def test_fits_training_set_and_beats_chance_on_held_out(trained, task):
    import datasets

    cfg, result = trained[task]
    bundle = load_bundle(result.bundle_dir)
    train_split = datasets.load_from_disk(cfg.data.dataset_dir)["train"]
    predicted, _ = bundle.predict(split_rows(train_split, task))
    gold = gold_labels(train_split, LABELS[task])
    assert np.mean([p == g for p, g in zip(predicted, gold, strict=True)]) == 1.0  # overfits
    chance = 1 / len(LABELS[task])
    assert result.metrics["test"]["accuracy"] > chance + 0.3
    assert result.metrics["test"]["macro_f1"] >= 0.8
    assert result.metrics["validation"]["n"] > 0 and "n_train" in result.metrics
    if task == "boilerplate":
        assert result.metrics["test"]["furniture_f1"] >= 0.8
        assert result.metrics["test"]["content_recall"] >= 0.9


@pytest.mark.parametrize("task", ["topic", "stance", "boilerplate"])
def test_bundle_round_trip_gives_identical_predictions(trained, task):
    cfg, result = trained[task]
    meta = read_bundle_meta(result.bundle_dir)
    assert meta["task"] == task and meta["kind"] == "sklearn" and meta["labels"] == LABELS[task]
    assert meta["version"] == result.version and meta["config"]["model"]["C"] == 10.0
    assert meta["metrics"]["test"]["macro_f1"] == result.metrics["test"]["macro_f1"]
    assert ("furniture_rules" in meta) == (task == "boilerplate")
    rows = task_splits(task)["test"]
    first = load_bundle(result.bundle_dir).predict_proba(rows)
    second = load_bundle(str(result.bundle_dir)).predict_proba(rows)
    assert first.shape == (len(rows), len(LABELS[task]))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)


def test_scores_follow_bundle_label_order(trained):
    """A bundle listing labels in another order than the model's classes_ gets reordered columns."""
    _, result = trained["topic"]
    model = load_skops(result.bundle_dir / MODEL_FILE)
    rows = task_splits("topic")["test"][:5]
    straight = SklearnPredictor(model, "topic", list(model.classes_)).predict_proba(rows)
    flipped = SklearnPredictor(model, "topic", list(model.classes_)[::-1]).predict_proba(rows)
    np.testing.assert_array_equal(straight, flipped[:, ::-1])


def test_linear_svc_calibrated_and_filter_and_limit(tmp_path):
    ds = make_dataset("topic", tmp_path)
    cfg = make_config("topic", ds, classifier="linear_svc")
    cfg.data.filter = {"label": ["sports", "economy"]}
    cfg.data.max_train_examples = 10
    result = train(cfg, tmp_path / "svc")
    assert result.metrics["n_train"] == 10
    assert result.metrics["test"]["n"] == 8  # politics filtered out of every split
    probs = load_bundle(result.bundle_dir).predict_proba(task_splits("topic")["test"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_missing_dataset_and_split_errors(tmp_path):
    with pytest.raises(TrainError, match="not found"):
        train(make_config("topic", tmp_path / "nope"), tmp_path / "out")
    ds = make_dataset("topic", tmp_path, {"train": topic_examples(2, 1)})
    with pytest.raises(TrainError, match="no held-out split"):
        train(make_config("topic", ds), tmp_path / "out")


def test_stance_pair_features_see_negation_and_numbers():
    rows = [
        stance_row("1", "ارتفاع الأسعار 20 بالمئة", "لم ترتفع الأسعار بل انخفضت 5 بالمئة"),
        stance_row("2", "ارتفاع الأسعار", "ارتفاع الأسعار"),
    ]
    frame = rows_to_frame("stance", rows)
    assert frame.loc[0, "text_negation"] == 1.0 and frame.loc[0, "negation_mismatch"] == 1.0
    assert frame.loc[0, "digits_mismatch"] == 1.0
    assert frame.loc[1, "word_jaccard"] == 1.0 and frame.loc[1, "text_negation"] == 0.0


def test_skops_refuses_types_outside_the_allow_list(tmp_path):
    from collections import OrderedDict

    path = save_skops({"ok": np.arange(3), "bad": OrderedDict(a=1)}, tmp_path / "model.skops")
    assert "collections.OrderedDict" in skops_types(path)
    with pytest.raises(UnsafeModelError, match="collections.OrderedDict"):
        load_skops(path)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(UnsafeModelError, match="not a skops file"):
        load_skops(tmp_path / "junk.skops")


def test_skops_round_trip_packs_vocabularies(tmp_path):
    """Vocabularies travel as one string array (not a JSON node per term) and come back intact."""
    import json
    import zipfile

    from training.config import SklearnModel
    from training.fit.sklearn_models import fit_pipeline

    rows = task_splits("topic")["train"]
    frame = rows_to_frame("topic", rows)
    model = fit_pipeline("topic", SklearnModel(min_df=1), frame, [r["label"] for r in rows])
    vocab = dict(model.named_steps["features"].transformers_[0][1].vocabulary_)
    path = save_skops(model, tmp_path / MODEL_FILE)
    assert model.named_steps["features"].transformers_[0][1].vocabulary_ == vocab  # untouched
    schema = zipfile.ZipFile(path).read("schema.json").decode("utf-8")
    assert '"vocabulary_"' not in schema and "khabar_vocabulary_terms_" in schema
    assert len(json.loads(schema)) > 0
    loaded = load_skops(path)
    assert loaded.named_steps["features"].transformers_[0][1].vocabulary_ == vocab
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_output_folder_rules(tmp_path):
    ds = make_dataset("topic", tmp_path)
    cfg = make_config("topic", ds)
    first = train(cfg, tmp_path / "out")
    second = train(cfg, tmp_path / "out")  # a previous bundle is replaced
    assert read_bundle_meta(second.bundle_dir)["version"] == second.version
    assert first.as_dict()["bundle_dir"] == str(tmp_path / "out")
    (tmp_path / "other" / "model").mkdir(parents=True)
    with pytest.raises(TrainError, match="not a khabar bundle"):
        train(cfg, tmp_path / "other")
    with pytest.raises(TrainError, match="needs tracking"):
        train(cfg, tmp_path / "x", register="name")


def _outlet_articles(seed: int) -> list[dict]:
    """Two outlets file the same kind of story under different sections (as ANT's do): outlet A
    calls regional politics "politics", outlet B calls it "economy"; sports is sports everywhere."""
    rng = random.Random(seed)
    rows = []
    for i, (article, label) in enumerate(_topic_articles(6, rng)):
        if label == "economy":
            continue
        source = "outlet-a" if i % 2 else "outlet-b"
        if label == "politics" and source == "outlet-b":
            label = "economy"
        article.source = source
        rows.append({**topic_row(article), "label": label})
    return rows


def test_topic_source_feature_learns_each_outlets_taxonomy(tmp_path):
    splits = {"train": _outlet_articles(1) * 2, "validation": _outlet_articles(2)}
    data = make_dataset("topic", tmp_path, splits)
    assert {r["source"] for r in splits["train"]} == {
        "outlet-a",
        "outlet-b",
    }  # topic_row carries it
    with_source = train(make_config("topic", data, source_weight=1.0), tmp_path / "src").bundle_dir
    text_only = train(make_config("topic", data), tmp_path / "text").bundle_dir
    held_out = _outlet_articles(3)
    politics = [r for r in held_out if r["label"] in ("politics", "economy")]
    got, _ = load_bundle(with_source).predict(politics)
    assert got == [r["label"] for r in politics]  # same words, the outlet decides
    got_text, _ = load_bundle(text_only).predict(politics)
    assert got_text != [r["label"] for r in politics]  # without it the two taxonomies collide
    unknown = [{**r, "source": "never-seen"} for r in held_out[:3]] + [
        {k: v for k, v in held_out[3].items() if k != "source"}  # old rows without the key
    ]
    assert load_bundle(with_source).predict_proba(unknown).shape == (4, 3)
    clf = load_bundle(with_source).predictor.model.named_steps["clf"]
    assert clf.coef_.dtype == np.float32  # the one-hot block keeps the matrix float32


def test_source_weight_is_refused_outside_topic(tmp_path):
    with pytest.raises(ValueError, match="source_weight is a topic feature"):
        make_config("stance", tmp_path, source_weight=1.0)


def test_page_cohesion_is_refused_outside_boilerplate(tmp_path):
    with pytest.raises(ValueError, match="page_cohesion is a boilerplate feature"):
        make_config("topic", tmp_path, page_cohesion=False)
    assert make_config("boilerplate", tmp_path, page_cohesion=False).model.page_cohesion is False


def test_synthetic_pages_false_trains_without_the_page_rows(tmp_path):
    splits = task_splits("boilerplate")
    pages = [{**r, "article_id": r["article_id"] + "~page"} for r in splits["train"][:7]]
    data = make_dataset("boilerplate", tmp_path, {**splits, "train": splits["train"] + pages})
    cfg = make_config("boilerplate", data)
    with_pages = train(cfg, tmp_path / "with").metrics["n_train"]
    cfg.data.synthetic_pages = False
    without = train(cfg, tmp_path / "without").metrics["n_train"]
    assert (with_pages, without) == (len(splits["train"]) + 7, len(splits["train"]))
    with pytest.raises(ValueError, match="synthetic_pages is for boilerplate datasets"):
        TrainConfig.model_validate(
            {**cfg.model_dump(), "task": "topic", "model": {"kind": "sklearn"}}
        )
