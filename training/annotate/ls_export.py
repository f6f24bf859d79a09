"""Reading Label Studio's JSON export of tasks made by ``khabar annotate export``.

The export is a list of tasks, each with its ``data`` (as exported, ``khabar`` block included) and
its ``annotations`` (``completed_by``, ``result``, ``was_cancelled``). Every shape problem, unknown
control and unknown label is an :class:`AnnotationError` naming the file and the task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from training.annotate.errors import AnnotationError
from training.annotate.label_studio import (
    CHOICES,
    KHABAR_KEY,
    PARAGRAPH_CONTROL,
    STANCE_CONTROL,
    TASKS,
    TOPIC_CONTROL,
)


@dataclass
class ExportedTask:
    """One task as read back: the article (and claim) it is about, and what its reviewers chose."""

    where: str  # "task 3 (Label Studio id 17)"
    article_id: str
    task: str
    labels: list[str]  # the labels the task was exported with
    model_version: str | None
    input: str | None  # the corpus it was exported from
    n_paragraphs: int | None
    paragraphs: list[tuple[int, str]]  # boilerplate: (index in the article, text) per position
    claim: str | None  # stance
    predicted: dict = field(default_factory=dict)  # unit -> the model's label
    # annotator -> (order, {unit: label}) of their latest annotation with a choice in it
    votes: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    cancelled: int = 0  # annotations skipped in Label Studio

    @property
    def owner(self) -> tuple[str, str | None]:
        """What one annotation line is about: the article, and the claim for stance."""
        return (self.article_id, self.claim)


def fail(path: Path, where: str, message: str) -> AnnotationError:
    return AnnotationError(f"{path}: {where}: {message}")


def load_export(path: Path) -> list[ExportedTask]:
    """Every task of the export at ``path``, with its votes; all of one task kind."""
    raw_tasks = _load(path)
    tasks = []
    for i, raw in enumerate(raw_tasks):
        t = _task(path, i, raw)
        _read_annotations(path, t, raw.get("annotations") or [])
        tasks.append(t)
    kinds = sorted({t.task for t in tasks})
    if len(kinds) > 1:
        raise AnnotationError(
            f"{path}: the export mixes tasks of {', '.join(kinds)}; import one task at a time"
        )
    return tasks


def _load(path: Path) -> list:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise AnnotationError(f"export file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{path}: not a Label Studio JSON export: invalid JSON at line {exc.lineno} "
            f"column {exc.colno} ({exc.msg})"
        ) from None
    if not isinstance(data, list):
        raise AnnotationError(
            f"{path}: not a Label Studio JSON export: expected a list of tasks, got "
            f"{type(data).__name__} (export the project as 'JSON')"
        )
    if not data:
        raise AnnotationError(f"{path}: the export has no tasks")
    return data


def _task(path: Path, i: int, raw) -> ExportedTask:
    where = f"task {i + 1}"
    if not isinstance(raw, dict):
        raise fail(path, where, f"a task must be a JSON object, got {type(raw).__name__}")
    if raw.get("id") is not None:
        where += f" (Label Studio id {raw['id']})"
    data = raw.get("data")
    if not isinstance(data, dict):
        raise fail(path, where, "no 'data' object (export the project as 'JSON', not 'JSON_MIN')")
    meta = data.get(KHABAR_KEY)
    if not isinstance(meta, dict) or meta.get("task") not in TASKS:
        raise fail(path, where, f"no '{KHABAR_KEY}' block in its data: not made by annotate export")
    if not isinstance(raw.get("annotations", []), list):
        raise fail(path, where, "'annotations' must be a list")
    labels, article_id, task = meta.get("labels"), data.get("id"), meta["task"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise fail(path, where, f"'{KHABAR_KEY}.labels' must be a non-empty list of strings")
    if not isinstance(article_id, (str, int)) or article_id == "":
        raise fail(path, where, "its data has no article 'id'")
    paragraphs: list[tuple[int, str]] = []
    if task == "boilerplate":
        items = data.get("paragraphs")
        if not isinstance(items, list) or not all(_is_paragraph(p) for p in items):
            raise fail(path, where, "'paragraphs' must be a list of {index, text}")
        paragraphs = [(p["index"], p["text"]) for p in items]
    claim = data.get("claim") if task == "stance" else None
    if task == "stance" and (not isinstance(claim, str) or not claim.strip()):
        raise fail(path, where, "a stance task needs its 'claim'")
    n_paragraphs = meta.get("n_paragraphs")
    t = ExportedTask(
        where=where,
        article_id=str(article_id),
        task=task,
        labels=list(labels),
        model_version=meta.get("model_version"),
        input=meta.get("input"),
        n_paragraphs=n_paragraphs if isinstance(n_paragraphs, int) else None,
        paragraphs=paragraphs,
        claim=claim,
    )
    t.predicted = _predicted(t, meta.get("predicted"))
    return t


def _is_paragraph(p) -> bool:
    return (
        isinstance(p, dict) and isinstance(p.get("index"), int) and isinstance(p.get("text"), str)
    )


def _predicted(t: ExportedTask, given) -> dict:
    """unit -> the model's label, from the export's own record of its pre-annotations."""
    if t.task == "boilerplate":
        if isinstance(given, list) and len(given) == len(t.paragraphs):
            return {
                (t.article_id, idx): label
                for (idx, _), label in zip(t.paragraphs, given, strict=True)
            }
        return {}
    return {t.owner: given} if isinstance(given, str) else {}


def _annotator(ann: dict, j: int) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id", who.get("email"))
    return str(who) if who is not None else f"annotation-{ann.get('id', j)}"


def _read_annotations(path: Path, t: ExportedTask, annotations: list) -> None:
    """Each reviewer's choices: the latest of their annotations that chose anything counts."""
    for j, ann in enumerate(annotations):
        where = f"{t.where}, annotation {j + 1}"
        if not isinstance(ann, dict):
            raise fail(path, where, "an annotation must be a JSON object")
        if ann.get("was_cancelled"):
            t.cancelled += 1
            continue
        result = ann.get("result")
        if not isinstance(result, list):
            raise fail(path, where, "'result' must be a list")
        choices: dict = {}
        for item in result:
            unit, label = _choice(path, t, where, item)
            if unit in choices:
                raise fail(path, where, f"two results for {item.get('from_name')!r}")
            choices[unit] = label
        if not choices:
            continue
        who = _annotator(ann, j)
        order = (str(ann.get("updated_at") or ann.get("created_at") or ""), j)
        if who not in t.votes or order >= t.votes[who][0]:
            t.votes[who] = (order, choices)


