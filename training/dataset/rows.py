"""Pass 2 of the dataset builder: turn one article and its planned examples into dataset rows.

The work for a chunk of records is plain, picklable values (raw JSONL lines or parsed records, and
the planned examples of each), so it runs the same in this process or in a worker process
(``DatasetConfig.workers``, see ``training.dataset.workers``). What stays the same for the whole
pass (the fitted weak labeler, the furniture rules, each output's Arrow schema) is a
:class:`RowContext`, handed to a worker once: the parent saves it to a file and a worker loads it
at its first chunk. A chunk comes back as one ``RowsPart`` per output (Arrow batches and
content-hash bytes), so the parent only appends and hashes.
"""

from __future__ import annotations

import pickle
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from inference.text.furniture import FurnitureRules
from inference.text.preprocess import boilerplate_inputs
from inference.text.schema import Article
from training.dataset.examples import (
    Annotation,
    annotation_example,
    boilerplate_rows,
    pair_example,
    topic_example,
)
from training.dataset.records import Record
from training.dataset.row_parts import OutputFormat, RowsPart, encode_rows
from training.dataset.synthetic_pages import SyntheticPages, page_rows
from training.dataset.weak_labels import WeakLabel


@dataclass
class Planned:
    """One planned example (or, for boilerplate, one article's paragraphs) of one output."""

    output: str
    task: str
    split: str
    label: str | None = None
    provenance: str = ""
    annotation: Annotation | None = None
    dataset: str = ""  # stance: the input (pairs) the row comes from
    clean: bool = True  # topic: remove the furniture before building the text


@dataclass
class Job:
    record: Record
    planned: list[Planned]
    ordinal: int = 0  # the record's number in the build (pass 1 numbering)


@dataclass
class RowContext:
    """Everything pass 2 needs besides the records: the same for every chunk."""

    labeler: object  # a fitted training.dataset.weak_labels.WeakLabeler
    rules: FurnitureRules
    formats: dict[str, OutputFormat]  # output name -> how its rows are stored
    synthetic: SyntheticPages | None = None  # boilerplate.synthetic_pages (training split only)


@dataclass
class ChunkRows:
    """The rows of a chunk of jobs, per output, and the stage times spent building them."""

    parts: dict[str, RowsPart] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)  # (output, reason) -> examples
    cpu: dict[str, float] = field(default_factory=Counter)  # stage -> CPU seconds
    seconds: dict[str, float] = field(default_factory=Counter)  # stage -> wall seconds
    last_ordinal: int = 0  # of the chunk's last job: every example up to it is in


_LOADED: dict[str, RowContext] = {}


