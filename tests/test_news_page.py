"""A page like a real Arabic news site's, tagged by a boilerplate model trained on weak labels only.

The model is trained the way khabar trains one on data without gold labels: weak labels
(``training.dataset.weak_labels.WeakLabeler``, ``use_gold=False``) over the shipped sample corpus,
then ``training.fit.train.train`` (sklearn). The page below is never observed nor trained on. Its
text was written for this test (fictional site, people and figures).

The story inlined under "إقرأ أيضاً:" (another story's headline, then its first paragraph) is the
hard case: its paragraph is a long news sentence, story text by shape. It is caught by its place in
the page (``inference.text.page_structure.teaser_flags``): after a related block that opens after
furniture, with furniture after it and no story after it. The weak labeler marks such paragraphs
(``related_teaser``) in the three sample articles that have one, and the model learns the feature.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from inference.tagger import load_tagger
from inference.text.preprocess import boilerplate_inputs, boilerplate_row
from inference.text.schema import article_from_record
from tests.sample_bundles import _save, sample_articles

PAGE = {
    "id": "alofoq-health-0412",
    "url": "https://alofoq-news.example/health/flu-vaccination-campaign",
    "source": "الأفق نيوز",
    "title": "وزارة الصحة تطلق حملة وطنية للتطعيم ضد الإنفلونزا الموسمية",
    "paragraphs": [
        "عمّان - بترا",
        "أطلقت وزارة الصحة، صباح الأحد، حملة وطنية واسعة للتطعيم ضد الإنفلونزا الموسمية تستهدف "
        "أكثر من مليون ونصف مليون مواطن ومقيم في مختلف المحافظات، وتستمر حتى نهاية شهر كانون "
        "الثاني المقبل.",
        "وقال وزير الصحة في مؤتمر صحفي عقده في مقر الوزارة إن الحملة تمنح الأولوية لكبار السن "
        "والأطفال دون الخامسة والحوامل والمصابين بأمراض مزمنة، مشيراً إلى أن اللقاح متوفر مجاناً "
        "في جميع المراكز الصحية الحكومية.",
        "وأوضح الوزير أن الوزارة وزّعت أكثر من ثمانمئة ألف جرعة على المستشفيات والمراكز الصحية "
        "خلال الأسبوعين الماضيين، وأنها خصصت فرقاً متنقلة لزيارة القرى والمناطق النائية التي "
        "يصعب على سكانها الوصول إلى المراكز.",
        "من جهتها، دعت نقابة الأطباء المواطنين إلى الإقبال على التطعيم مبكراً، لافتةً إلى أن "
        "ذروة انتشار الفيروس تكون عادة بين منتصف كانون الأول ونهاية شباط، وأن اللقاح يحتاج إلى "
        "نحو أسبوعين ليمنح الجسم المناعة الكافية.",
        "المصدر: وكالة الأنباء الأردنية (بترا)",
        "إقرأ أيضاً:",
        "ارتفاع أسعار الخضار في الأسواق المركزية مع بداية فصل الشتاء",
        "شهدت الأسواق المركزية في العاصمة خلال الأيام الماضية ارتفاعاً ملحوظاً في أسعار الخضار، "
        "إذ تضاعف سعر البندورة والخيار مقارنة بالشهر الماضي، وعزا تجار ذلك إلى تراجع الإنتاج "
        "المحلي مع انخفاض درجات الحرارة.",
        "حمّل تطبيق الأفق نيوز على هاتفك لتصلك الأخبار العاجلة أولاً بأول",
        "مقالات مشابهة",
        "• مستشفى الجامعة يفتتح قسماً جديداً لعلاج أمراض القلب عند الأطفال",
        "• دراسة: النوم أقل من ست ساعات يضعف استجابة الجسم للقاحات",
        "• الصحة العالمية تحذر من موسم إنفلونزا أشد من المعتاد هذا العام",
    ],
}
STORY = [1, 2, 3, 4]
FURNITURE = {
    0: "agency credit line",
    5: "source line",
    6: "read-also header",
    7: "inlined story: headline",
    8: "inlined story: first paragraph",
    9: "app promo",
    10: "related-articles header",
    11: "related headline 1",
    12: "related headline 2",
    13: "related headline 3",
}


def _split(article_id: str) -> str:
    return "test" if int(hashlib.md5(article_id.encode()).hexdigest(), 16) % 5 == 0 else "train"


@pytest.fixture(scope="module")
def weak_bundle(tmp_path_factory) -> Path:
    """A boilerplate bundle trained on weak labels of the sample corpus (gold labels ignored)."""
    from training.config import TrainConfig, WeakLabelConfig
    from training.dataset.examples import boilerplate_rows
    from training.dataset.weak_labels import WeakLabeler
    from training.fit.train import train

    articles = sample_articles()
    assert PAGE["id"] not in {a.id for a in articles}
    labeler = WeakLabeler(WeakLabelConfig(use_gold=False))
    for art in articles:
        labeler.observe(art)
    labeler.finalize()
    rows: dict[str, list] = {"train": [], "test": []}
    for art in articles:
        inputs = boilerplate_inputs(art, labeler.rules_)
        found, _ = boilerplate_rows(art, inputs, labeler.label(art, inputs=inputs))
        assert all(not r["provenance"].startswith("gold") for r in found)
        rows[_split(art.id)] += [
            {k: v for k, v in r.items() if k not in ("provenance", "source")} for r in found
        ]
    root = tmp_path_factory.mktemp("weak_boilerplate")
    data = _save(rows, ["content", "boilerplate"], root / "dataset")
    cfg = TrainConfig.model_validate(
        {
            "task": "boilerplate",
            "data": {"dataset_dir": str(data)},
            "model": {"kind": "sklearn", "min_df": 1, "calibrate": False, "C": 10.0},
            "tracking": {"enabled": False},
        }
    )
    return train(cfg, root / "bundle").bundle_dir


@pytest.fixture(scope="module")
def page_labels(weak_bundle) -> list[str | None]:
    tagger = load_tagger([str(weak_bundle)])
    record = tagger.tag(article_from_record(PAGE))
    labels = record["boilerplate"]["labels"]
    assert len(labels) == len(PAGE["paragraphs"])
    return labels


def test_every_story_paragraph_is_kept(page_labels):
    assert [page_labels[i] for i in STORY] == ["content"] * len(STORY)


@pytest.mark.parametrize("index", sorted(FURNITURE), ids=[FURNITURE[i] for i in sorted(FURNITURE)])
def test_furniture_is_flagged(page_labels, index):
    assert page_labels[index] == "boilerplate", PAGE["paragraphs"][index]


def test_page_is_not_in_the_training_rows(weak_bundle):
    """The page's own paragraphs were never examples (the model saw only the sample corpus)."""
    import datasets

    page_texts = {boilerplate_row(p)["text"] for p in boilerplate_inputs(article_from_record(PAGE))}
    page_texts -= {"اقرا ايضا:", "مقالات مشابهه"}  # generic headers the corpus uses too
    dsd = datasets.load_from_disk(str(weak_bundle.parent / "dataset"))
    seen = {t for split in dsd.values() for t in split["text"]}
    assert not page_texts & seen
