"""Exact and near-duplicate detection (training/dataset/dedup.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from training.config import DedupConfig
from training.dataset.dedup import (
    Fingerprints,
    NearDuplicateIndex,
    cluster_duplicates,
    dedup_text,
    estimated_jaccard,
    fingerprints,
    minhash_signatures,
)

STORY = (
    "أعلنت وزارة الصحة اليوم الثلاثاء توسيع برنامج الكشف المبكر عن سرطان الثدي ليشمل جميع "
    "المحافظات بعد أن اقتصر في مرحلته الأولى على خمس محافظات فقط مع تخصيص مئة وعشرين وحدة "
    "متنقلة تجوب القرى والمناطق النائية لإجراء الفحوص بالمجان للنساء فوق سن الأربعين وقالت "
    "مديرة البرنامج إن المرحلة الأولى أسفرت عن فحص أكثر من ثلاثمئة ألف امرأة واكتشاف مئات "
    "الحالات في مراحلها المبكرة وهي المرحلة التي تتجاوز فيها نسب الشفاء تسعين في المئة"
)
OTHER = (
    "نفذ المركز الوطني للأمن السيبراني تمرينا لمحاكاة هجمات إلكترونية على شبكات الكهرباء والمياه "
    "والمصارف بمشاركة أربعين مؤسسة وأكد مدير المركز أن التمرين كشف ثغرات في سرعة تبادل المعلومات "
    "بين الجهات وأن خطة لمعالجتها ستعتمد خلال شهرين وأشار إلى أن التمرين سيتكرر سنويا بسيناريوهات "
    "أكثر تعقيدا في المدن الكبرى والمحافظات الحدودية على حد سواء"
)
# The same story republished with two words changed ("اليوم" -> "أمس", "أكثر من" -> "نحو").
EDITED = STORY.replace("اليوم", "أمس").replace("أكثر من", "نحو")


def shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def true_jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_exact_duplicate_ignores_whitespace_and_ascii_case():
    index = NearDuplicateIndex(DedupConfig())
    assert index.add("a", STORY + " Reuters") is None
    assert index.add("b", "  " + (STORY + " REUTERS").replace(" ", " \n ")) == "a"
    assert index.stats.exact == 1


def test_near_duplicate_found_and_different_article_not():
    assert true_jaccard(STORY, EDITED) > 0.75
    index = NearDuplicateIndex(DedupConfig(threshold=0.7))
    assert index.add("orig", STORY) is None
    assert index.add("other", OTHER) is None
    assert index.add("edited", EDITED) == "orig"
    assert index.stats.near == 1
    assert len(index) == 2  # duplicates are not indexed


def test_batch_matches_within_the_batch_and_against_the_index():
    index = NearDuplicateIndex(DedupConfig(threshold=0.7))
    assert index.add_batch(["a", "b", "c"], [STORY, OTHER, EDITED]) == [None, None, "a"]
    assert index.add_batch(["d", "e"], [OTHER + " ", "نص قصير مختلف تماما"]) == ["b", None]


def test_scope_keeps_same_text_with_different_targets_apart():
    index = NearDuplicateIndex(DedupConfig())
    assert index.add("p1", STORY, scope="target A") is None
    assert index.add("p2", STORY, scope="target B") is None
    assert index.add("p3", STORY, scope="target A") == "p1"


def test_empty_text_is_never_a_duplicate():
    index = NearDuplicateIndex(DedupConfig())
    assert index.add_batch(["x", "y"], ["", "  \n "]) == [None, None]
    assert len(index) == 0 and index.stats.empty == 2


def test_estimate_tracks_true_jaccard():
    rng = np.random.default_rng(0)
    vocab = [f"كلمة{i}" for i in range(400)]
    base = list(rng.choice(vocab, 200))
    cfg = DedupConfig(num_perm=128, bands=32)
    for n_changed in (5, 20, 60):
        changed = list(base)
        for pos in rng.choice(200, n_changed, replace=False):
            changed[pos] = f"جديد{pos}"
        a, b = " ".join(base), " ".join(changed)
        sigs = minhash_signatures([a, b], cfg)
        assert abs(estimated_jaccard(sigs[0], sigs[1]) - true_jaccard(a, b)) < 0.12


def test_short_text_is_one_shingle():
    sigs = minhash_signatures(["كلمتان فقط", "كلمتان فقط", "كلمتان أخريان"], DedupConfig())
    assert (sigs[0] == sigs[1]).all()
    assert estimated_jaccard(sigs[0], sigs[2]) < 0.5


def test_signatures_are_the_same_in_another_process():
    # Python's str hash is salted per process; ours must not be (the content hash depends on it).
    code = (
        "from training.dataset.dedup import minhash_signatures; "
        "from training.config import DedupConfig;"
        f"print(int(minhash_signatures([{STORY!r}], DedupConfig()).astype('uint64').sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = int(minhash_signatures([STORY], DedupConfig()).astype("uint64").sum())
    assert int(out.stdout) == here


def test_many_documents_keep_few_sorted_runs():
    rng = np.random.default_rng(1)
    vocab = [f"كلمة{i}" for i in range(5000)]
    docs = {f"d{i}": " ".join(rng.choice(vocab, 60)) for i in range(320)}
    index = NearDuplicateIndex(DedupConfig())
    ids = list(docs)
    for k in range(0, len(ids), 8):
        assert index.add_batch(ids[k : k + 8], [docs[d] for d in ids[k : k + 8]]) == [None] * 8
    assert len(index) == 320
    assert len(index._runs) <= 10  # merged like a binary counter: O(log n) runs
    assert index.add("again", docs["d37"] + " كلمة") == "d37"


def test_cluster_duplicates_groups_ids():
    clusters = cluster_duplicates(
        [("a", STORY), ("b", OTHER), ("c", EDITED), ("d", STORY)],
        DedupConfig(threshold=0.7),
        batch_size=2,
    )
    assert clusters == {"a": ["c", "d"]}


def test_dedup_text_compares_the_story_not_the_furniture():
    paragraphs = ["الرئيسية » صحة", STORY, "تابعونا على تويتر"]
    assert dedup_text(paragraphs, 12) == STORY
    assert dedup_text(["سطر قصير", "آخر"], 12) == "سطر قصير\nآخر"  # nothing long: keep all


def test_config_requires_bands_to_divide_permutations():
    with pytest.raises(ValidationError, match="multiple of dedup.bands"):
        DedupConfig(num_perm=64, bands=10)


# ---------------------------------------------------------------- the index against a reference
def _reference_batches(batches, cfg: DedupConfig) -> tuple[list, dict]:
    """The index's rules, written plainly: a document's candidates are every indexed document
    sharing a key in the same column, plus the first kept document of its own batch with that
    key; an exact-text key answers at once, else the most similar candidate (older on ties) at
    the threshold or above. Returns the answers and the statistics."""
    indexed: list[tuple[str, np.ndarray, list[int]]] = []  # (id, signature, keys)
    stats = {"seen": 0, "kept": 0, "exact": 0, "near": 0, "empty": 0, "candidates_checked": 0}
    answers = []
    for ids, texts, scopes in batches:
        fps = fingerprints(texts, cfg, scopes)
        n, inner, kept = len(indexed), {}, []
        for i in range(len(ids)):
            stats["seen"] += 1
            keys = fps.keys[i].tolist()
            if not fps.words[i]:
                stats["empty"] += 1
                answers.append(None)
                continue
            cands = [
                (j, r)
                for r, (_, _, ks) in enumerate(indexed)
                for j in range(len(keys))
                if ks[j] == keys[j]
            ]
            cands += [(j, n + inner[(j, k)]) for j, k in enumerate(keys) if (j, k) in inner]
            cands.sort(key=lambda c: c[0] != cfg.bands)
            answer, best, checked = None, None, set()
            for j, ref in cands:
                if ref in checked:
                    continue
                checked.add(ref)
                other_id, other_sig = (
                    indexed[ref][:2] if ref < n else (ids[ref - n], fps.sigs[ref - n])
                )
                if j == cfg.bands:
                    stats["exact"] += 1
                    answer = other_id
                    break
                stats["candidates_checked"] += 1
                sim = float(np.mean(fps.sigs[i] == other_sig))
                if sim >= cfg.threshold and (best is None or (-sim, ref) < best[0]):
                    best = ((-sim, ref), other_id)
            if answer is None and best is not None:
                stats["near"] += 1
                answer = best[1]
            answers.append(answer)
            if answer is None:
                for j, k in enumerate(keys):
                    inner.setdefault((j, k), i)
                kept.append(i)
        for i in kept:
            indexed.append((ids[i], fps.sigs[i], fps.keys[i].tolist()))
        stats["kept"] += len(kept)
    return answers, stats


def test_index_answers_like_the_plain_reference():
    rng = np.random.default_rng(3)
    words = [f"كلمة{i}" for i in range(50)]
    stories = [" ".join(rng.choice(words, rng.integers(0, 20))) for _ in range(25)]
    for cfg in (DedupConfig(threshold=0.5, num_perm=16, bands=8, shingle_words=1), DedupConfig()):
        batches, n = [], 0
        for _ in range(12):
            size = int(rng.integers(0, 30))
            texts = []
            for _ in range(size):
                story = stories[int(rng.integers(len(stories)))].split()
                for _ in range(int(rng.integers(0, 3))):  # light edits: near duplicates
                    if story:
                        story[int(rng.integers(len(story)))] = str(rng.choice(words))
                texts.append(" ".join(story))
            scopes = [str(rng.choice(["", "a", "b"])) for _ in range(size)]
            batches.append(([f"d{n + i}" for i in range(size)], texts, scopes))
            n += size
        expected, stats = _reference_batches(batches, cfg)
        index = NearDuplicateIndex(cfg)
        got = [a for ids, texts, scopes in batches for a in index.add_batch(ids, texts, scopes)]
        assert got == expected
        assert index.stats.as_dict() == stats


def test_fingerprints_computed_elsewhere_give_the_same_answers():
    texts = [STORY, OTHER, EDITED, "", STORY + " ", OTHER.replace("التمرين", "التدريب")]
    ids = [f"d{i}" for i in range(len(texts))]
    direct = NearDuplicateIndex(DedupConfig(threshold=0.7))
    expected = direct.add_batch(ids, texts)
    # Fingerprints of single texts (as workers compute them, chunk by chunk), stacked in order.
    parts = [(fingerprints([t], DedupConfig(threshold=0.7)), 0) for t in texts]
    index = NearDuplicateIndex(DedupConfig(threshold=0.7))
    assert index.add_fingerprints(ids, Fingerprints.stack(parts)) == expected
    assert index.stats.as_dict() == direct.stats.as_dict()
