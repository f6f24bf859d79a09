"""Page layout flags: related-headline blocks and the other stories' teasers inlined after them."""

from __future__ import annotations

from inference.text.page_structure import related_block_flags, teaser_flags
from inference.text.preprocess import boilerplate_inputs
from inference.text.schema import Article
from tests.dataset.test_weak_labels import OTHER_TITLE, STORY_1, STORY_2, STORY_3, fitted

TEASER = (
    "شهدت الأسواق المركزية في العاصمة خلال الأيام الماضية ارتفاعاً ملحوظاً في أسعار الخضار، "
    "إذ تضاعف سعر البندورة والخيار مقارنة بالشهر الماضي."
)
SOURCE = "المصدر: وكالة الأنباء الأردنية (بترا)"
READ_ALSO = "إقرأ أيضاً:"
APP = "حمّل تطبيق الأفق نيوز على هاتفك لتصلك الأخبار العاجلة أولاً بأول"


def teasers(paragraphs: list[str]) -> list[int]:
    """Indexes of the paragraphs whose ``related_teaser`` feature is on."""
    art = Article(id="p", paragraphs=paragraphs, title="عنوان", source="s")
    return [p.index for p in boilerplate_inputs(art) if p.features["related_teaser"]]


def test_teaser_in_the_trailer_is_flagged():
    page = [STORY_1, STORY_2, SOURCE, READ_ALSO, OTHER_TITLE, TEASER, APP]
    assert teasers(page) == [5]


def test_two_paragraph_teaser_is_flagged_but_a_long_run_is_the_story_resuming():
    assert teasers([STORY_1, SOURCE, READ_ALSO, OTHER_TITLE, TEASER, STORY_3, APP]) == [4, 5]
    run = [TEASER, STORY_3, STORY_2, STORY_1]  # 4 paragraphs: more than a teaser
    assert teasers([STORY_1, SOURCE, READ_ALSO, OTHER_TITLE, *run, APP]) == []


def test_mid_article_read_also_is_not_a_teaser():
    # The header follows a story paragraph: the story resumes after the block.
    assert teasers([STORY_1, READ_ALSO, OTHER_TITLE, STORY_2, APP]) == []
    assert teasers([STORY_1, READ_ALSO, OTHER_TITLE, STORY_2, STORY_3, SOURCE]) == []


def test_no_teaser_without_furniture_after_it_or_with_story_after_it():
    assert teasers([STORY_1, SOURCE, READ_ALSO, OTHER_TITLE, TEASER]) == []  # the page just ends
    assert teasers([STORY_1, SOURCE, READ_ALSO, OTHER_TITLE, TEASER, APP, STORY_2]) == []


def test_flags_on_plain_lists():
    kinds = [None, "credit", "related", None, None, "promo"]
    opens = [False, False, True, False, False, False]
    headline = [False, True, True, True, False, True]
    in_block = related_block_flags(kinds, opens, headline)
    assert in_block == [False, False, False, True, False, False]
    has_rule = [k is not None for k in kinds]
    assert teaser_flags(has_rule, opens, in_block, [30, 5, 2, 8, 30, 9]) == [
        False, False, False, False, True, False,
    ]  # fmt: skip
    # A related link trailer keeps a block open; another kind of furniture closes it.
    assert related_block_flags(
        [None, "related", None, "related", None, "promo", None],
        [False, True, False, False, False, False, False],
        [True] * 7,
    ) == [False, False, True, False, True, False, False]


def test_weak_labeler_marks_the_teaser_furniture_and_keeps_the_story():
    page = [STORY_1, STORY_2, SOURCE, READ_ALSO, OTHER_TITLE, TEASER, APP]
    art = Article(id="page", paragraphs=page, title="عنوان الخبر", source="s")
    labels = fitted([art]).label(art)
    assert labels[5].label == "boilerplate" and labels[5].provenance == "related_teaser"
    assert [labels[i].label for i in (0, 1)] == ["content", "content"]
    # The same paragraph after a mid-article block is the story resuming.
    mid = Article(id="mid", paragraphs=[STORY_1, READ_ALSO, OTHER_TITLE, TEASER, APP], source="s")
    assert fitted([mid]).label(mid)[3].label == "content"
