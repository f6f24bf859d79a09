"""When the boilerplate model flags every paragraph of an article, what should topic and stance read?

Two rules compared on the articles where it happens:
- ``story``: what the tagger did before: title + the (empty) story, so the topic reads the title only
  (or nothing, for an article without a title);
- ``unfiltered``: title + every non-empty paragraph, as if no boilerplate model were given.

Measured on
1. the hand-labeled boilerplate dev set (``boilerplate_gold_dev/dev.jsonl``): how often every
   paragraph is flagged, and how many of those paragraphs the gold calls story (``content``);
2. the ANT multi-source articles (gold topic labels) whose id hashes to the quick bundles' test
   share (``bench_data._split``: never in their training data): how often every paragraph is
   flagged, and the topic accuracy of both rules on those articles (and on all of them).

    .venv/bin/python benchmarks/all_removed.py [--bundles DIR] [--demo DIR]

``--bundles DIR``: ``DIR/{boilerplate,topic}`` (default: train the quick default-config bundles,
about 30 s). ``--demo DIR``: also measure the demo's boilerplate model (``DIR/bundles/boilerplate``)
on the dev set.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import (  # noqa: E402
    DEFAULT_DATA,
    _split,
    bundles_from_dir,
    machine_line,
    require,
    train_quick_bundles,
)


def _articles(path: Path, keep=lambda rec: True) -> list:
    from inference.errors import RecordError
    from inference.text.schema import article_from_record

    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if not keep(rec):
                continue
            try:
                out.append(article_from_record(rec))
            except RecordError:
                continue
    return out


def _flagged(tagger, articles) -> list[list]:
    return [rec["boilerplate"]["labels"] for rec in tagger.tag_batch(articles)]


def _all_removed(labels: list) -> bool:
    kept = [lab for lab in labels if lab is not None]
    return bool(kept) and all(lab == "boilerplate" for lab in kept)


def dev_set(tagger, data: Path, name: str) -> dict:
    arts = _articles(require(data / "boilerplate_gold_dev" / "dev.jsonl", "gold dev set"))
    flagged = _flagged(tagger, arts)
    hit = [(a, f) for a, f in zip(arts, flagged, strict=True) if _all_removed(f)]
    gold_story = sum(lab == "content" for a, _ in hit for lab in a.labels)
    gold_furniture = sum(lab == "boilerplate" for a, _ in hit for lab in a.labels)
    one_para = sum(len([p for p in a.paragraphs if p.strip()]) == 1 for a in arts)
    return {
        "model": name,
        "articles": len(arts),
        "one_paragraph_articles": one_para,
        "all_flagged": len(hit),
        "all_flagged_ids": [a.id for a, _ in hit],
        "their_paragraphs_gold_content": gold_story,
        "their_paragraphs_gold_boilerplate": gold_furniture,
        "articles_all_gold_boilerplate": sum(
            _all_removed(a.labels) for a in arts if a.labels is not None
        ),
    }


def dev_short(tagger, data: Path) -> dict:
    """Every gold story paragraph of the dev set alone, with its article's title: a short brief."""
    from dataclasses import replace

    arts = _articles(require(data / "boilerplate_gold_dev" / "dev.jsonl", "gold dev set"))
    briefs = [
        replace(a, id=f"{a.id}#{i}", paragraphs=[p], labels=None)
        for a in arts
        for i, (p, lab) in enumerate(zip(a.paragraphs, a.labels, strict=True))
        if lab == "content"
    ]
    flagged = _flagged(tagger, briefs)
    return {"one_paragraph_briefs": len(briefs), "all_flagged": sum(map(_all_removed, flagged))}


