"""The tagger: output contract, boilerplate-first cleaning, stance targets, error isolation."""

from __future__ import annotations

import json

import pytest

from inference.tagger import TaggerConfig, load_tagger
from inference.text.preprocess import boilerplate_inputs, boilerplate_row
from inference.text.schema import article_from_record

NEWS_PAGE = {
    "id": "page-1",
    "title": "الحكومة تعلن خطة لدعم المزارعين في موسم الجفاف",
    "paragraphs": [
        "الرياض - واس: أعلنت وزارة الزراعة اليوم خطة بقيمة ٢ مليار ريال لدعم المزارعين المتضررين من الجفاف الذي ضرب عدة مناطق هذا العام.",
        "وقال وزير الزراعة في مؤتمر صحفي إن الخطة تشمل قروضا ميسرة وتعويضات مباشرة للمزارعين الصغار.",
        "",
        "المصدر: وكالة الأنباء السعودية",
        "اقرأ أيضاً:",
        "ارتفاع أسعار القمح في الأسواق العالمية",
        "تابعونا على تويتر وفيسبوك للمزيد من الأخبار",
    ],
    "claim": "الحكومة تدعم المزارعين المتضررين من الجفاف",
}


@pytest.fixture(scope="module")
def tagger(sample_bundles):
    refs = [str(sample_bundles[t]) for t in ("boilerplate", "topic", "stance")]
    cfg = TaggerConfig(stance_targets=["ارتفاع أسعار الغذاء"])
    return load_tagger(refs, config=cfg)


def test_output_contract(tagger):
    (rec,) = tagger.tag_batch([article_from_record(NEWS_PAGE)])
    assert set(rec) == {"id", "boilerplate", "topic", "stance", "models"}
    labels = rec["boilerplate"]["labels"]
    assert len(labels) == len(NEWS_PAGE["paragraphs"])  # one entry per input paragraph
    assert labels[2] is None  # the empty paragraph
    assert set(labels) - {None} <= {"content", "boilerplate"}
    assert rec["boilerplate"]["removed"] == labels.count("boilerplate")
    assert rec["topic"]["label"] in tagger.bundles["topic"].labels
    assert 0.0 <= rec["topic"]["score"] <= 1.0
    assert [s["target"] for s in rec["stance"]] == ["ارتفاع أسعار الغذاء", NEWS_PAGE["claim"]]
    assert all(s["label"] in {"agree", "disagree", "other"} for s in rec["stance"])
    assert rec["models"] == {t: b.version for t, b in tagger.bundles.items()}
    json.dumps(rec, ensure_ascii=False)  # serializable as is


def test_story_kept_and_furniture_flagged(tagger):
    (rec,) = tagger.tag_batch([article_from_record(NEWS_PAGE)])
    labels = rec["boilerplate"]["labels"]
    assert labels[0] == "content" and labels[1] == "content"
    assert labels[3] == labels[4] == labels[6] == "boilerplate"


def test_batch_equals_one_by_one(tagger, fixture_articles):
    arts = [article_from_record(a) for a in fixture_articles]
    assert tagger.tag_batch(arts) == [tagger.tag(a) for a in arts]


def test_task_left_out_when_model_not_given(sample_bundles):
    tagger = load_tagger([str(sample_bundles["topic"])])
    (rec,) = tagger.tag_batch([article_from_record(NEWS_PAGE)])
    assert set(rec) == {"id", "topic", "models"}
    assert list(rec["models"]) == ["topic"]


def test_one_bad_article_does_not_sink_the_batch(tagger, monkeypatch, fixture_articles):
    arts = [article_from_record(a) for a in fixture_articles[:4]]
    bundle = tagger.bundles["topic"]
    real = bundle.predictor.predict_proba

    def flaky(rows):
        if any(r["id"] == arts[2].id for r in rows):
            raise RuntimeError("model exploded on this text")
        return real(rows)

    monkeypatch.setattr(bundle.predictor, "predict_proba", flaky)
    out = tagger.tag_batch(arts)
    assert [r["id"] for r in out] == [a.id for a in arts]
    assert out[2] == {
        "id": arts[2].id,
        "error": {"type": "RuntimeError", "message": "model exploded on this text"},
    }
    assert all("topic" in r for i, r in enumerate(out) if i != 2)


def test_tagger_uses_the_builders_rows(tagger):
    """Train/serve parity: the tagger feeds the model exactly boilerplate_row(boilerplate_inputs())."""
    art = article_from_record(NEWS_PAGE)
    seen = []
    bundle = tagger.bundles["boilerplate"]
    real = bundle.predictor.predict_proba
    bundle.predictor.predict_proba = lambda rows: (seen.extend(rows), real(rows))[1]
    try:
        tagger.tag_batch([art])
    finally:
        bundle.predictor.predict_proba = real
    assert seen == [boilerplate_row(p) for p in boilerplate_inputs(art, tagger.rules)]


def test_two_models_for_one_task_is_an_error(sample_bundles):
    from inference.errors import BundleError

    with pytest.raises(BundleError, match="two models for task 'topic'"):
        load_tagger([str(sample_bundles["topic"])] * 2)
