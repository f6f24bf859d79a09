"""Pass 2 of the dataset builder: turn one article and its planned examples into dataset rows.

The work for one record is a :class:`Job` of plain, picklable values, so it runs the same in this
process or in a worker process (``DatasetConfig.workers``). Workers are spawned (not forked: the
parent runs a progress-bar thread and Arrow's thread pools) and receive the fitted weak labeler and
the furniture rules once, at start-up, never per job. Results come back in job order, and at most
a few chunks are in flight, so the articles are never all in memory.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from inference.furniture import FurnitureRules
from inference.preprocess import boilerplate_inputs
from inference.schema import Article
from training.examples import (
    Annotation,
    annotation_example,
    boilerplate_rows,
    pair_example,
    topic_example,
)


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
    article: Article
    planned: list[Planned]


@dataclass
class JobResult:
    rows: list[tuple[str, str, dict]]  # (output, split, row)
    skipped: list[tuple[str, str]]  # (output, reason)
    weak_seconds: float = 0.0  # wall time in the weak labeler
    weak_cpu: float = 0.0  # CPU time in the weak labeler
    seconds: float = 0.0  # wall time of the whole job
    cpu: float = 0.0  # CPU time of the whole job


_CONTEXT: dict = {}


def set_context(labeler, rules: FurnitureRules) -> None:
    """Install the fitted labeler and rules for :func:`run_job` (also a worker initializer)."""
    _CONTEXT.update(labeler=labeler, rules=rules)


def _needs_weak(planned: list[Planned]) -> bool:
    return any(
        p.task == "boilerplate" or (p.task == "topic" and p.clean) or p.annotation is not None
        for p in planned
    )


def run_job(job: Job) -> JobResult:
    start, cpu = time.perf_counter(), time.process_time()
    art = job.article
    labeler, rules = _CONTEXT["labeler"], _CONTEXT["rules"]
    inputs = None
    if any(p.task == "boilerplate" for p in job.planned):
        inputs = boilerplate_inputs(art, rules)
    weak_start, weak_cpu = time.perf_counter(), time.process_time()
    # The labeler reuses the paragraph inputs of the rows: boilerplate_inputs is the most
    # expensive step of the build and must run once per article.
    weak = labeler.label(art, inputs=inputs) if _needs_weak(job.planned) else None
    bp_labels = [w.label for w in weak] if weak is not None else None
    result = JobResult([], [], time.perf_counter() - weak_start, time.process_time() - weak_cpu)
    for p in job.planned:
        if p.task == "boilerplate":
            rows, skipped = boilerplate_rows(art, inputs, weak)
            result.rows.extend((p.output, p.split, row) for row in rows)
            result.skipped.extend((p.output, f"paragraph:{why}") for why in skipped)
        elif p.task == "topic":
            row = topic_example(art, bp_labels if p.clean else None, p.label, p.provenance)
            _keep(result, p, row, "empty_text")
        elif p.annotation is None:
            _keep(result, p, pair_example(art, p.label, p.dataset), "empty_text")
        else:
            row = annotation_example(art, bp_labels, p.annotation, p.label)
            _keep(result, p, row, "empty_text")
    result.seconds, result.cpu = time.perf_counter() - start, time.process_time() - cpu
    return result


def _keep(result: JobResult, p: Planned, row: dict | None, reason: str) -> None:
    if row is None:
        result.skipped.append((p.output, reason))
    else:
        result.rows.append((p.output, p.split, row))


def _run_chunk(jobs: list[Job]) -> list[JobResult]:
    return [run_job(job) for job in jobs]


def _chunks(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    chunk: list[Job] = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_jobs(jobs: Iterable[Job], workers: int, chunk_size: int = 32) -> Iterator[JobResult]:
    """Results in job order; ``workers > 1`` runs chunks of jobs in spawned worker processes."""
    if workers <= 1:
        for job in jobs:
            yield run_job(job)
        return
    ctx = mp.get_context("spawn")
    init = (_CONTEXT["labeler"], _CONTEXT["rules"])
    with ctx.Pool(workers, initializer=set_context, initargs=init) as pool:
        in_flight: deque = deque()
        # Pool.imap would drain the job generator (every article) into its queue; keep a window.
        for chunk in _chunks(jobs, chunk_size):
            in_flight.append(pool.apply_async(_run_chunk, (chunk,)))
            if len(in_flight) >= 4 * workers:
                yield from in_flight.popleft().get()
        while in_flight:
            yield from in_flight.popleft().get()
