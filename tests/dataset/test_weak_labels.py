"""Weak boilerplate labels: each evidence source fires with its provenance, and only where it should."""

from __future__ import annotations

import importlib.util
import pickle
import sys

import pytest

from inference.text.schema import Article
from training.config import RepetitionConfig, WeakLabelConfig
from training.dataset.weak_labels import BloomFilter, WeakLabel, WeakLabeler, text_hash

STORY_1 = (
    "أعلنت وزارة الصحة اليوم عن افتتاح ثلاثة مستشفيات جديدة في المنطقة الشرقية "
    "بطاقة استيعابية تبلغ ألف سرير لخدمة المرضى."
)
STORY_2 = (
    "وأوضح المتحدث الرسمي باسم الوزارة أن المشروعات الجديدة تأتي ضمن خطة شاملة "
    "لتطوير الخدمات الصحية في جميع مناطق المملكة خلال الأعوام المقبلة."
)
STORY_3 = (
    "وكانت الوزارة قد أطلقت في وقت سابق حملة توعوية واسعة للتعريف بالخدمات الإلكترونية "
    "التي تقدمها للمراجعين عبر تطبيقاتها الرسمية."
)
AGENCY_SENTENCE = (
    "وقالت وكالة الأنباء السعودية (واس) إن خادم الحرمين الشريفين استقبل في قصر السلام "
    "بجدة عددا من الأمراء والوزراء وكبار المسؤولين."
)
OTHER_TITLE = "الحكومة تعلن خطة جديدة لدعم قطاع الإسكان"


def article(
    aid: str, paragraphs: list[str], title: str = "", source: str = "news", **kw
) -> Article:
    return Article(id=aid, paragraphs=paragraphs, title=title, source=source, **kw)


def fitted(articles: list[Article], **cfg) -> WeakLabeler:
    labeler = WeakLabeler(WeakLabelConfig(use_gold=False, **cfg))
    for art in articles:
        labeler.observe(art)
    labeler.finalize()
    return labeler


def provenances(labels: list[WeakLabel]) -> list[str]:
    return [w.provenance for w in labels]


def filler(n: int, source: str = "news") -> list[Article]:
    """Distinct unrelated articles, so per-source counts are not all from the test's articles."""
    return [
        article(f"fill-{source}-{i}", [f"{STORY_1} رقم {i}", f"{STORY_2} رقم {i}"], source=source)
        for i in range(n)
    ]


# ---------------------------------------------------------------- shape of the output
def test_one_label_per_paragraph_and_empty_ones_are_empty():
    art = article("a", ["", STORY_1, "   ", STORY_2, ""])
    labels = fitted([art]).label(art)
    assert len(labels) == len(art.paragraphs)
    for i in (0, 2, 4):
        assert labels[i] == WeakLabel(None, "empty")
    assert labels[1].label == labels[3].label == "content"
    assert labels[1].provenance == "content:long"


def test_label_before_finalize_is_an_error():
    labeler = WeakLabeler(WeakLabelConfig(use_gold=False))
    with pytest.raises(RuntimeError, match="finalize"):
        labeler.label(article("a", [STORY_1]))


def test_observe_after_finalize_is_an_error():
    labeler = fitted([article("a", [STORY_1])])
    with pytest.raises(RuntimeError, match="after finalize"):
        labeler.observe(article("b", [STORY_2]))


def test_fitted_labeler_pickles_for_worker_processes():
    art = article("a", [STORY_1, "المصدر: وكالة الأنباء السعودية"])
    labeler = fitted([art])
    clone = pickle.loads(pickle.dumps(labeler))
    assert clone.label(art) == labeler.label(art)


def test_gold_labels_pass_through_when_enabled():
    art = article(
        "g",
        [STORY_1, "", "فرانس برس"],
        labels=["content", None, "boilerplate"],
        extra={"kinds": [None, None, "credit"]},
    )
    labeler = WeakLabeler(WeakLabelConfig(use_gold=True))
    labeler.observe(art)
    labeler.finalize()
    labels = labeler.label(art)
    assert [w.label for w in labels] == ["content", None, "boilerplate"]
    assert provenances(labels) == ["gold", "empty", "gold"]
    assert labels[2].kind == "credit"
    weak = fitted([art]).label(art)  # use_gold off: the weak sources decide
    assert weak[2].provenance.startswith("rule:")