def scan_corpus(tagger, data: Path, name: str) -> dict:
    arts = _articles(require(data / name, name))
    hit = []
    for i in range(0, len(arts), 256):
        batch = arts[i : i + 256]
        hit += [a for a, f in zip(batch, _flagged(tagger, batch), strict=True) if _all_removed(f)]
    examples = [{"id": a.id, "title": a.title, "text": a.text[:160]} for a in hit[:6]]
    return {"corpus": name, "articles": len(arts), "all_flagged": len(hit), "examples": examples}


def ant_topic(tagger, data: Path, lead_only: bool = False) -> dict:
    """ANT test-share articles (``lead_only``: cut to their first non-empty paragraph)."""
    from dataclasses import replace

    from inference.text.preprocess import topic_row

    arts = _articles(
        require(data / "ant_corpus_multisource_v2_1" / "topic.jsonl", "ANT topic"),
        keep=lambda rec: _split(str(rec.get("id"))) == "test",
    )
    if lead_only:
        arts = [replace(a, paragraphs=[next(p for p in a.paragraphs if p.strip())]) for a in arts]
    topic = tagger.bundles["topic"]
    flagged = []
    for i in range(0, len(arts), 256):
        flagged += _flagged(tagger, arts[i : i + 256])
    hit = [i for i, f in enumerate(flagged) if _all_removed(f)]
    rows = {
        "story": [topic_row(arts[i], flagged[i]) for i in hit],
        "unfiltered": [topic_row(arts[i], None) for i in hit],
    }
    gold = [arts[i].label for i in hit]
    result = {"lead_only": lead_only, "articles": len(arts), "all_flagged": len(hit)}
    for rule, rule_rows in rows.items():
        labels, scores = topic.predict(rule_rows) if rule_rows else ([], [])
        right = sum(p == g for p, g in zip(labels, gold, strict=True))
        result[rule] = {
            "accuracy": round(right / len(hit), 3) if hit else None,
            "right": right,
            "mean_score": round(float(sum(scores) / len(hit)), 3) if hit else None,
            "distinct_labels": len(set(labels)),
        }
    everyone, _ = topic.predict([topic_row(a, f) for a, f in zip(arts, flagged, strict=True)])
    right = sum(p == a.label for p, a in zip(everyone, arts, strict=True))
    result["all_articles_accuracy_story_rule"] = round(right / len(arts), 3)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bundles", type=Path)
    ap.add_argument("--save-bundles", type=Path, help="keep the quick bundles here")
    ap.add_argument("--demo", type=Path, help="a `khabar demo` folder")
    args = ap.parse_args()
    from inference.tagger import load_tagger

    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        if args.bundles:
            bundles = bundles_from_dir(args.bundles)
        else:
            bundles = train_quick_bundles(args.data, args.save_bundles or Path(tmp) / "quick")
        tagger = load_tagger([str(bundles["boilerplate"]), str(bundles["topic"])])
        print(json.dumps(dev_set(tagger, args.data, "quick default-config"), ensure_ascii=False))
        if args.demo:
            demo = load_tagger([str(args.demo / "bundles" / "boilerplate")])
            print(json.dumps(dev_set(demo, args.data, "demo"), ensure_ascii=False))
        print(json.dumps({"dev_short": dev_short(tagger, args.data)}))
        if args.demo:
            print(json.dumps({"dev_short_demo": dev_short(demo, args.data)}))
        print(json.dumps(scan_corpus(tagger, args.data, "saudinewsnet_raw/articles.jsonl")))
        print(json.dumps({"ant_topic": ant_topic(tagger, args.data)}, ensure_ascii=False))
        lead = ant_topic(tagger, args.data, lead_only=True)
        print(json.dumps({"ant_topic_lead_only": lead}, ensure_ascii=False))
        if args.demo:  # the demo's boilerplate model in front of the quick topic model
            mixed = load_tagger([str(args.demo / "bundles" / "boilerplate"), str(bundles["topic"])])
            for lead_only in (False, True):
                result = ant_topic(mixed, args.data, lead_only=lead_only)
                print(json.dumps({"ant_topic_demo_boilerplate": result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
