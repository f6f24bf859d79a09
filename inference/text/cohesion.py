"""Story cohesion: how each paragraph hangs together with the page's own story.

A page's trailer can inline other stories — a teaser, a whole second article, the lead paragraphs of
other stories — long, well-formed prose that only its *topic* and its *place* give away. These
features measure both, over the page alone (no outlet statistics), so they carry to outlets the
model has never seen. ``inference.text.preprocess.boilerplate_inputs`` appends them to every
paragraph's features, for the dataset builder and the tagger alike.
"""

from __future__ import annotations

import re

from inference.text.page_structure import STORY_MIN_WORDS

_WORD = re.compile(r"[^\W\d_]+")  # letters only: punctuation and digits never make a match

# Function words that say nothing about what a paragraph is about (normalized spelling).
_STOPWORDS = frozenset(
    "التي الذي الذين اللذين اللتين علي الي عن من في مع هذا هذه ذلك تلك هناك هنا كان كانت يكون "
    "تكون وقد قد لقد كما حيث بين بعد قبل عند منذ حتي خلال ضمن لدي اما او ام ان انه انها اذا لكن "
    "وكان وكانت وفي ومن والتي والذي وهو وهي هو هي هم نحن انت ثم كل بعض غير ليس لم لن لا ما ماذا "
    "كيف متي اين ايضا فقط اكثر اقل جدا عام اليوم امس وقال قال قالت وقالت واضاف اضاف واكد اكد".split()
)
# Light stemming: one proclitic and one suffix off, then a 5-letter prefix, so "والانتخابات" and
# "الانتخابي" meet. Crude, but cohesion only needs words of one topic to collide.
_PREFIXES = ("وبال", "وال", "بال", "كال", "فال", "لل", "ال", "وب", "ول", "و", "ف", "ب", "ل")
_SUFFIXES = ("هما", "ها", "هم", "ات", "ون", "ين", "ان", "يه", "ه", "ي")
_STEM_LEN = 5
# The story's head: the title and this many first story-like paragraphs.
HEAD_PARAGRAPHS = 2


def _stem(word: str) -> str:
    for prefix in _PREFIXES:
        # A one-letter proclitic is taken off only a long word: "فريق" stays, "وفريق" loses "و".
        keep = 4 if len(prefix) == 1 else 3
        if word.startswith(prefix) and len(word) - len(prefix) >= keep:
            word = word[len(prefix) :]
            break
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:_STEM_LEN]


def _topic_stem(word: str) -> str:
    """The stem of a word cohesion compares, "" for one it ignores (short, or a function word)."""
    return _stem(word) if len(word) >= 3 and word not in _STOPWORDS else ""


# word -> _topic_stem(word). Stemming word by word cost ~0.5 ms an article (half the tagger's
# feature time); news vocabulary repeats, so most words are a lookup. Capped (~300k words, ~30 MB):
# a full cache is cleared, as a long archive keeps meeting new words.
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_MAX = 300_000


def topic_stems(text: str) -> frozenset[str]:
    """The stems a cohesion measure compares: words of 3+ letters, not function words."""
    words = _WORD.findall(text)
    try:
        stems = set(map(_STEM_CACHE.__getitem__, words))  # C-level lookups
    except KeyError:  # a word not seen yet
        if len(_STEM_CACHE) >= _STEM_CACHE_MAX:
            _STEM_CACHE.clear()
        _STEM_CACHE.update((w, _topic_stem(w)) for w in words if w not in _STEM_CACHE)
        stems = set(map(_STEM_CACHE.__getitem__, words))
    stems.discard("")
    return frozenset(stems)


def _coverage(words: frozenset[str], reference: frozenset[str]) -> float:
    """Share of ``words`` found in ``reference`` (0 for an empty paragraph)."""
    return len(words & reference) / len(words) if words else 0.0


COHESION_FEATURES = (
    "lead_sim",
    "max_lead_sim_after",
    "after_story_end",
    "prev_sim",
    "departure",
)


def cohesion_flags(
    texts: list[str],
    title: str,
    has_rule: list[bool],
    in_block: list[bool],
    n_words: list[int],
) -> dict[str, list[float]]:
    """How each paragraph hangs together with the page's own story, and where the story ended.

    A page's trailer can inline other stories (a teaser, a whole second article, the leads of other
    stories): long, well-formed prose that only its *topic* and its *place* give away.
    - ``lead_sim``: share of the paragraph's stems found in the story's head (title + first
      ``HEAD_PARAGRAPHS`` story-like paragraphs).
    - ``max_lead_sim_after``: the highest ``lead_sim`` of any plain paragraph (no rule hit, not in
      a related block) from here to the end: the story resuming after a mid-article block brings
      its topic back; a trailer of other stories does not.
    - ``after_story_end``: furniture (a rule hit or a related block) came earlier, after story text.
    - ``prev_sim``: share of the stems found in the previous paragraph (one inlined story is
      cohesive within itself; a list of other stories' leads is not).
    - ``departure``: ``after_story_end * (1 - max_lead_sim_after)``, the interaction a linear model
      cannot form by itself.
    """
    n = len(texts)
    stems = [topic_stems(t) for t in texts]
    plain = [not r and not b for r, b in zip(has_rule, in_block, strict=True)]
    head = set(topic_stems(title))
    story_like = [plain[k] and n_words[k] >= STORY_MIN_WORDS for k in range(n)]
    for k in [k for k in range(n) if story_like[k]][:HEAD_PARAGRAPHS]:
        head |= stems[k]
    head_set = frozenset(head)
    lead_sim = [_coverage(s, head_set) for s in stems]
    max_after = [0.0] * n
    best = 0.0
    for k in range(n - 1, -1, -1):
        if plain[k]:
            best = max(best, lead_sim[k])
        max_after[k] = best
    after_end = [0.0] * n
    story_seen = ended = False
    for k in range(n):
        after_end[k] = float(ended)
        story_seen = story_seen or story_like[k]
        ended = ended or (story_seen and not plain[k])
    prev_sim = [0.0] * min(n, 1) + [_coverage(stems[k], stems[k - 1]) for k in range(1, n)]
    # Only plain paragraphs get cohesion values: a rule hit or a related headline is judged by
    # what it is (a "link to this story" trailer repeats the story's own title).
    gate = [float(p) for p in plain]
    return {
        "lead_sim": [g * x for g, x in zip(gate, lead_sim, strict=True)],
        "max_lead_sim_after": [g * x for g, x in zip(gate, max_after, strict=True)],
        "after_story_end": [g * x for g, x in zip(gate, after_end, strict=True)],
        "prev_sim": [g * x for g, x in zip(gate, prev_sim, strict=True)],
        "departure": [
            g * a * (1.0 - m) for g, a, m in zip(gate, after_end, max_after, strict=True)
        ],
    }
