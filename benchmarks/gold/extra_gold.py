"""The enlarged boilerplate gold: 160 articles from all 20 outlets of ``../shared/data``.

The labels (``boilerplate_extra_v1.jsonl``: id, source, paragraph count, labels, kinds, furniture
spans as character offsets) are in the repo; the text is not (SaudiNewsNet is CC BY-NC-SA), so
``load_extra_gold(data_dir)`` joins them with the articles in ``../shared/data`` and returns records
in the format of ``boilerplate_gold_dev/dev.jsonl``. ``python benchmarks/gold/extra_gold.py DATA OUT``
writes them as a JSON Lines file.

How they were made: 8 articles per outlet (seeded sample, 2-30 paragraphs, none from the gold dev
set), labeled paragraph by paragraph following ``boilerplate_gold_dev/GUIDELINES.md`` twice, by two
independent annotators; the two passes agreed on all 1,005 non-empty paragraphs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LABELS = Path(__file__).with_name("boilerplate_extra_v1.jsonl")
SOURCES = {  # file under DATA, how to get the outlet and the paragraphs of a row
    "saudinewsnet_raw/articles.jsonl": lambda r: (r["source"], r["paragraphs"]),
    "ant_corpus_multisource_v2_1/topic.jsonl": lambda r: (
        r["path"].split("/")[0],
        r["text"].split("\n"),
    ),
    "ant_corpus_v1_1_jawharafm/topic.jsonl": lambda r: ("JawharaFM", r["text"].split("\n")),
}


def load_extra_gold(data_dir: str | Path) -> list[dict]:
    wanted = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        wanted[row["id"]] = row
    found: dict[str, dict] = {}
    for rel, parts in SOURCES.items():
        with open(Path(data_dir) / rel, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec["id"] in wanted:
                    source, paragraphs = parts(rec)
                    found[rec["id"]] = _join(wanted[rec["id"]], rec, source, paragraphs)
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(f"{len(missing)} gold articles not found in {data_dir}: {missing[:5]}")
    return [found[i] for i in wanted]


def _join(labels: dict, rec: dict, source: str, paragraphs: list[str]) -> dict:
    if len(paragraphs) != labels["n_paragraphs"] or source != labels["source"]:
        raise ValueError(f"{rec['id']}: the article in the data no longer matches its labels")
    spans = [
        None if s is None else paragraphs[i][s[0] : s[1]] for i, s in enumerate(labels["spans"])
    ]
    return {
        "id": rec["id"],
        "source": source,
        "title": rec.get("title") or "",
        "url": rec.get("url") or "",
        "paragraphs": paragraphs,
        "labels": labels["labels"],
        "kinds": labels["kinds"],
        "spans": spans,
    }


if __name__ == "__main__":
    data, out = sys.argv[1], sys.argv[2]
    with open(out, "w", encoding="utf-8") as fh:
        for row in load_extra_gold(data):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
