"""``khabar annotate import``: a Label Studio JSON export -> the annotation file ``build-dataset`` reads.

Each unit (a paragraph for boilerplate, the article for topic, the claim/text pair for stance) gets
the label most of its reviewers chose. A tie leaves the unit without a label and is reported, as is
a task every reviewer skipped (``was_cancelled``) or nobody reviewed: nothing is guessed. One vote
per reviewer and unit (a reviewer's latest annotation counts), also across copies of one task.

Everything is checked before anything is written: the export's shape, every chosen label (against
the labels the task was exported with), and that each reviewed article is still in the corpus with
the paragraphs it was exported with. The first problem found is one :class:`AnnotationError`.

Lines written (JSON Lines, one per reviewed article or pair, in export order)::

    {"id", "task": "boilerplate", "labels": [one per paragraph; null: empty, tied or not voted],
     "origin": "review", "reviewers": n, "model_version": ...}
    {"id", "task": "topic", "label", "origin": "review", "reviewers": n, "model_version": ...}
    {"id", "task": "stance", "claim", "label", "origin": "review", "reviewers": n, ...}
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from training.annotate.files import read_corpus, write_atomic
from training.annotate.ls_export import ExportedTask, fail, load_export

ORIGIN = "review"  # what build-dataset reads as provenance "review"
MAX_LISTED = 1000


def import_reviews(export: str | Path, out: str | Path, corpus: str | Path | None = None) -> dict:
    """Read a Label Studio JSON export, vote, check against the corpus, write ``out`` (JSONL).

    ``corpus``: the articles file; default: the input each task was exported from. Returns the
    report (counts, skipped and unreviewed tasks, ties). Raises ``AnnotationError`` before writing
    anything when the export, a label or an article is wrong.
    """
    path, out = Path(export), Path(out)
    tasks = load_export(path)
    reviewed = [t for t in tasks if t.votes]
    units = _ballots(reviewed)
    decided, ties, split_votes = _majority(units, tasks[0].task)
    predicted = {unit: label for t in tasks for unit, label in t.predicted.items()}
    articles = _check_corpus(path, reviewed, corpus)
    lines = _lines(reviewed, units, decided, articles)
    write_atomic(out, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    skipped = [t.article_id for t in tasks if not t.votes and t.cancelled]
    unreviewed = [t.article_id for t in tasks if not t.votes and not t.cancelled]
    return {
        "export": str(path),
        "out": str(out),
        "task": tasks[0].task,
        "tasks": len(tasks),
        "reviewed_tasks": len(reviewed),
        "skipped_tasks": len(skipped),
        "skipped": skipped[:MAX_LISTED],
        "unreviewed_tasks": len(unreviewed),
        "unreviewed": unreviewed[:MAX_LISTED],
        "annotators": len({who for t in reviewed for who in t.votes}),
        "written": len(lines),
        "units_labeled": len(decided),
        "ties": len(ties),
        "tied": ties[:MAX_LISTED],
        "majority_not_unanimous": split_votes,
        "changed_from_model": sum(
            predicted.get(unit) not in (None, label) for unit, label in decided.items()
        ),
    }


def _ballots(reviewed: list[ExportedTask]) -> dict[tuple, dict[str, tuple]]:
    """unit -> {annotator: (order, label)}: each annotator's latest choice for the unit."""
    units: dict[tuple, dict[str, tuple]] = defaultdict(dict)
    for t in reviewed:
        for who, (order, choices) in t.votes.items():
            for unit, label in choices.items():
                if who not in units[unit] or order >= units[unit][who][0]:
                    units[unit][who] = (order, label)
    return units


def _majority(units: dict, task: str) -> tuple[dict[tuple, str], list[dict], int]:
    """(unit -> majority label, the ties, how many majorities were not unanimous)."""
    decided: dict[tuple, str] = {}
    ties: list[dict] = []
    split_votes = 0
    for unit, ballots in units.items():
        counts = Counter(label for _, label in ballots.values()).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            tie: dict = {"id": unit[0], "votes": dict(sorted(counts))}
            if task == "boilerplate":
                tie["paragraph"] = unit[1]
            elif task == "stance":
                tie["claim"] = unit[1]
            ties.append(tie)
            continue
        decided[unit] = counts[0][0]
        split_votes += len(counts) > 1
    return decided, ties, split_votes


def _check_corpus(path: Path, reviewed: list[ExportedTask], corpus: str | Path | None) -> dict:
    """The corpus article of each reviewed task, after checking it is there, unchanged."""
    by_file: dict[str, list[ExportedTask]] = defaultdict(list)
    for t in reviewed:
        source = str(corpus) if corpus is not None else t.input
        if not source:
            raise fail(path, t.where, "the task does not name its input: pass --input CORPUS")
        by_file[source].append(t)
    articles = {}
    for source, group in by_file.items():
        found = read_corpus(source, {t.article_id for t in group})
        for t in group:
            art = found.get(t.article_id)
            if art is None:
                raise fail(path, t.where, f"article {t.article_id!r} is not in the corpus {source}")
            if t.n_paragraphs is not None and t.n_paragraphs != len(art.paragraphs):
                raise fail(
                    path,
                    t.where,
                    f"article {t.article_id!r} was exported with {t.n_paragraphs} paragraphs and "
                    f"has {len(art.paragraphs)} in {source}: it changed since the export",
                )
            for idx, text in t.paragraphs:
                if idx >= len(art.paragraphs) or art.paragraphs[idx] != text:
                    raise fail(
                        path,
                        t.where,
                        f"paragraph {idx} of article {t.article_id!r} is not the one in {source}: "
                        "the article changed since the export",
                    )
            articles[t.article_id] = art
    return articles


def _lines(reviewed: list[ExportedTask], units: dict, decided: dict, articles: dict) -> list[dict]:
    """One annotation line per reviewed article (pair), in export order; none when all tied."""
    out, done = [], set()
    for t in reviewed:
        if t.owner in done:
            continue
        done.add(t.owner)
        if t.task == "boilerplate":
            n = len(articles[t.article_id].paragraphs)
            keys = [(t.article_id, i) for i in range(n)]
            labels = [decided.get(key) for key in keys]
            if not any(labels):
                continue
            line = {"id": t.article_id, "task": t.task, "labels": labels}
        else:
            keys = [t.owner]
            if t.owner not in decided:
                continue
            line = {"id": t.article_id, "task": t.task}
            if t.task == "stance":
                line["claim"] = t.claim
            line["label"] = decided[t.owner]
        voters = {who for key in keys for who in units.get(key, {})}
        line.update(origin=ORIGIN, reviewers=len(voters), model_version=t.model_version)
        out.append(line)
    return out
