"""Story cohesion features (inference/text/cohesion.py) through the shared preprocessing."""

from __future__ import annotations

from inference.text.cohesion import COHESION_FEATURES, cohesion_flags, topic_stems
from inference.text.preprocess import FEATURE_NAMES, boilerplate_inputs
from inference.text.schema import Article

TITLE = "البرلمان يقر ميزانية التعليم الجديدة بزيادة كبيرة في رواتب المعلمين"
STORY = [
    "أقر البرلمان اليوم ميزانية التعليم الجديدة التي تتضمن زيادة كبيرة في رواتب المعلمين وبناء مدارس جديدة في المحافظات.",
    "وقال رئيس لجنة التعليم في البرلمان إن الميزانية الجديدة تخصص للمعلمين والمدارس أكثر مما خصصته أي ميزانية سابقة.",
    "وأضاف أن رواتب المعلمين ستزيد اعتباراً من العام الدراسي المقبل وأن بناء المدارس يبدأ قريباً في المحافظات.",
]
OTHER = [
    "فاز فريق النادي الأهلي على منافسه الزمالك بثلاثة أهداف نظيفة في نهائي كأس الدوري الممتاز لكرة القدم مساء الجمعة.",
    "وسجل مهاجم الفريق هدفين في الشوط الأول قبل أن يضيف لاعب الوسط الهدف الثالث في الدقائق الأخيرة من المباراة.",
]


def features(paragraphs: list[str]) -> list[dict]:
    art = Article(id="a", title=TITLE, paragraphs=paragraphs)
    return [p.features for p in boilerplate_inputs(art)]


def test_feature_names_end_with_the_cohesion_features():
    assert FEATURE_NAMES[-len(COHESION_FEATURES) :] == COHESION_FEATURES


def test_stems_meet_across_clitics():
    assert topic_stems("والمعلمين") & topic_stems("المعلمون")
    assert not topic_stems("التي الذي علي")  # function words say nothing about the topic


def test_an_inlined_other_story_departs_and_the_story_does_not():
    feats = features([*STORY, "المصدر: وكالة الأنباء", "اقرأ أيضاً:", *OTHER])
    story, inlined = feats[:3], feats[5:]
    assert all(f["after_story_end"] == 0.0 for f in story)
    assert all(f["after_story_end"] == 1.0 for f in inlined)
    assert min(f["lead_sim"] for f in story[1:]) > max(f["lead_sim"] for f in inlined)
    assert all(f["departure"] > 0.8 for f in inlined)
    assert inlined[1]["prev_sim"] > 0.0  # one inlined story hangs together


def test_a_story_resuming_after_a_mid_article_block_keeps_its_topic():
    feats = features([STORY[0], "اقرأ أيضاً:", "عنوان خبر آخر عن الطقس", STORY[1], STORY[2]])
    resumed = feats[3:]
    assert all(f["after_story_end"] == 1.0 for f in resumed)
    assert all(f["max_lead_sim_after"] > 0.3 for f in resumed)
    assert all(f["departure"] < 0.7 for f in resumed)


def test_rule_hits_get_no_cohesion_values():
    feats = features([*STORY, "المصدر: وكالة الأنباء"])
    assert all(feats[3][name] == 0.0 for name in COHESION_FEATURES)


def test_flags_are_aligned_and_empty_page_safe():
    assert cohesion_flags([], "", [], [], []) == {name: [] for name in COHESION_FEATURES}
    got = cohesion_flags(["a b c"], "", [False], [False], [3])
    assert all(len(v) == 1 for v in got.values())
