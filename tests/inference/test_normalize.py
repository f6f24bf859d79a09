"""Golden tests for the Arabic normalizer (rules v2; v1 kept for old bundles) and paragraph
segmentation."""

from __future__ import annotations

import pytest

from inference.text.normalize import (
    KNOWN_NORMALIZER_VERSIONS,
    NORMALIZER_VERSION,
    UnknownNormalizerVersion,
    load_rules,
    normalize,
    split_paragraphs,
)

GOLDEN = [
    # diacritics (tashkeel) and tatweel go; alef variants, alef maqsura and teh marbuta unify
    ("أَعْلَنَتْ وِزارَةُ الصِّحَّةِ عن حملـــةٍ جديدةٍ", "اعلنت وزاره الصحه عن حمله جديده"),
    ("إلى مستشفى المدينة الجامعي", "الي مستشفي المدينه الجامعي"),
    ("آلاف المتظاهرين في ٱلعاصمة", "الاف المتظاهرين في العاصمه"),
    # Arabic-Indic and Persian digits become ASCII; Arabic decimal separator too
    ("ارتفع المؤشر ١٫٥٪ إلى ٢٠٢٥ نقطة", "ارتفع المؤشر 1.5٪ الي 2025 نقطه"),
    ("سجّل ۱۲۳ هدفاً", "سجل 123 هدفا"),
    # bidi controls and zero-width characters vanish; whitespace collapses
    ("\u200fالرياض\u200e  -   واس\u200b:\tأعلن", "الرياض - واس: اعلن"),
    # NFKC folds presentation forms (lam-alef ligature) into base letters
    ("\ufefbعب كرة القدم", "لاعب كره القدم"),
    # the superscript alef (dagger alef) is a diacritic here
    ("هٰذا الرحمٰن", "هذا الرحمن"),
    # Latin text and punctuation survive untouched
    ("قالت Reuters: «الاتفاق قريب»!", "قالت Reuters: «الاتفاق قريب»!"),
    ("", ""),
    ("   \u00a0  ", ""),
    # v2: a tatweel standing alone is a dash (bylines 'name - city'); inside a word it still goes
    ("الرياضي ـ جدة", "الرياضي - جده"),
    ("جدة ـــ نجيب الجداوي", "جده - نجيب الجداوي"),
    ("ـ بند أول\nـ بند ثان", "- بند اول - بند ثان"),
    ("حملـــة الـرياض ـالخبر", "حمله الرياض الخبر"),
]


@pytest.mark.parametrize(("raw", "expected"), GOLDEN)
def test_golden(raw, expected):
    assert normalize(raw) == expected


def test_idempotent():
    for raw, _ in GOLDEN:
        once = normalize(raw)
        assert normalize(once) == once


def test_rules_are_versioned_data():
    rules = load_rules(NORMALIZER_VERSION)
    assert rules["version"] == NORMALIZER_VERSION
    assert NORMALIZER_VERSION in KNOWN_NORMALIZER_VERSIONS
    assert "tashkeel" in rules["delete"] and "alef_variants" in rules["map"]


def test_v1_still_deletes_every_tatweel():
    # a bundle trained with v1 must see the text exactly as it was trained on
    assert normalize("الرياضي ـ جدة", version="1") == "الرياضي جده"
    assert normalize("حملـــة", version="1") == normalize("حملـــة", version="2") == "حمله"


def test_normalizing_by_lines_equals_whole_text():
    text = "ـ عنوان\nالرياضي ـ جدة\n\nـــ\nكلمـة ـ"
    whole = normalize(text.replace("\n", " "))
    assert normalize(text) == whole == "- عنوان الرياضي - جده - كلمه -"


def test_unknown_version_is_refused():
    with pytest.raises(UnknownNormalizerVersion, match="99"):
        normalize("نص", version="99")


def test_split_paragraphs_keeps_empty_ones():
    assert split_paragraphs("أ\n\nب\r\nج\rد") == ["أ", "", "ب", "ج", "د"]
    assert split_paragraphs("") == []
    assert split_paragraphs("سطر واحد") == ["سطر واحد"]
