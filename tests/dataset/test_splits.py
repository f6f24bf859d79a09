"""Split assignment (training/dataset/splits.py): stratified random, by source, by time, record
splits."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from training.config import SplitConfig
from training.dataset.splits import SplitPlanner, canonical_split, parse_published, quotas


def plan(examples: list[dict], **cfg) -> list[str]:
    planner = SplitPlanner(SplitConfig(**cfg))
    for ex in examples:
        planner.add(**ex)
    result = planner.assign()
    return [result.split_of(i) for i in range(len(examples))]


def labeled(n_per_label: dict[str, int]) -> list[dict]:
    return [
        {"group": f"{label}-{i}", "stratum": label}
        for label, n in n_per_label.items()
        for i in range(n)
    ]


def test_random_split_is_stratified_by_label():
    examples = labeled({"a": 100, "b": 30, "c": 10})
    splits = plan(examples)
    by_label = defaultdict(Counter)
    for ex, split in zip(examples, splits, strict=True):
        by_label[ex["stratum"]][split] += 1
    assert by_label["a"] == {"train": 80, "validation": 10, "test": 10}
    assert by_label["b"] == {"train": 24, "validation": 3, "test": 3}
    assert by_label["c"] == {"train": 8, "validation": 1, "test": 1}


def test_groups_never_straddle_splits():
    examples = [{"group": f"claim-{i // 5}", "stratum": str(i % 3)} for i in range(200)]
    splits = plan(examples)
    seen: dict[str, set] = defaultdict(set)
    for ex, split in zip(examples, splits, strict=True):
        seen[ex["group"]].add(split)
    assert all(len(s) == 1 for s in seen.values())
    assert set(splits) == {"train", "validation", "test"}


def test_deterministic_and_independent_of_input_order():
    examples = labeled({"a": 50, "b": 50})
    first = dict(zip((e["group"] for e in examples), plan(examples), strict=True))
    again = dict(zip((e["group"] for e in examples), plan(examples), strict=True))
    reordered = list(reversed(examples))
    other_order = dict(zip((e["group"] for e in reordered), plan(reordered), strict=True))
    assert first == again == other_order
    other_seed = dict(zip((e["group"] for e in examples), plan(examples, seed=7), strict=True))
    assert other_seed != first


def test_record_split_is_respected_and_dev_means_validation():
    examples = [{"group": f"t{i}", "stratum": "x", "record_split": "train"} for i in range(90)]
    examples += [{"group": f"d{i}", "stratum": "x", "record_split": "dev"} for i in range(20)]
    splits = plan(examples)
    assert all(s == "validation" for s in splits[90:])
    # ANS-like: train + dev given, so test is carved from train (fractions renormalized).
    assert Counter(splits[:90]) == {"train": 80, "test": 10}


def test_train_only_records_get_validation_and_test_carved_stratified():
    examples = [
        {"group": f"{lab}{i}", "stratum": lab, "record_split": "train"}
        for lab, n in (("Favor", 60), ("Against", 30), ("None", 10))
        for i in range(n)
    ]
    splits = plan(examples)
    counts = Counter((ex["stratum"], s) for ex, s in zip(examples, splits, strict=True))
    assert counts[("Favor", "validation")] == 6 and counts[("Favor", "test")] == 6
    assert counts[("None", "validation")] == 1 and counts[("None", "test")] == 1


def test_record_split_ignored_when_not_respected():
    examples = [{"group": f"d{i}", "record_split": "dev"} for i in range(100)]
    assert Counter(plan(examples, respect_record_split=False)) == {
        "train": 80,
        "validation": 10,
        "test": 10,
    }


def test_unknown_record_split_is_reported_and_pooled():
    planner = SplitPlanner(SplitConfig())
    for i in range(10):
        planner.add(f"g{i}", record_split="holdout")
    result = planner.assign()
    assert result.notes["unknown_record_splits"] == {"holdout": 10}
    assert sum(result.counts().values()) == 10


def test_by_source_named_test_sources_go_whole_to_test():
    examples = [
        {"group": f"{src}-{i}", "stratum": "x", "source": src}
        for src in ("alpha", "beta", "gamma", "delta")
        for i in range(25)
    ]
    splits = plan(examples, method="source", test_sources=["gamma"])
    for ex, split in zip(examples, splits, strict=True):
        assert (split == "test") == (ex["source"] == "gamma")
    assert Counter(splits)["validation"] > 0


def test_by_source_hashed_keeps_sources_whole_and_one_for_training():
    examples = [
        {"group": f"{src}-{i}", "source": src}
        for src in "abcdefgh"
        for i in range(10 + ord(src) % 7)
    ]
    splits = plan(examples, method="source")
    test_sources = {ex["source"] for ex, s in zip(examples, splits, strict=True) if s == "test"}
    other_sources = {ex["source"] for ex, s in zip(examples, splits, strict=True) if s != "test"}
    assert test_sources and other_sources and not (test_sources & other_sources)


def test_by_time_oldest_train_newest_test_undated_train():
    day0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    examples = [
        {"group": f"g{i}", "published": (day0 + timedelta(days=(i * 37) % 100)).isoformat()}
        for i in range(100)
    ]
    examples.append({"group": "undated", "published": None})
    splits = plan(examples, method="time")
    times = defaultdict(list)
    for ex, split in zip(examples[:100], splits[:100], strict=True):
        times[split].append(parse_published(ex["published"]))
    assert Counter(splits[:100]) == {"train": 80, "validation": 10, "test": 10}
    assert max(times["train"]) < min(times["validation"])
    assert max(times["validation"]) < min(times["test"])
    assert splits[-1] == "train"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-07-21 02:51:32", datetime(2015, 7, 21, 2, 51, 32, tzinfo=timezone.utc)),
        ("2017-01-20T21:43:00+01:00", datetime(2017, 1, 20, 20, 43, tzinfo=timezone.utc)),
        ("Thu, 01 Mar 2018 02:28:09 +0400", datetime(2018, 2, 28, 22, 28, 9, tzinfo=timezone.utc)),
        ("2025-06-03", datetime(2025, 6, 3, tzinfo=timezone.utc)),
    ],
)
def test_parse_published_formats(value, expected):
    assert parse_published(value) == expected.timestamp()


def test_parse_published_bad_values_are_nan():
    assert math.isnan(parse_published(None))
    assert math.isnan(parse_published("yesterday"))


def test_canonical_split_names():
    assert canonical_split("dev") == canonical_split("VAL") == "validation"
    assert canonical_split("train") == "train" and canonical_split("test") == "test"
    assert canonical_split("other") is None


def test_quotas_sum_to_total():
    for total in (0, 1, 2, 7, 101):
        assert sum(quotas(total, {"train": 0.8, "validation": 0.1, "test": 0.1}).values()) == total


def test_unknown_fraction_key_is_an_error():
    with pytest.raises(ValueError, match="unknown split"):
        SplitPlanner(SplitConfig(fractions={"train": 0.9, "dev": 0.1}))


def test_empty_planner_assigns_nothing():
    result = SplitPlanner(SplitConfig()).assign()
    assert result.counts() == {"train": 0, "validation": 0, "test": 0}