def _choice(path: Path, t: ExportedTask, where: str, item) -> tuple[tuple, str]:
    """(unit, chosen label) of one result item."""
    if not isinstance(item, dict):
        raise fail(path, where, "a result item must be a JSON object")
    name, kind, value = item.get("from_name"), item.get("type"), item.get("value")
    if kind != CHOICES or not isinstance(value, dict) or not isinstance(value.get(CHOICES), list):
        raise fail(path, where, f"result {name!r} is not a choice (type {kind!r})")
    chosen = value[CHOICES]
    if len(chosen) != 1 or not isinstance(chosen[0], str):
        raise fail(path, where, f"result {name!r} must choose exactly one label, got {chosen!r}")
    label = chosen[0]
    if label not in t.labels:
        known = ", ".join(t.labels)
        raise fail(path, where, f"unknown label {label!r} in {name!r} (known: {known})")
    if t.task != "boilerplate":
        expected = TOPIC_CONTROL if t.task == "topic" else STANCE_CONTROL
        if name != expected:
            raise fail(path, where, f"unknown control {name!r} (expected {expected!r})")
        return t.owner, label
    suffix = name[len(PARAGRAPH_CONTROL) :] if isinstance(name, str) else ""
    if not (isinstance(name, str) and name.startswith(PARAGRAPH_CONTROL) and suffix.isdigit()):
        raise fail(path, where, f"unknown control {name!r} (expected {PARAGRAPH_CONTROL}<k>)")
    k = int(suffix)
    if k >= len(t.paragraphs):
        raise fail(path, where, f"control {name!r}: the task has {len(t.paragraphs)} paragraphs")
    return (t.article_id, t.paragraphs[k][0]), label