# ---------------------------------------------------------------- rules
def test_furniture_rules_fire_with_their_name_and_kind():
    art = article(
        "r",
        [
            STORY_1,
            STORY_2,
            "المصدر: وكالة الأنباء السعودية",
            "جميع الحقوق محفوظة © 2018",
            "تابعونا على تويتر وفيسبوك",
        ],
    )
    labels = fitted([art]).label(art)
    assert labels[2] == WeakLabel("boilerplate", "rule:source_line", "credit")
    assert labels[3] == WeakLabel("boilerplate", "rule:copyright", "legal")
    assert labels[4] == WeakLabel("boilerplate", "rule:follow_us", "promo")


def test_agency_name_inside_a_sentence_is_story_but_alone_is_a_credit():
    art = article("w", [AGENCY_SENTENCE, STORY_2, "(واس)"])
    labels = fitted([art]).label(art)
    assert labels[0] == WeakLabel("content", "content:long")
    assert labels[2] == WeakLabel("boilerplate", "rule:agency_alone", "credit")


def test_byline_at_the_top_is_a_credit_but_inside_the_story_abstains():
    art = article("b", ["محمد العتيبي - الرياض", STORY_1, "سالم الحربي - جدة", STORY_2])
    labels = fitted([art]).label(art)
    assert labels[0].label == "boilerplate" and labels[0].kind == "credit"
    assert labels[2] == WeakLabel(None, "abstain")  # between story paragraphs: a list item?


def test_labelled_photo_credit_is_furniture_anywhere():
    art = article("pc", [STORY_1, "تصوير: علي الزهراني", STORY_2])
    assert fitted([art]).label(art)[1] == WeakLabel("boilerplate", "rule:source_line", "credit")


def test_tatweel_used_as_a_dash_still_marks_a_byline():
    art = article("t", ["الرياضي ـ جدة", STORY_1, STORY_2])
    assert fitted([art]).label(art)[0] == WeakLabel(
        "boilerplate", "rule:byline_then_place", "credit"
    )


def test_author_field_repeated_as_a_paragraph_is_a_byline():
    art = article("au", ["مراسل الشؤون المحلية", STORY_1], extra={"author": "مراسل الشؤون المحلية"})
    assert fitted([art]).label(art)[0] == WeakLabel("boilerplate", "byline", "credit")


# ---------------------------------------------------------------- repetition
def test_line_repeated_across_articles_of_one_source_is_furniture():
    line = "نشرة الظهيرة اليومية"
    arts = [article(f"n{i}", [f"{STORY_1} {i}", line]) for i in range(5)]
    labeler = fitted(arts + filler(3))
    assert labeler.label(arts[0])[1] == WeakLabel("boilerplate", "repetition", "other")


def test_repetition_counts_per_source_not_across_sources():
    line = "نشرة الظهيرة اليومية"
    arts = [article(f"a{i}", [f"{STORY_1} {i}", line], source="a") for i in range(4)]
    arts += [article(f"b{i}", [f"{STORY_2} {i}", line], source="b") for i in range(4)]
    labeler = fitted(arts)
    assert labeler.label(arts[0])[1] == WeakLabel(None, "abstain")
    assert labeler.label(arts[-1])[1] == WeakLabel(None, "abstain")


def test_min_articles_comes_from_the_config():
    line = "نشرة الظهيرة اليومية"
    arts = [article(f"n{i}", [f"{STORY_1} {i}", line]) for i in range(3)]
    labeler = fitted(arts, repetition=RepetitionConfig(min_articles=3))
    assert labeler.label(arts[0])[1].provenance == "repetition"


def test_the_same_article_observed_twice_counts_once():
    art = article("d", [STORY_1, "نشرة الظهيرة اليومية"])
    labeler = fitted([art] * 6)
    assert labeler.label(art)[1] == WeakLabel(None, "abstain")
    assert labeler.source_articles_ == {"news": 1}


def test_recurring_sign_off_and_subheading_are_not_furniture():
    arts = [
        article(f"c{i}", [f"{STORY_1} {i}", "أبرز النتائج:", f"{STORY_2} {i}", "إلى اللقاء.."])
        for i in range(6)
    ]
    labels = fitted(arts).label(arts[0])
    assert labels[1] == WeakLabel(None, "abstain")
    assert labels[3] == WeakLabel(None, "abstain")


# ---------------------------------------------------------------- related headlines
def test_paragraph_equal_to_another_articles_title_is_a_related_link():
    linked = article("x", [STORY_3], title=OTHER_TITLE)
    art = article("y", [STORY_1, OTHER_TITLE, STORY_2], title="افتتاح مستشفيات جديدة")
    labels = fitted([linked, art]).label(art)
    assert labels[1] == WeakLabel("boilerplate", "related_title", "related")


