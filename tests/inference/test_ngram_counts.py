"""inference.text.ngram_counts gives exactly sklearn's document-term counts (the tagger's fast
path)."""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from inference.predictors.sklearn import _vectorizers
from inference.tagger import TaggerConfig, load_tagger
from inference.text import char_ngrams, ngram_counts, text_tokens
from inference.text.normalize import normalize
from inference.text.schema import article_from_record
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
    docs = corpus() + multi_line_docs()
    vecs = [TfidfVectorizer(min_df=1, **kw).fit(docs) for kw in (CONFIGS[0], CONFIGS[5])]
    expected = [v.transform(docs) for v in vecs]
    assert all(ngram_counts.install(v) for v in vecs)
    # Tiny caps: the word table is compacted (ids renumbered, per-word rows carried over) and the
    # document cache turns over many times within one pass.
    monkeypatch.setattr(text_tokens, "WORDS_MAX", 8)
    monkeypatch.setattr(text_tokens.space_words(True).cache, "cap", 3)
    compactions = text_tokens.space_words(True).generation
    for _ in range(2):
        for vec, exp in zip(vecs, expected, strict=True):
            assert same_matrix(vec.transform(docs), exp)
            for i in range(0, len(docs), 5):  # small batches: many compactions in between
                assert same_matrix(vec.transform(docs[i : i + 5]), exp[i : i + 5])
    assert text_tokens.space_words(True).generation > compactions + 10


def multi_line_docs() -> list[str]:
    """Documents made of lines (as the topic text is), their one-line forms (as the stance text
    is: the same words joined by single spaces) and near misses of that form."""
    paras = [normalize(p) for art in sample_articles() for p in art.paragraphs if p.strip()]
    docs = []
    for i in range(0, len(paras) - 3, 3):
        lines = paras[i : i + 3]
        docs += ["\n".join(lines), " ".join(" ".join(lines).split())]
    docs += [
        "a\n\nb",  # an empty line: the one-line form has a double space
        "a  b",
        "a b",
        "\nleading\ntrailing\n",
        "leading trailing",
        "ΑΣ\nΒ",  # final sigma before a line break
        "ΑΣ Β",
        "x\r\ny\u2028z\u0085w",
        "x y z w",
        "word\u00a0word\n\u3000",
    ]
    return docs


def test_lines_and_their_one_line_forms_count_like_sklearn():
    docs = corpus() + multi_line_docs()
    for kwargs in CONFIGS:
        vec = TfidfVectorizer(min_df=1, **kwargs).fit(docs[::2])
        expected = vec.transform(docs)
        assert ngram_counts.install(vec)
        assert same_matrix(vec.transform(docs), expected)
        # One by one, in both orders: a line or a one-line form may be cached from another call.
        for i in [*range(len(docs) - 1, len(docs) - 40, -1), *range(len(docs) - 40, len(docs))]:
            assert same_matrix(vec.transform([docs[i]]), expected[[i]]), repr(docs[i])


def test_whitespace_never_changes_lowercasing_across_it():
    """What sharing lines' tokens relies on (inference.text.text_tokens): lowercasing a text equals
    lowercasing its whitespace-separated parts, for every whitespace character."""
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert len(spaces) == 29 and max(map(ord, spaces)) < 0x3001
    for space in spaces:
        assert space.lower() == space
        assert ("AΣ" + space + "B").lower() == "aς" + space + "b"  # not case-ignorable after Σ
        assert ("A" + space + "Σ").lower() == "a" + space + "σ"  # not case-ignorable before Σ
        assert not re.fullmatch(r"\w", space)


def test_vectorizers_sharing_tables_stay_exact_and_gone_ones_are_dropped():
    docs = corpus() + multi_line_docs()
    kwargs = {"analyzer": "char_wb", "ngram_range": (2, 5)}
    first = TfidfVectorizer(**kwargs).fit(docs[:40])
    second = TfidfVectorizer(**kwargs).fit(docs[40:])
    words = [TfidfVectorizer(**CONFIGS[5]).fit(d) for d in (docs[:40], docs[40:])]
    expected = [v.transform(docs) for v in (first, second, *words)]
    for vec in (first, second, *words):
        assert ngram_counts.install(vec)
    for _ in range(2):  # interleaved calls on shared word ids and per-word rows
        for vec, exp in zip((first, second, *words), expected, strict=True):
            assert same_matrix(vec.transform(docs), exp)
    group = first._count_vocab.group
    table = words[0]._count_vocab.table
    union = len(group.terms)
    del second, words[1]
    gc.collect()
    third = TfidfVectorizer(**kwargs).fit(docs[:10])  # joining drops what went away
    assert ngram_counts.install(third)
    words.append(TfidfVectorizer(**CONFIGS[5]).fit(docs[:10]))
    assert ngram_counts.install(words[-1])
    assert len(group.members()) == 2 and len(group.terms) < union
    live = [ref() for ref in table._users]
    assert words[0]._count_vocab in live and words[-1]._count_vocab in live and None not in live
    assert set(table.table) == set().union(*(user.token_ids for user in live))
    assert same_matrix(first.transform(docs), expected[0])
    assert same_matrix(words[0].transform(docs), expected[2])
    assert same_matrix(
        third.transform(docs), TfidfVectorizer(**kwargs).fit(docs[:10]).transform(docs)
    )


def test_product_without_the_symbolic_pass_equals_scipy():
    rng = np.random.default_rng(0)
    for shape_a, shape_b, density in (((40, 300), (300, 5000), 0.05), ((1, 1), (1, 1), 1.0)):
        a = sp.random_array(shape_a, density=density, rng=rng, format="csr", dtype=np.float64)
        b = sp.random_array(shape_b, density=density, rng=rng, format="csr", dtype=np.float64)
        a.data[:] = rng.integers(1, 4, a.nnz)
        b.data[:] = 1
        a, b = a.astype(np.int32), b.astype(np.int32)
        assert same_matrix(char_ngrams._product(a, b), a @ b)
    empty = sp.csr_array((3, 4), dtype=np.int32)
    assert same_matrix(
        char_ngrams._product(empty, sp.csr_array((4, 2), dtype=np.int32)),
        empty @ sp.csr_array((4, 2), dtype=np.int32),
    )


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
