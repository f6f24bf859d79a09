"""The dataset builder end to end on small inline data (training/dataset/build.py and friends)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datasets import ClassLabel, load_from_disk

from inference.text.furniture import default_rules
from inference.text.preprocess import boilerplate_inputs, boilerplate_row, topic_row
from inference.text.schema import article_from_record
from training.config import DatasetConfig, load_dataset_config
from training.dataset.build import build_datasets
from training.dataset.examples import COLUMNS

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "الحكومة الوزارة المدينة الشركة المشروع السوق الاقتصاد الفريق المباراة البطولة المهرجان "
    "الثقافة التقنية الشبكة البرنامج المستشفى الطلاب الجامعة المحكمة البرلمان القانون الميزانية "
    "الاستثمار الصادرات الأسعار النفط الطاقة المياه الزراعة الصناعة النقل المطار الميناء الطريق "
    "أعلن أكد أوضح قال أشار افتتح وقع ناقش أطلق قرر رفع خفض بدأ اختتم استقبل زار شارك نظم "
    "اليوم أمس الأسبوع الشهر العام الماضي المقبل الجديد الكبير الوطني الدولي المحلي الأول الثاني"
).split()
FURNITURE = ["المصدر: وكالة الأنباء الرسمية", "جميع الحقوق محفوظة © 2025", "تابعونا على تويتر"]


def sentence(rng: random.Random, n: int = 18) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def make_article(i: int, **fields) -> dict:
    """A distinct article: three story paragraphs and one furniture line."""
    rng = random.Random(i)
    record = {
        "id": f"art-{i:03d}",
        "url": f"https://news{i % 3}.example/item/{i}",
        "source": f"site{i % 3}",
        "published": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "title": sentence(rng, 7),
        "paragraphs": [sentence(rng), sentence(rng), sentence(rng), FURNITURE[i % 3]],
    }
    record.update(fields)
    return record


def write_jsonl(path: Path, records: list) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(rec if isinstance(rec, str) else json.dumps(rec, ensure_ascii=False))
            fh.write("\n")
    return path


def stance_pairs(n: int, split: str | None = None, prefix: str = "p") -> list[dict]:
    rng = random.Random(n)
    labels = ["agree", "disagree", "other"]
    return [
        {
            "id": f"{prefix}-{i}",
            "claim": f"ادعاء رقم {i // 3} " + sentence(rng, 5),
            "text": sentence(rng, 12),
            "label": labels[i % 3],
            **({"split": split} if split else {}),
        }
        for i in range(n)
    ]


def config(tmp_path: Path, **overrides) -> DatasetConfig:
    raw = {
        "inputs": [
            {"name": "news", "path": "news.jsonl", "tasks": ["boilerplate", "topic"]},
            {"name": "pairs", "path": "pairs.jsonl", "tasks": ["stance"]},
        ],
        "topic": {"labels": ["politics", "economy", "sports"]},
        "stance": [{"name": "stance_pairs", "inputs": ["pairs"]}],
        "dedup": {"threshold": 0.7},
        "base_dir": str(tmp_path),
    }
    raw.update(overrides)
    return DatasetConfig.model_validate(raw)


TOPICS = ["politics", "economy", "sports"]


@pytest.fixture()
def corpus(tmp_path) -> Path:
    news = [make_article(i, label=TOPICS[i % 3]) for i in range(60)]
    write_jsonl(tmp_path / "news.jsonl", news)
    write_jsonl(tmp_path / "pairs.jsonl", stance_pairs(45))
    return tmp_path


def build(tmp_path: Path, cfg: DatasetConfig, name: str = "out") -> tuple[dict, Path]:
    out = tmp_path / name
    return build_datasets(cfg, out, progress=False), out


# ---------------------------------------------------------------- outputs and manifest
def test_outputs_have_documented_columns_and_classlabel(corpus):
    manifest, out = build(corpus, config(corpus))
    assert set(manifest["outputs"]) == {"boilerplate", "topic", "stance_pairs"}
    tasks = {"boilerplate": "boilerplate", "topic": "topic", "stance_pairs": "stance"}
    for name, task in tasks.items():
        dd = load_from_disk(str(out / name))
        assert list(dd) == ["train", "validation", "test"]
        for split in dd.values():
            assert tuple(split.column_names) == COLUMNS[task]
            assert isinstance(split.features["label"], ClassLabel)
        assert dd["train"].features["label"].names == manifest["outputs"][name]["labels"]
    assert (
        json.loads((out / "manifest.json").read_text("utf-8"))["content_hash"]
        == manifest["content_hash"]
    )


def test_manifest_counts_add_up(corpus):
    write_jsonl(
        corpus / "news.jsonl",
        [make_article(i, label=TOPICS[i % 3]) for i in range(40)] + ["{not json", {"id": "x"}],
    )
    manifest, out = build(corpus, config(corpus))
    reading = manifest["reading"]
    assert reading["read"] == reading["ok"] + reading["rejected"] == 40 + 2 + 45
    for info in reading["inputs"].values():
        assert info["read"] == info["ok"] + info["rejected"]
    for name, entry in manifest["outputs"].items():
        splits = entry["splits"]
        assert entry["examples"] == sum(s["examples"] for s in splits.values())
        assert (
            entry["examples"] == sum(entry["label"].values()) == sum(entry["provenance"].values())
        )
        for s in splits.values():
            assert s["examples"] == sum(s["label"].values()) == sum(s["provenance"].values())
        dd = load_from_disk(str(out / name))
        assert {k: len(v) for k, v in dd.items()} == {k: v["examples"] for k, v in splits.items()}
        by_label = sum(sum(v.values()) for v in entry["provenance_by_label"].values())
        assert by_label == entry["examples"]


def test_rejected_records_carry_file_line_and_reason(corpus):
    path = write_jsonl(
        corpus / "news.jsonl",
        [make_article(0, label="sports"), "{broken", {"id": "no-body", "title": "عنوان"}],
    )
    manifest, _ = build(corpus, config(corpus))
    rejections = manifest["reading"]["rejections"]
    assert [r["where"] for r in rejections] == [f"{path}:2", f"{path}:3"]
    assert "invalid JSON" in rejections[0]["reason"]
    assert "no body" in rejections[1]["reason"] and rejections[1]["id"] == "no-body"
    assert all(r["input"] == "news" for r in rejections)


# ---------------------------------------------------------------- train/serve parity
def test_rows_equal_the_shared_preprocessing(tmp_path, fixture_articles):
    write_jsonl(tmp_path / "news.jsonl", fixture_articles)
    write_jsonl(tmp_path / "pairs.jsonl", stance_pairs(6))
    cfg = config(tmp_path, topic={"labels": None})
    _, out = build(tmp_path, cfg)
    bp = load_from_disk(str(out / "boilerplate"))
    topic = load_from_disk(str(out / "topic"))
    rows = {r["id"]: r for split in bp.values() for r in split}
    topics = {r["id"]: r for split in topic.values() for r in split}
    label_names = bp["train"].features["label"].names
    checked = 0
    for record in fixture_articles:
        article = article_from_record(record)
        if article.id not in topics:
            continue  # a removed duplicate
        for p in boilerplate_inputs(article, default_rules()):
            expected = boilerplate_row(p)
            got = rows[expected["id"]]
            assert {k: got[k] for k in expected} == expected
            assert label_names[got["label"]] == article.labels[p.index]
            assert got["provenance"] == "gold" and got["source"] == article.source
            checked += 1
        assert topics[article.id]["text"] == topic_row(article, article.labels)["text"]
    assert checked > 30


# ---------------------------------------------------------------- duplicates
def test_near_duplicates_removed_recorded_and_not_split(tmp_path, fixture_articles):
    write_jsonl(tmp_path / "news.jsonl", fixture_articles)
    pairs = stance_pairs(9)
    write_jsonl(tmp_path / "pairs.jsonl", pairs + [dict(pairs[0], id="p-copy")])
    manifest, out = build(tmp_path, config(tmp_path, topic={"labels": None}))
    listed = {(d["id"], d["duplicate_of"]) for d in manifest["duplicates"]["listed"]}
    assert ("fx-dup-b", "fx-dup-a") in listed and ("p-copy", "p-0") in listed
    assert manifest["duplicates"]["by_kind"] == {"article": 1, "pair:stance_pairs": 1}
    assert manifest["outputs"]["topic"]["skipped"]["duplicate"] == 1
    for name in ("boilerplate", "topic"):
        ids = {
            r["article_id" if name == "boilerplate" else "id"]
            for s in load_from_disk(str(out / name)).values()
            for r in s
        }
        assert "fx-dup-b" not in ids and "fx-dup-a" in ids


def _shingles(text: str) -> set:
    words = text.split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def test_no_near_duplicate_straddles_splits(tmp_path):
    base = [make_article(i, label=TOPICS[i % 3]) for i in range(30)]
    copies = []
    for i in range(0, 30, 3):  # republished: one word changed, other furniture
        paras = list(base[i]["paragraphs"][:3])
        paras[0] = paras[0].replace(paras[0].split()[3], "تغيير", 1)
        copies.append(
            dict(base[i], id=f"copy-{i}", source="mirror", paragraphs=[*paras, "اقرأ أيضا"])
        )
    write_jsonl(tmp_path / "news.jsonl", base + copies)
    write_jsonl(tmp_path / "pairs.jsonl", stance_pairs(3))
    manifest, out = build(tmp_path, config(tmp_path))
    assert manifest["duplicates"]["by_kind"]["article"] == 10
    texts = [
        (s, _shingles(r["text"])) for s, d in load_from_disk(str(out / "topic")).items() for r in d
    ]
    for i, (split_a, a) in enumerate(texts):
        for split_b, b in texts[i + 1 :]:
            if split_a != split_b:
                assert len(a & b) / len(a | b) < 0.7


# ---------------------------------------------------------------- content hash
def test_content_hash_stable_and_sensitive_to_input(corpus):
    first, _ = build(corpus, config(corpus), "a")
    second, _ = build(corpus, config(corpus), "b")
    assert first["content_hash"] == second["content_hash"]
    for name, entry in first["outputs"].items():
        assert entry["content_hash"] == second["outputs"][name]["content_hash"]
    news = [make_article(i, label=TOPICS[i % 3]) for i in range(60)]
    news[5]["paragraphs"][0] += " إضافة"
    write_jsonl(corpus / "news.jsonl", news)
    third, _ = build(corpus, config(corpus), "c")
    assert third["content_hash"] != first["content_hash"]
    assert (
        third["outputs"]["stance_pairs"]["content_hash"]
        == first["outputs"]["stance_pairs"]["content_hash"]
    )


# ---------------------------------------------------------------- splits, labels, annotations
def test_record_split_respected_and_test_carved_from_train(corpus):
    write_jsonl(corpus / "pairs.jsonl", stance_pairs(90, "train") + stance_pairs(30, "dev", "d"))
    manifest, out = build(
        corpus, config(corpus, stance=[{"name": "stance_pairs", "group_by": "target"}])
    )
    dd = load_from_disk(str(out / "stance_pairs"))
    assert {r["id"] for r in dd["validation"]} == {f"d-{i}" for i in range(30)}
    assert len(dd["test"]) > 0 and not any(r["id"].startswith("d-") for r in dd["test"])
    notes = manifest["outputs"]["stance_pairs"]["split_plan"]
    assert notes["carved_from_train"] == ["test"]
    # group_by target: every claim's pairs sit in one split.
    split_of_claim: dict[str, set] = {}
    for split, d in dd.items():
        for r in d:
            split_of_claim.setdefault(r["target"], set()).add(split)
    assert all(len(s) == 1 for s in split_of_claim.values())


def test_topic_labels_from_section_url_rules_and_label_map(tmp_path):
    news = [
        make_article(0, label="sport"),  # label_map -> sports
        make_article(1, section="اقتصاد"),  # section rule
        make_article(2, url="https://x.example/politics/1"),  # url rule
        make_article(3),  # no label at all
        make_article(4, label="culture"),  # not in labels
    ]
    write_jsonl(tmp_path / "news.jsonl", news)
    write_jsonl(tmp_path / "pairs.jsonl", stance_pairs(3))
    topic = {
        "labels": TOPICS,
        "label_map": {"sport": "sports"},
        "section_rules": {"اقتصاد": "economy"},
        "url_rules": {r"/politics/": "politics"},
    }
    manifest, _ = build(tmp_path, config(tmp_path, topic=topic))
    entry = manifest["outputs"]["topic"]
    assert entry["label"] == {"economy": 1, "politics": 1, "sports": 1}
    assert entry["provenance"] == {"gold": 1, "section_rule": 1, "url_rule": 1}
    assert entry["skipped"] == {"label_not_in_labels": 1, "unlabeled": 1}


def test_annotations_join_articles_by_id(corpus):
    annotations = [
        {"id": "art-001", "claim": "الحكومة تطلق مشروعا جديدا", "label": "agree"},
        {"id": "art-002", "target": "الاقتصاد", "label": "Against"},
        {"id": "missing-article", "claim": "ادعاء", "label": "agree"},
        "{bad json",
    ]
    write_jsonl(corpus / "ann.jsonl", annotations)
    stance = [{"name": "stance_ann", "inputs": ["news"], "annotations": ["ann.jsonl"]}]
    manifest, out = build(corpus, config(corpus, stance=stance))
    rows = {r["id"]: r for d in load_from_disk(str(out / "stance_ann")).values() for r in d}
    assert set(rows) == {"art-001|الحكومة تطلق مشروعا جديدا", "art-002|الاقتصاد"}
    row = rows["art-002|الاقتصاد"]
    assert row["provenance"] == "annotation" and row["dataset"] == "ann"
    topic = {r["id"]: r for d in load_from_disk(str(out / "topic")).values() for r in d}
    assert row["text"] == topic["art-002"]["text"].replace("\n", " ")  # stance_row normalizes
    info = manifest["outputs"]["stance_ann"]["annotations"]
    assert info["unmatched_listed"] == ["missing-article"]
    assert info["rejected_total"] == 1 and info["rejected"][0]["where"].endswith("ann.jsonl:4")


def test_input_limit_and_unique_names(corpus):
    cfg = config(corpus)
    cfg.inputs[0].limit = 10
    manifest, _ = build(corpus, cfg)
    assert manifest["reading"]["inputs"]["news"]["read"] == 10
    with pytest.raises(ValueError, match="unique"):
        build_datasets(
            config(corpus, inputs=[{"name": "a", "path": "news.jsonl"}] * 2), corpus / "x"
        )


# ---------------------------------------------------------------- shipped configs
def test_sample_config_builds_and_drops_the_republished_stories(tmp_path):
    cfg = load_dataset_config(REPO / "configs/datasets/sample.yaml")
    manifest, out = build(tmp_path, cfg)
    dropped = {d["id"] for d in manifest["duplicates"]["listed"]}
    assert dropped == {"sample-014", "sample-025", "sample-042", "sample-047"}
    assert manifest["outputs"]["topic"]["examples"] == 44
    assert set(manifest["outputs"]) == {"boilerplate", "topic", "stance_claims", "stance_targets"}


@pytest.mark.data
def test_shared_data_slice_builds(tmp_path, shared_data):
    cfg = load_dataset_config(REPO / "configs/datasets/shared_data.yaml")
    cfg.workers = 1  # a 300-article slice: spawning workers would cost more than it saves
    for spec in cfg.inputs:  # point at the fixture's copy; 300 articles per corpus, all pairs
        spec.path = str(shared_data / Path(spec.path).relative_to("../shared/data"))
        spec.limit = 300 if spec.tasks != ["stance"] else None
    manifest, out = build(tmp_path, cfg)
    outputs = manifest["outputs"]
    assert set(outputs) == {
        "boilerplate", "topic_ant_multisource", "topic_jawharafm", "stance_ans", "stance_mawqif"
    }  # fmt: skip
    assert manifest["reading"]["inputs"]["saudinewsnet"]["read"] == 300
    assert outputs["boilerplate"]["label"]["boilerplate"] > 0
    assert outputs["stance_ans"]["split_plan"]["carved_from_train"] == ["test"]
    assert outputs["stance_mawqif"]["split_plan"]["carved_from_train"] == ["validation", "test"]
    for entry in outputs.values():
        assert entry["examples"] == sum(s["examples"] for s in entry["splits"].values())


def test_worker_processes_build_the_same_datasets(corpus):
    one, _ = build(corpus, config(corpus), "one")
    two, _ = build(corpus, config(corpus, workers=2), "two")
    assert two["content_hash"] == one["content_hash"]


@pytest.mark.parametrize("dedup", [True, False])
def test_workers_read_reject_and_number_records_like_one_process(corpus, dedup):
    # Blank lines are no records, broken ones are rejected with their line: the workers parse the
    # raw lines, the parent numbers them; both must agree with the single-process build.
    news = [make_article(i, label=TOPICS[i % 3]) for i in range(50)]
    news[30] = dict(news[3], id="copy-of-3")  # a duplicate (kept when dedup is off)
    write_jsonl(corpus / "news.jsonl", news[:20] + ["", "{broken", *news[20:], "   ", {"id": "x"}])
    settings = {"dedup": {"threshold": 0.7, "enabled": dedup}}
    one, _ = build(corpus, config(corpus, **settings), "one")
    two, _ = build(corpus, config(corpus, workers=3, **settings), "three")
    assert two["content_hash"] == one["content_hash"]
    for key in ("reading", "duplicates"):
        assert two[key] == one[key]
    assert {k: v["skipped"] for k, v in two["outputs"].items()} == {
        k: v["skipped"] for k, v in one["outputs"].items()
    }


def test_json_and_jsonl_inputs_build_the_same_examples(corpus):
    # JSON Lines are parsed in the workers from raw lines, other formats by the readers here.
    news = [make_article(i, label=TOPICS[i % 3]) for i in range(30)]
    write_jsonl(corpus / "news.jsonl", news)
    (corpus / "news.json").write_text(json.dumps(news, ensure_ascii=False), encoding="utf-8")
    as_jsonl, _ = build(corpus, config(corpus, workers=2), "jsonl")
    cfg = config(corpus, workers=2)
    cfg.inputs[0].path = "news.json"
    as_json, _ = build(corpus, cfg, "json")
    assert as_json["content_hash"] == as_jsonl["content_hash"]


def test_encoded_rows_hash_the_documented_row_bytes():
    # Workers encode rows as Arrow batches + content-hash bytes (joined by Arrow, or row by row
    # when a list is ragged); both must be exactly row_bytes, and the batches the rows.
    from training.dataset.row_parts import _FIELD_SEP, OutputFormat, encode_rows, row_bytes
    from training.dataset.writer import task_features

    rng = random.Random(4)
    for task, columns in COLUMNS.items():
        fmt = OutputFormat(task, columns, ("a", "b"), task_features(task, ["a", "b"]).arrow_schema)
        for _ in range(150):
            width = rng.choice([0, 1, 3])
            rows = []
            for _ in range(rng.randrange(6)):
                row = {col: "".join(rng.choice("ab\x1fعن ") for _ in range(4)) for col in columns}
                row.update(label=rng.choice("ab"))
                if "index" in row:
                    row["index"] = rng.randrange(-3, 99)
                if "features" in row:
                    ragged = rng.random() < 0.1
                    row["features"] = [rng.random() for _ in range(width + ragged)]
                rows.append((rng.choice(["train", "validation", "test"]), row))
            part = encode_rows(fmt, rows)
            expected = b"".join(
                split.encode() + _FIELD_SEP + row_bytes(r, columns) for split, r in rows
            )
            assert part.digest == expected
            by_split: dict = {}
            for split, r in rows:
                by_split.setdefault(split, []).append({**r, "label": "ab".index(r["label"])})
            assert {s: b.to_pylist() for s, b in part.batches.items()} == by_split


def test_a_build_that_fails_late_leaves_the_previous_outputs(corpus, monkeypatch):
    """Outputs are finished one by one, but published together: a failure after the first output
    is saved (here: while saving the second) leaves out_dir exactly as the previous build left it."""
    from training.dataset.writer import OutputWriter

    _, out = build(corpus, config(corpus))
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    real_close, calls = OutputWriter.close, []

    def close_then_fail(self, save_dir):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_close(self, save_dir)

    monkeypatch.setattr(OutputWriter, "close", close_then_fail)
    write_jsonl(
        corpus / "news.jsonl", [make_article(i, label=TOPICS[i % 3]) for i in range(100, 160)]
    )
    with pytest.raises(OSError, match="disk full"):
        build(corpus, config(corpus))
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(calls) == 2 and after == before