def test_near_equal_wording_of_another_title_is_a_related_link():
    linked = article("x", [STORY_3], title="ما هي فرص نجاح الوساطة بين فرقاء ليبيا؟")
    art = article("y", [STORY_1, "ما هي فرص نجاح الوساطة بين الفرقاء في ليبيا؟", STORY_2])
    labels = fitted([linked, art]).label(art)
    assert labels[1] == WeakLabel("boilerplate", "related_title", "related")


def test_titles_of_another_source_are_not_links():
    linked = article("x", [STORY_3], title=OTHER_TITLE, source="other")
    art = article("y", [STORY_1, OTHER_TITLE, STORY_2], title="افتتاح مستشفيات جديدة")
    assert fitted([linked, art]).label(art)[1] == WeakLabel(None, "abstain")


def test_own_title_at_the_top_is_story():
    art = article("o", [OTHER_TITLE, STORY_1, STORY_2], title=OTHER_TITLE)
    other = article("o2", [STORY_3], title=OTHER_TITLE)  # another article with the same title
    labels = fitted([art, other]).label(art)
    assert labels[0] == WeakLabel("content", "content:title")


def test_headlines_listed_under_read_also_are_related():
    art = article(
        "ra",
        [
            STORY_1,
            "اقرأ أيضاً:",
            "الحكومة تعلن خطة جديدة لدعم الإسكان",
            "ارتفاع أسعار النفط في الأسواق العالمية",
            STORY_2,
        ],
    )
    labels = fitted([art]).label(art)
    assert labels[1] == WeakLabel("boilerplate", "rule:read_also_header", "related")
    assert provenances(labels[2:4]) == ["related_block", "related_block"]
    assert labels[4] == WeakLabel("content", "content:long")


def test_inline_for_more_link_does_not_swallow_the_next_subheading():
    art = article(
        "fm", [STORY_1, "للمزيد: سوريا.. من يستهدف المستشفيات؟", "ترحيب دولي بالاتفاق", STORY_2]
    )
    labels = fitted([art]).label(art)
    assert labels[1] == WeakLabel("boilerplate", "rule:for_more", "related")
    assert labels[2] == WeakLabel(None, "abstain")


# ---------------------------------------------------------------- content and abstain
def test_short_ambiguous_lines_abstain():
    art = article("s", [STORY_1, "تغير المعادلة", STORY_2, "خطوة مهمة"])
    labels = fitted([art]).label(art)
    assert labels[1] == labels[3] == WeakLabel(None, "abstain")


def test_short_complete_statement_is_content_but_a_question_abstains():
    art = article(
        "q",
        [
            STORY_1,
            "ولم يعلق الإليزيه على هذه المعلومات حتى الآن.",
            "ما هي فرص نجاح الوساطة بين الفرقاء في ليبيا؟",
            STORY_2,
        ],
    )
    labels = fitted([art]).label(art)
    assert labels[1] == WeakLabel("content", "content:sentence")
    assert labels[2] == WeakLabel(None, "abstain")


def test_bloom_filter_remembers_what_it_saw():
    bloom = BloomFilter(bits_log2=16, n_hashes=3)
    h = text_hash("news", "line")
    assert bloom.add(h) is False
    assert bloom.add(h) is True
    assert bloom.add(text_hash("news", "another line")) is False


