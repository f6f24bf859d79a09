"""What each dataset output is, and how one input record becomes its labeled examples.

Rows are built ONLY through ``inference.text.preprocess`` (``boilerplate_inputs`` +
``boilerplate_row``, ``topic_row``, ``stance_row``): the tagger calls the same functions, which is
the train/serve-skew guarantee. This module only adds the label, provenance and bookkeeping columns
around them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from inference.text.preprocess import (
    ParagraphInput,
    boilerplate_row,
    stance_row,
    stance_text,
    topic_row,
)
from inference.text.schema import BOILERPLATE_LABELS, Article
from training.config import DatasetConfig, StanceSetConfig, TopicDatasetConfig

# Columns of each task, in order (docs/ARCHITECTURE.md "Built datasets").
COLUMNS = {
    "boilerplate": (
        "id", "article_id", "source", "index", "text", "prev_text", "next_text", "features",
        "rule", "label", "provenance",
    ),
    "topic": ("id", "source", "text", "label", "provenance"),
    "stance": ("id", "target", "text", "label", "provenance", "dataset"),
}  # fmt: skip


@dataclass
class Annotation:
    """One line of an annotation file: a label for an article (topic), for each of its paragraphs
    (boilerplate: ``labels``), or for a claim/target about it (stance).

    ``provenance`` is "review" for the lines ``khabar annotate import`` writes (``origin: review``),
    else "annotation"; the examples built from it carry it, so the manifest counts them apart.
    """

    article_id: str
    target: str
    label: str | None
    dataset: str
    where: str
    labels: list[str | None] | None = None
    provenance: str = "annotation"


@dataclass
class OutputSpec:
    """One dataset output (one ``DatasetDict`` folder): its task, inputs and label names."""

    name: str
    task: str
    inputs: frozenset[str]
    topic: TopicDatasetConfig | None = None
    stance: StanceSetConfig | None = None
    labels: list[str] = field(default_factory=list)
    annotations: dict[str, list[Annotation]] = field(default_factory=dict)
    annotation_inputs: frozenset[str] = frozenset()  # where annotated articles are looked up
    annotation_rejects: list[dict] = field(default_factory=list)

    def wants_article(self, input_name: str, article_id: str) -> bool:
        """Whether an article (not a stance-pair record) of ``input_name`` feeds this output."""
        if self.task == "stance":
            return input_name in self.annotation_inputs and article_id in self.annotations
        return input_name in self.inputs

    @property
    def fixed_labels(self) -> list[str] | None:
        if self.task == "boilerplate":
            return list(BOILERPLATE_LABELS)
        cfg = self.topic if self.task == "topic" else self.stance
        return list(cfg.labels) if cfg and cfg.labels else None


def resolve_outputs(cfg: DatasetConfig, input_names: list[str], base: Path) -> list[OutputSpec]:
    """The outputs this config builds, each with the names of the inputs that feed it."""

    def pick(task: str, wanted: list[str] | None, where: str) -> frozenset[str]:
        if wanted is None:
            return frozenset(s.label for s in cfg.inputs if task in s.tasks)
        unknown = sorted(set(wanted) - set(input_names))
        if unknown:
            raise ValueError(f"{where}.inputs: unknown input name(s) {unknown}; have {input_names}")
        return frozenset(wanted)

    def annotate(spec: OutputSpec, files: list[str]) -> OutputSpec:
        paths = [resolve_path(p, base) for p in files]
        spec.annotations, spec.annotation_rejects = load_annotations(paths, spec.task, spec.name)
        return spec

    outputs: list[OutputSpec] = []
    if cfg.boilerplate.enabled:
        bp_inputs = pick("boilerplate", None, "boilerplate")
        if bp_inputs:
            spec = OutputSpec("boilerplate", "boilerplate", bp_inputs)
            outputs.append(annotate(spec, cfg.boilerplate.annotations))
    for t in cfg.topic_outputs():
        spec = OutputSpec(t.name, "topic", pick("topic", t.inputs, t.name), topic=t)
        outputs.append(annotate(spec, t.annotations))
    for s in cfg.stance:
        spec = annotate(
            OutputSpec(s.name, "stance", pick("stance", s.inputs, s.name), stance=s), s.annotations
        )
        # Annotated articles are looked up in the set's inputs when named, else in every input.
        spec.annotation_inputs = spec.inputs if s.inputs is not None else frozenset(input_names)
        outputs.append(spec)
    return [o for o in outputs if o.inputs or o.annotations]


def resolve_path(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


# ---------------------------------------------------------------- labels
def topic_label(article: Article, cfg: TopicDatasetConfig) -> tuple[str | None, str]:
    """(label, provenance) of a topic article, or (None, reason it has none).

    The record's own ``label`` (through ``label_map``) wins; else ``section_rules`` (the site's
    section -> label); else the first ``url_rules`` regex that matches the URL.
    """
    label, provenance = None, "unlabeled"
    if article.label:
        label, provenance = cfg.label_map.get(article.label, article.label), "gold"
    elif article.section and article.section in cfg.section_rules:
        label, provenance = cfg.section_rules[article.section], "section_rule"
    elif article.url:
        for pattern, rule_label in cfg.url_rules.items():
            if re.search(pattern, article.url):
                label, provenance = rule_label, "url_rule"
                break
    if label is None:
        return None, "unlabeled"
    if cfg.labels is not None and label not in cfg.labels:
        return None, "label_not_in_labels"
    return label, provenance


def stance_label(label: str | None, cfg: StanceSetConfig) -> tuple[str | None, str]:
    return given_label(label, cfg)


def given_label(
    label: str | None, cfg: StanceSetConfig | TopicDatasetConfig
) -> tuple[str | None, str]:
    """A label given by a record or an annotation, through the output's ``label_map`` and checked
    against its ``labels``: (label, "gold"), or (None, why it is not used)."""
    if not label:
        return None, "unlabeled"
    label = cfg.label_map.get(label, label)
    if cfg.labels is not None and label not in cfg.labels:
        return None, "label_not_in_labels"
    return label, "gold"


def is_stance_pair(article: Article) -> bool:
    """A record that is itself a (claim/target, text, label) pair: ANS, Mawqif, the sample sets."""
    return bool(article.claim) and bool(article.label)


# ---------------------------------------------------------------- annotations
ANNOTATION_FIELDS = {
    "boilerplate": "'id' and 'labels' (one per paragraph)",
    "topic": "'id' and 'label'",
    "stance": "'id', 'claim' (or 'target') and 'label'",
}


def load_annotations(
    paths: list[Path], task: str, output: str
) -> tuple[dict[str, list[Annotation]], list[dict]]:
    """Article id -> its annotations for a ``task`` output, from JSONL files (``{id, labels}``,
    ``{id, label}`` or ``{id, claim|target, label}``); and the lines rejected (``{where, reason}``)."""
    by_article: dict[str, list[Annotation]] = defaultdict(list)
    rejects: list[dict] = []
    for path in paths:
        if not path.is_file():
            raise ValueError(f"output {output!r}: annotation file not found: {path}")
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    ann = _parse_annotation(line, f"{path}:{lineno}", path.stem, task)
                except ValueError as exc:
                    rejects.append({"where": f"{path}:{lineno}", "reason": str(exc)})
                    continue
                by_article[ann.article_id].append(ann)
    return dict(by_article), rejects


def _parse_annotation(line: str, where: str, dataset: str, task: str = "stance") -> Annotation:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(record, dict):
        raise ValueError("an annotation must be a JSON object")
    if record.get("task") not in (None, task):
        raise ValueError(f"an annotation for task {record['task']!r}, not {task!r}")
    if record.get("id") in (None, ""):
        raise ValueError(f"an annotation needs {ANNOTATION_FIELDS[task]}")
    provenance = "review" if record.get("origin") == "review" else "annotation"
    article_id = str(record["id"])
    if task == "boilerplate":
        labels = record.get("labels")
        if not isinstance(labels, list) or not any(lb is not None for lb in labels):
            raise ValueError(f"an annotation needs {ANNOTATION_FIELDS[task]}")
        bad = sorted({str(lb) for lb in labels if lb is not None and lb not in BOILERPLATE_LABELS})
        if bad:
            raise ValueError(f"'labels' has {bad}; expected 'content', 'boilerplate' or null")
        return Annotation(article_id, "", None, dataset, where, list(labels), provenance)
    target = ""
    if task == "stance":
        target = record.get("claim") or record.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"an annotation needs {ANNOTATION_FIELDS[task]}")
    label = record.get("label")
    if not isinstance(label, str) or not label:
        raise ValueError("an annotation needs a string 'label'")
    return Annotation(article_id, target, label, dataset, where, provenance=provenance)


# ---------------------------------------------------------------- rows
def boilerplate_rows(
    article: Article, inputs: list[ParagraphInput], weak: list
) -> tuple[list[dict], list[str]]:
    """Labeled rows of the paragraphs with a label, and the provenance of each skipped one."""
    rows, skipped = [], []
    source = article.source or ""
    for p in inputs:
        wl = weak[p.index]
        if wl.label is None:
            skipped.append(wl.provenance)
            continue
        row = boilerplate_row(p)
        row.update(source=source, label=wl.label, provenance=wl.provenance)
        rows.append(row)
    return rows, skipped


def topic_example(
    article: Article, bp_labels: list[str | None] | None, label: str, provenance: str
) -> dict | None:
    row = topic_row(article, bp_labels)
    if not row["text"].strip():
        return None
    row.update(source=article.source or "", label=label, provenance=provenance)
    return row


def pair_example(article: Article, label: str, dataset: str) -> dict:
    """A record that is a stance pair: its claim/target and its text."""
    row = stance_row(article.id, article.claim or "", stance_text(article))
    row.update(label=label, provenance="gold", dataset=dataset)
    return row


def annotation_example(
    article: Article, bp_labels: list[str | None] | None, ann: Annotation, label: str
) -> dict | None:
    """An annotation joined to its article: its story (furniture dropped) is the text."""
    text = stance_text(article, bp_labels)
    if not text.strip():
        return None
    row = stance_row(f"{article.id}|{ann.target}", ann.target, text)
    row.update(label=label, provenance=ann.provenance, dataset=ann.dataset)
    return row
