"""inference.ngram_counts gives exactly sklearn's document-term counts (the tagger's fast path)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from inference import ngram_counts
from inference.normalize import normalize
from inference.schema import article_from_record
from inference.sklearn_predictor import _vectorizers
from inference.tagger import TaggerConfig, load_tagger
from tests.sample_bundles import sample_articles

# Shapes real text takes and a few it should not: empty, whitespace runs, case, tatweel, NBSP,
# emoji and non-BMP digits, clitics and punctuation, Greek final sigma, Turkish dotted I.
EDGE_DOCS = [
    "",
    "   ",
    "x",
    "A",
    "ABC abc Abc",
    "ـــ",
    "hello   world\n\tagain",
    "\u00a0non\u00a0breaking\u2003spaces",
    "emoji 😀 and 𝟘 digits",
    "email a@b.com http://x.y/z",
    "مرحبا، بالعالم! 123 ٤٥٦ «اقتباس»",
    "İstanbul ΣΑΣ σας",
    "a_b c-d e'f",
    "المصدر: واس",
]


def corpus() -> list[str]:
    docs = []
    for art in sample_articles():
        docs.append(normalize(art.title))
        docs += [normalize(p) for p in art.paragraphs if p.strip()]
        docs.append("\n".join(art.paragraphs))  # raw, un-normalized text too
    return docs


def same_matrix(a, b) -> bool:
    return (
        type(a) is type(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


CONFIGS = [
    {"analyzer": "char_wb", "ngram_range": (2, 5)},
    {"analyzer": "char_wb", "ngram_range": (1, 3)},
    {"analyzer": "char_wb", "ngram_range": (3, 3)},
    {"analyzer": "char_wb", "ngram_range": (4, 6)},  # lo > 3: the per-word Python path
    {"analyzer": "char_wb", "ngram_range": (2, 4), "lowercase": False},
    {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b"},
    {"analyzer": "word", "ngram_range": (1, 1)},
    {"analyzer": "word", "ngram_range": (2, 3), "token_pattern": r"(?u)\b\w+\b"},
    {"analyzer": "word", "ngram_range": (1, 2), "lowercase": False},
    {"analyzer": "word", "ngram_range": (1, 2), "binary": True, "max_features": 50},
]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_counts_equal_sklearn(kwargs):
    docs = corpus()
    train, test = docs[::2] + EDGE_DOCS[:5], docs[1::2] + EDGE_DOCS
    vec = TfidfVectorizer(min_df=1, sublinear_tf=True, dtype=np.float32, **kwargs).fit(train)
    expected = vec.transform(test)
    assert ngram_counts.install(vec)
    assert same_matrix(vec.transform(test), expected)  # cold caches
    assert same_matrix(vec.transform(test), expected)  # warm caches
    one_by_one = [vec.transform([d]) for d in test[:20]]
    assert all(same_matrix(x, expected[[i]]) for i, x in enumerate(one_by_one))


def test_bounded_caches_give_the_same_counts(monkeypatch):
    monkeypatch.setattr(ngram_counts, "WORD_CACHE_SIZE", 7)
    monkeypatch.setattr(ngram_counts, "DOC_CACHE_SIZE", 3)
    docs = corpus()
    for kwargs in (CONFIGS[0], CONFIGS[5]):
        vec = TfidfVectorizer(min_df=1, **kwargs).fit(docs)
        expected = vec.transform(docs)
        assert ngram_counts.install(vec)
        for _ in range(2):
            assert same_matrix(vec.transform(docs), expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"analyzer": "char", "ngram_range": (2, 3)},
        {"analyzer": "word", "stop_words": ["في"]},
        {"analyzer": "word", "tokenizer": str.split, "token_pattern": None},
        {"analyzer": "word", "preprocessor": str.upper},
        {"analyzer": "word", "token_pattern": r"[^,]+"},  # tokens may hold spaces
    ],
)
def test_unsupported_configurations_keep_sklearn(kwargs):
    docs = corpus()
    vec = TfidfVectorizer(**kwargs).fit(docs)
    expected = vec.transform(docs)
    assert not ngram_counts.install(vec)
    assert "_count_vocab" not in vec.__dict__
    assert same_matrix(vec.transform(docs), expected)


def test_refit_and_non_string_documents_fall_back_to_sklearn():
    docs = corpus()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(docs[:30])
    assert ngram_counts.install(vec)
    # bytes are decoded by sklearn itself
    assert same_matrix(vec.transform([b"abc", "abc"]), vec.transform(["abc", "abc"]))
    vec.fit(docs[30:])  # a refit learns a new vocabulary: the fast path steps aside for good
    assert "_count_vocab" not in vec.__dict__
    fresh = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(docs[30:])
    assert same_matrix(vec.transform(docs), fresh.transform(docs))


def test_tagger_output_is_identical_with_and_without_the_fast_path(
    sample_bundles, fixture_articles
):
    refs = [str(sample_bundles[t]) for t in ("boilerplate", "topic", "stance")]
    tagger = load_tagger(refs, config=TaggerConfig(stance_targets=["ارتفاع أسعار الغذاء"]))
    vectorizers = [v for b in tagger.bundles.values() for v in _vectorizers(b.predictor.model)]
    assert vectorizers and all("_count_vocab" in v.__dict__ for v in vectorizers)
    arts = [article_from_record(a) for a in fixture_articles]
    arts += sample_articles()
    fast = tagger.tag_batch(arts)
    for vec in vectorizers:
        ngram_counts.uninstall(vec)
    assert tagger.tag_batch(arts) == fast
