"""Synthetic pages (training/dataset/synthetic_pages.py): composed from real parts, training only."""

from __future__ import annotations

import random
from collections import Counter

from datasets import load_from_disk

from inference.text.furniture import default_rules
from inference.text.preprocess import boilerplate_inputs, boilerplate_row
from inference.text.schema import Article
from tests.dataset.test_build_dataset import build, config, make_article, stance_pairs, write_jsonl
from training.dataset.synthetic_pages import (
    FurnitureBank,
    SyntheticPages,
    collect_bank,
    compose_page,
    page_rows,
)
from training.dataset.weak_labels import WeakLabel

HEADER = "اقرأ أيضاً: الحكومة تعلن خطة جديدة للنقل"


def story(i: int) -> Article:
    raw = make_article(i)
    return Article(
        id=raw["id"], title=raw["title"], source=raw["source"], paragraphs=raw["paragraphs"][:3] * 2
    )


def bank() -> FurnitureBank:
    return FurnitureBank(
        credit=["المصدر: وكالة الأنباء"],
        header=["اقرأ أيضاً:"],
        promo=["حمّل تطبيقنا على هاتفك"],
        other=["جميع الحقوق محفوظة"],
        headlines=[f"عنوان خبر آخر رقم {i}" for i in range(8)],
    )


def test_bank_sorts_rule_hits_by_kind_and_keeps_titles():
    art = Article(
        id="a", title="عنوان", paragraphs=["نص الخبر الطويل " * 5, HEADER, "المصدر: رويترز", ""]
    )
    got = collect_bank([art], default_rules())
    assert got.header == [HEADER]
    assert got.credit == ["المصدر: رويترز"]
    assert got.headlines == ["عنوان"]
    assert got.usable()
    assert not FurnitureBank(credit=["x"], headlines=["y"]).usable()  # no header to open a block


def test_every_layout_keeps_host_labels_and_flags_what_it_adds():
    host = story(1)
    host_labels = ["content"] * len(host.paragraphs)
    host_prov = ["content:long"] * len(host.paragraphs)
    donors = [story(i) for i in range(2, 8)]
    layouts = Counter()
    for seed in range(60):
        page, labels, prov = compose_page(
            host, list(host_labels), list(host_prov), donors, bank(), random.Random(seed)
        )
        assert page.id == "art-001~page" and page.labels is None
        assert len(page.paragraphs) == len(labels) == len(prov)
        added = [i for i, p in enumerate(prov) if p.startswith("synthetic:")]
        assert added and all(labels[i] == "boilerplate" for i in added)
        kept = [page.paragraphs[i] for i, p in enumerate(prov) if not p.startswith("synthetic:")]
        assert kept == host.paragraphs  # the host is all there, in order
        layouts.update({p for p in prov if p.startswith("synthetic:")})
        if added[-1] < len(prov) - 1:  # a block inside the story: the story resumes as content
            assert labels[added[-1] + 1] == "content"
    assert {"synthetic:inlined_story", "synthetic:story_lead", "synthetic:related"} <= set(layouts)


def test_page_rows_are_the_shared_preprocessing_of_the_composed_page():
    hosts = [(story(i), [WeakLabel("content", "content:long")] * 6) for i in range(4)]
    spec = SyntheticPages(fraction=1.0, seed=3, bank=bank())
    rows = page_rows(hosts, [a for a, _ in hosts], spec, default_rules())
    pages = {r["article_id"] for r in rows}
    assert pages == {f"art-{i:03d}~page" for i in range(4)}
    # Rebuild the first page the same way: its rows are exactly boilerplate_row of its inputs.
    host, weak = hosts[0]
    rng = spec.rng(host.id)
    donors = rng.sample([a for a, _ in hosts[1:]], 3)
    page, labels, _ = compose_page(
        host, ["content"] * 6, ["page:content:long"] * 6, donors, spec.bank, rng
    )
    expected = [boilerplate_row(p) for p in boilerplate_inputs(page, default_rules())]
    got = [r for r in rows if r["article_id"] == page.id]
    assert [{k: r[k] for k in expected[0]} for r in got] == expected
    assert all(r["label"] == labels[r["index"]] for r in got)


def test_selection_is_a_deterministic_share_of_articles():
    spec = SyntheticPages(fraction=0.25, seed=0, bank=bank())
    chosen = [spec.chosen(f"id-{i}") for i in range(4000)]
    assert 0.22 < sum(chosen) / 4000 < 0.28
    assert chosen == [spec.chosen(f"id-{i}") for i in range(4000)]
    assert not any(SyntheticPages(0.0, 0, bank()).chosen(f"id-{i}") for i in range(100))


def _corpus(tmp_path):
    news = []
    for i in range(90):
        art = make_article(i, label=["politics", "economy", "sports"][i % 3])
        if i % 5 == 0:
            art["paragraphs"].insert(2, HEADER)
        news.append(art)
    write_jsonl(tmp_path / "news.jsonl", news)
    write_jsonl(tmp_path / "pairs.jsonl", stance_pairs(45))


def test_build_adds_synthetic_pages_to_the_training_split_only(tmp_path):
    _corpus(tmp_path)
    cfg = config(tmp_path, boilerplate={"synthetic_pages": {"fraction": 0.5, "seed": 1}})
    manifest, out = build(tmp_path, cfg)
    ds = load_from_disk(str(out / "boilerplate"))
    synthetic = [p for p in ds["train"]["provenance"] if p.startswith("synthetic:")]
    assert synthetic and all(
        lab == 1
        for lab, p in zip(ds["train"]["label"], ds["train"]["provenance"], strict=True)
        if p.startswith("synthetic:")
    )  # label 1 = boilerplate
    for split in ("validation", "test"):
        assert not any(p.startswith(("synthetic:", "page:")) for p in ds[split]["provenance"])
    assert any(a.endswith("~page") for a in ds["train"]["article_id"])
    _, out_off = build(tmp_path, config(tmp_path), name="off")
    off = load_from_disk(str(out_off / "boilerplate"))
    assert not any(a.endswith("~page") for a in off["train"]["article_id"])
    assert len(off["validation"]) == len(ds["validation"])  # splits of real articles unchanged