def save_context(ctx: RowContext, path: Path) -> str:
    """Write ``ctx`` for the worker processes; returns the reference to pass with each chunk."""
    with open(path, "wb") as fh:
        pickle.dump(ctx, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return str(path)


def _context(ref: RowContext | str) -> RowContext:
    if isinstance(ref, RowContext):  # in-process: the object itself
        return ref
    if ref not in _LOADED:
        _LOADED.clear()  # one build at a time per worker
        with open(ref, "rb") as fh:
            _LOADED[ref] = pickle.load(fh)
    return _LOADED[ref]


def with_annotated_paragraphs(
    weak: list[WeakLabel], planned: list[Planned], out: ChunkRows
) -> list[WeakLabel]:
    """The article's weak labels, with each paragraph a boilerplate annotation labels taking that
    label instead (its provenance: the annotation's). The topic and stance texts of the article are
    cleaned with these labels too. An annotation whose paragraph count is not the article's is not
    used (counted as skipped: the article changed since it was annotated)."""
    for p in planned:
        ann = p.annotation
        if p.task != "boilerplate" or ann is None or ann.labels is None:
            continue
        if len(ann.labels) != len(weak):
            out.skipped[(p.output, "annotation_paragraphs_mismatch")] += 1
            continue
        weak = [
            WeakLabel(given, ann.provenance) if given is not None and w.provenance != "empty" else w
            for w, given in zip(weak, ann.labels, strict=True)
        ]
    return weak


def _needs_weak(planned: list[Planned]) -> bool:
    return any(
        p.task == "boilerplate" or (p.task == "topic" and p.clean) or p.annotation is not None
        for p in planned
    )


def _rows(
    art: Article,
    planned: list[Planned],
    inputs: list | None,
    weak: list | None,
    out: ChunkRows,
) -> list[tuple[str, str, dict]]:
    """The rows of one article's planned examples, as (output, split, row); skips go to ``out``."""
    bp_labels = [w.label for w in weak] if weak is not None else None
    rows: list[tuple[str, str, dict]] = []
    for p in planned:
        if p.task == "boilerplate":
            built, skipped = boilerplate_rows(art, inputs, weak)
            rows.extend((p.output, p.split, row) for row in built)
            out.skipped.update((p.output, f"paragraph:{why}") for why in skipped)
            continue
        if p.task == "topic":
            row = topic_example(art, bp_labels if p.clean else None, p.label, p.provenance)
        elif p.annotation is None:
            row = pair_example(art, p.label, p.dataset)
        else:
            row = annotation_example(art, bp_labels, p.annotation, p.label)
        if row is None:
            out.skipped[(p.output, "empty_text")] += 1
        else:
            rows.append((p.output, p.split, row))
    return rows


def _synthetic_rows(arts, jobs, weak, ctx: RowContext) -> list[tuple[str, dict]]:
    """Rows of the chunk's synthetic pages: hosts from the training split, donors from the chunk."""
    by_output: dict[str, list] = {}
    for art, job, wl in zip(arts, jobs, weak, strict=True):
        for p in job.planned:
            if p.task == "boilerplate" and p.split == "train" and wl is not None:
                by_output.setdefault(p.output, []).append((art, wl))
    out = []
    for output, hosts in by_output.items():
        pool = [art for art, _ in hosts]
        out += [(output, row) for row in page_rows(hosts, pool, ctx.synthetic, ctx.rules)]
    return out


def build_chunk(jobs: list[Job], ctx_ref: RowContext | str) -> ChunkRows:
    """Parse, label and build the rows of a chunk of jobs; encode them per output.

    In stages over the whole chunk, so the weak labeler keys all its paragraphs in one call.
    """
    cpu = time.thread_time()
    ctx = _context(ctx_ref)
    out = ChunkRows(last_ordinal=jobs[-1].ordinal if jobs else 0)
    t0 = time.perf_counter()
    arts = [job.record.item() for job in jobs]
    for item in arts:
        if item.article is None:
            raise RuntimeError(f"{item.where}: the inputs changed between the two passes")
    arts = [item.article for item in arts]
    t1 = time.perf_counter()
    # The labeler reuses the paragraph inputs of the rows: boilerplate_inputs is the most
    # expensive step of the build and must run once per article.
    inputs = [
        boilerplate_inputs(art, ctx.rules)
        if any(p.task == "boilerplate" for p in job.planned)
        else None
        for art, job in zip(arts, jobs, strict=True)
    ]
    t2 = time.perf_counter()
    weak_jobs = [i for i, job in enumerate(jobs) if _needs_weak(job.planned)]
    labels = ctx.labeler.label_many([arts[i] for i in weak_jobs], [inputs[i] for i in weak_jobs])
    weak: list = [None] * len(jobs)
    for i, labeled in zip(weak_jobs, labels, strict=True):
        weak[i] = with_annotated_paragraphs(labeled, jobs[i].planned, out)
    t3 = time.perf_counter()
    by_output: dict[str, list[tuple[str, dict]]] = {}
    for art, job, ins, wl in zip(arts, jobs, inputs, weak, strict=True):
        for output, split, row in _rows(art, job.planned, ins, wl, out):
            by_output.setdefault(output, []).append((split, row))
    if ctx.synthetic is not None:
        for output, row in _synthetic_rows(arts, jobs, weak, ctx):
            by_output.setdefault(output, []).append(("train", row))
    t4 = time.perf_counter()
    for output, rows in by_output.items():
        out.parts[output] = encode_rows(ctx.formats[output], rows)
    t5 = time.perf_counter()
    out.seconds.update(
        read=t1 - t0, examples=(t2 - t1) + (t4 - t3), weak_labels=t3 - t2, write=t5 - t4
    )
    # The CPU clock is a system call: read it once per chunk, share it out by wall time.
    cpu = time.thread_time() - cpu
    wall = sum(out.seconds.values()) or 1.0
    out.cpu = Counter({stage: cpu * s / wall for stage, s in out.seconds.items()})
    return out