# ---------------------------------------------------------------- real data
def _load_eval():
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location(
        "weak_labels_eval", REPO / "benchmarks" / "weak_labels_eval.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.data
def test_weak_furniture_labels_are_precise_on_the_gold_dev_set(shared_data):
    bench = _load_eval()
    tally, _ = bench.evaluate(shared_data, limit=1500)
    m = tally.metrics()
    assert m["furniture_precision"] >= 0.9, m
    assert m["story_marked_furniture"] <= 0.01, m
    assert m["furniture_recall"] >= 0.5, m


# ---------------------------------------------------------------- fast paths (same answers)
# Characters that stress the key functions: Arabic letters, diacritics and tatweel, presentation
# forms, no-break space before combining marks, Latin case (dotted I, final sigma), punctuation,
# underscores, zero-width characters, an emoji (beyond the BMP), a lone surrogate.
_KEY_ALPHABET = (
    [chr(c) for c in range(0x0600, 0x0700, 3)]
    + [chr(c) for c in range(0xFE70, 0xFF00, 5)]
    + list(" \t\n\xa0\xa0.,:;!?_-«»()،؛؟\u0640\u0640\u064b\u0653\u0654\u0301\u200c\u200d\ufeff")
    + list("aAzZİıΣσς0159٣")
    + ["\U0001f600", "\ud800", "\uffff"]
)


def _random_texts(seed: int, n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [
        "".join(rng.choice(_KEY_ALPHABET) for _ in range(rng.randrange(0, 14))) for _ in range(n)
    ]


def test_match_key_fast_path_equals_the_regex_definition():
    import re

    from training.dataset.line_keys import match_key

    def reference(normalized: str) -> str:
        key = re.sub(r"[\W_]+", " ", normalized).strip().lower()
        return key or normalized.strip()

    for text in _random_texts(1, 5000) + [STORY_1, STORY_2, "...المزيد", "  "]:
        assert match_key(text) == reference(text), repr(text)


def test_batched_paragraph_keys_equal_one_by_one():
    from inference.text.normalize import normalize
    from training.dataset.line_keys import match_key, match_keys, paragraph_keys

    texts = _random_texts(2, 3000) + [STORY_1, AGENCY_SENTENCE, "\ufefb\ufef7 ﷺ", "إِنَّ ـــ"]
    assert paragraph_keys(texts) == [match_key(normalize(t)) for t in texts]
    normalized = [normalize(t) for t in texts]
    assert match_keys(normalized) == [match_key(t) for t in normalized]
    for i in range(0, len(texts), 7):  # small batches too (each batch is one numpy pass)
        assert paragraph_keys(texts[i : i + 7]) == [
            match_key(normalize(t)) for t in texts[i : i + 7]
        ]


def test_bloom_filter_batch_add_equals_sequential_adds():
    import random

    import numpy as np

    rng = random.Random(5)
    for bits, k in [(6, 1), (8, 3), (10, 4), (16, 5)]:
        one, many = BloomFilter(bits, k), BloomFilter(bits, k)
        for _ in range(6):
            hashes = [rng.getrandbits(64) for _ in range(rng.randrange(0, 50))]
            hashes += hashes[:3]  # repeats inside one batch
            rng.shuffle(hashes)
            expected = [one.add(h) for h in hashes]
            assert many.add_many(np.array(hashes, dtype=np.uint64)).tolist() == expected
            assert many._bits == one._bits


def test_observing_a_batch_equals_observing_one_by_one():
    from training.dataset.weak_stats import observation_keys_many

    arts = (
        filler(12)
        + filler(5, source="other")
        + [
            article("t1", [STORY_1, "تابعونا على تويتر"], title=OTHER_TITLE),
            article("t2", [STORY_2, "تابعونا على تويتر"], title=OTHER_TITLE + " اليوم"),
            article("t1-again", [STORY_1, "تابعونا على تويتر"], title=OTHER_TITLE),  # same story
        ]
    )
    one = WeakLabeler(WeakLabelConfig(use_gold=False))
    for art in arts:
        one.observe(art)
    one.finalize()
    batch = WeakLabeler(WeakLabelConfig(use_gold=False))
    batch.observe_keys(observation_keys_many(arts))
    batch.finalize()
    assert batch.repeat_counts_ == one.repeat_counts_
    assert batch.source_articles_ == one.source_articles_
    assert batch.title_hashes_.tolist() == one.title_hashes_.tolist()


def test_label_inputs_equal_the_boilerplate_inputs_the_labeler_reads(fixture_articles):
    from inference.text.furniture import default_rules
    from inference.text.preprocess import boilerplate_inputs
    from inference.text.schema import article_from_record
    from tests.sample_bundles import sample_articles
    from training.dataset.label_inputs import LABEL_FEATURES, label_inputs

    rules = default_rules()
    arts = [article_from_record(a) for a in fixture_articles]
    arts += [article("x", ["", STORY_1, "اقرأ أيضاً:", OTHER_TITLE, "المصدر: واس", "   ", "نهاية."])]
    arts += sample_articles()  # three have a teaser inlined after a related block
    assert any(p.features["related_teaser"] for art in arts for p in label_inputs(art, rules))
    for art in arts:
        full, light = boilerplate_inputs(art, rules), label_inputs(art, rules)
        assert [(p.index, p.text, p.rule, p.rule_kind) for p in light] == [
            (p.index, p.text, p.rule, p.rule_kind) for p in full
        ]
        assert [p.features for p in light] == [
            {name: p.features[name] for name in LABEL_FEATURES} for p in full
        ]


def test_labeling_many_articles_equals_labeling_each(fixture_articles):
    from inference.text.furniture import default_rules
    from inference.text.preprocess import boilerplate_inputs
    from inference.text.schema import article_from_record

    arts = [article_from_record(a) for a in fixture_articles] + filler(4)
    labeler = fitted(arts)
    given = [boilerplate_inputs(a, default_rules()) if i % 2 else None for i, a in enumerate(arts)]
    assert labeler.label_many(arts, given) == [labeler.label(a) for a in arts]
