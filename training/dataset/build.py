"""``khabar build-dataset``: parsed articles (+ annotation files) -> labeled HF datasets + manifest.

``build_datasets(cfg, out_dir)`` streams the inputs twice and never holds the articles in memory:

1. pass 1 reads every record (rejections kept with file:line), drops exact and near duplicates
   (``training.dataset.dedup``; first copy kept), lets the weak labeler observe the kept articles,
   and collects one compact split key per planned example. The per-record work (parsing, MinHash
   fingerprints, observation keys: ``training.dataset.scan``) runs in the worker processes; the
   parent adds the results up in input order (``training.dataset.plan``);
2. between the passes the weak labeler is finalized and every output's splits are assigned
   (``training.dataset.splits``: duplicates are already gone, so near-duplicates cannot straddle
   splits);
3. pass 2 reads the records again; the workers build each row through ``inference.text.preprocess``
   (``training.dataset.rows``) and encode them as Arrow batches, which the parent appends to each
   output's Arrow files split by split;
4. each output is saved as ``out_dir/<name>/`` (a ``DatasetDict``, ``label`` a ``ClassLabel``; all
   outputs move there together once the build succeeded) and ``out_dir/manifest.json`` records counts, rejections, duplicates, hashes, config and timings.

``cfg.workers`` processes do the per-record work of both passes (``training.dataset.workers``); with
one, everything runs in this process, in the same order, with the same result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from inference.engines.readers import ReadStats
from inference.text.furniture import FurnitureRules, default_rules
from training.config import DatasetConfig, InputSpec
from training.dataset.examples import resolve_outputs, resolve_path
from training.dataset.manifest import build_manifest
from training.dataset.plan import OutputPlan, Pass1
from training.dataset.records import iter_records
from training.dataset.rows import Job, Planned, RowContext, build_chunk, save_context
from training.dataset.scan import scan_records
from training.dataset.synthetic_pages import SyntheticPages, collect_bank
from training.dataset.weak_labels import WeakLabeler
from training.dataset.workers import ChunkRunner
from training.dataset.writer import OutputWriter
from training.dataset.writer import preload as preload_datasets

log = logging.getLogger(__name__)

TMP_DIR_NAME = ".khabar-build-tmp"
SCAN_CHUNK = 256  # records per pass-1 chunk (fingerprints are vectorized over a chunk)
ROW_CHUNK = 64  # articles per pass-2 chunk


class StageTimer:
    """Wall and CPU seconds per stage.

    Stages: read (parse records, both passes), dedup, observe (weak-label statistics, pass 1),
    weak_labels (labeling, pass 2), examples (rows through inference.text.preprocess), splits,
    write.

    CPU seconds are what a stage costs (wall time also counts waiting for a busy machine); with
    workers, the CPU of the per-record work of both passes is summed over the worker processes.
    CPU is the calling thread's clock: the process clock has to add up every thread (the worker
    pool's included), which took milliseconds per reading on a busy machine.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float, cpu: float | None = None) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        if cpu is not None:
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + cpu

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start, time.thread_time() - cpu)

    def add_all(self, seconds: dict[str, float], cpu: dict[str, float]) -> None:
        """Stage times measured elsewhere (a worker process)."""
        for stage, c in cpu.items():
            self.add(stage, seconds.get(stage, 0.0), c)

    def timed(self, items: Iterable, stage: str) -> Iterator:
        """Iterate ``items``, charging the time spent producing each one to ``stage``."""
        it = iter(items)
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                self.add(stage, time.perf_counter() - start, time.thread_time() - cpu)
                return
            self.add(stage, time.perf_counter() - start, time.thread_time() - cpu)
            yield item


def furniture_rules(cfg: DatasetConfig) -> FurnitureRules:
    rules = cfg.boilerplate.weak.rules
    return FurnitureRules.from_dicts(rules) if rules else default_rules()


def resolve_inputs(cfg: DatasetConfig, base: Path) -> list[tuple[InputSpec, Path]]:
    names = [spec.label for spec in cfg.inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"inputs: names must be unique (set 'name'); repeated: {dupes}")
    return [(spec, resolve_path(spec.path, base)) for spec in cfg.inputs]


def _progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        disable=not enabled,
        console=Console(stderr=True),  # stdout carries the JSON summary
    )


def _synthetic_pages(cfg: DatasetConfig, sources, outputs, rules) -> SyntheticPages | None:
    """The synthetic-page spec with its furniture bank, read from the first articles of each
    boilerplate input (deterministic: the same inputs give the same bank)."""
    spec = cfg.boilerplate.synthetic_pages
    names = {name for o in outputs if o.task == "boilerplate" for name in o.inputs}
    inputs = [(s, path) for s, path in sources if s.label in names]
    if spec.fraction <= 0 or not inputs:
        return None
    per_input = max(spec.bank_articles // len(inputs), 1)
    articles = []
    for input_spec, path in inputs:
        records = islice(iter_records(input_spec, path), per_input)
        articles += [a for a in (r.item().article for r in records) if a is not None]
    bank = collect_bank(articles, rules)
    if not bank.usable():
        log.warning(
            "synthetic pages off: too few furniture lines in the first %d articles", len(articles)
        )
        return None
    return SyntheticPages(spec.fraction, spec.seed, bank)


def build_datasets(cfg: DatasetConfig, out_dir: Path, progress: bool = True) -> dict:
    """Build every output of ``cfg`` under ``out_dir``; returns the manifest (also written there)."""
    started, started_cpu, timer = time.perf_counter(), time.process_time(), StageTimer()
    out_dir = Path(out_dir)
    base = Path(cfg.base_dir) if cfg.base_dir else Path.cwd()
    sources = resolve_inputs(cfg, base)
    outputs = resolve_outputs(cfg, [spec.label for spec, _ in sources], base)
    if not outputs:
        raise ValueError("nothing to build: no input feeds boilerplate, topic or a stance set")
    rules = furniture_rules(cfg)
    labeler = WeakLabeler(cfg.boilerplate.weak, rules=rules)
    pass1 = Pass1(cfg, outputs, labeler, timer)
    used = {name for o in outputs for name in (o.inputs | o.annotation_inputs)}
    sources = [(spec, path) for spec, path in sources if spec.label in used]
    tmp = out_dir / TMP_DIR_NAME
    # Finished outputs wait here until the whole build succeeded: a build that fails late leaves
    # the previous datasets in out_dir as they were, never a mix of old and new outputs.
    staged = tmp / "ready"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _progress(progress) as bar, ChunkRunner(cfg.workers) as runner:
            if runner.parallel:
                preload_datasets()
            reading = _run_pass1(sources, pass1, runner, bar, timer)
            with timer("observe"):
                labeler.finalize()
            pass1.finish()
            writers = _open_writers(pass1.plans, tmp)
            staged.mkdir(parents=True, exist_ok=True)
            ctx = RowContext(labeler, rules, {name: w.format for name, w in writers.items()})
            ctx.synthetic = _synthetic_pages(cfg, sources, outputs, rules)
            ref = save_context(ctx, tmp / "pass2-context.pkl") if runner.parallel else ctx
            _run_pass2(sources, pass1.plans, ref, writers, staged, runner, bar, timer, reading)
        with timer("write"):
            for writer in writers.values():
                if not writer.closed:
                    writer.close(staged)
            _publish(staged, out_dir, list(writers))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    timer.add("total", time.perf_counter() - started, time.process_time() - started_cpu)
    manifest = build_manifest(cfg, out_dir, reading, pass1, writers, labeler, timer)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_pass1(sources, pass1: Pass1, runner: ChunkRunner, bar: Progress, timer) -> dict:
    """Read everything once; returns per-input ReadStats and how many records were used."""
    task = bar.add_task("pass 1/2: read, dedup, observe", total=None)
    policy = pass1.scan_policy()
    reading: dict = {}
    ordinal = 0
    for spec, path in sources:
        stats = ReadStats()
        used = 0
        chunks = timer.timed(_chunks(iter_records(spec, path, stats), SCAN_CHUNK), "read")
        for scanned in runner.map(scan_records, chunks, spec.label, policy):
            timer.add_all(scanned.seconds, scanned.cpu)  # worker times
            for i, item in enumerate(scanned.items):
                ordinal += 1
                stats.add(item)
                if item.article is not None:
                    used += pass1.add(
                        ordinal,
                        spec.label,
                        item.where,
                        item.article,
                        scanned.roles[i],
                        scanned.fingerprint(i),
                        scanned.keys[i],
                    )
            bar.advance(task, len(scanned.items))
        reading[spec.label] = {"path": str(path), "stats": stats, "used": used}
    pass1.flush()
    bar.update(task, total=ordinal, completed=ordinal)
    return reading


def _open_writers(plans: list[OutputPlan], tmp: Path) -> dict[str, OutputWriter]:
    return {p.spec.name: OutputWriter(p.spec.name, p.spec.task, p.spec.labels, tmp) for p in plans}


def _jobs(sources, plans: list[OutputPlan], bar: Progress, task) -> Iterator[Job]:
    ordinal = 0
    for spec, path in sources:
        for record in iter_records(spec, path):
            ordinal += 1
            if not ordinal % SCAN_CHUNK:
                bar.advance(task, SCAN_CHUNK)
            planned = [_planned(plan, i, spec.label) for plan in plans for i in plan.take(ordinal)]
            if planned:
                yield Job(record, planned, ordinal)


def _planned(plan: OutputPlan, i: int, input_name: str) -> Planned:
    spec = plan.spec
    return Planned(
        output=spec.name,
        task=spec.task,
        split=plan.plan.split_of(i),
        label=plan.labels[i],
        provenance=plan.provenance[i],
        annotation=plan.annotations[i],
        dataset=input_name,
        clean=spec.topic.clean_boilerplate if spec.topic is not None else True,
    )


def _publish(staged: Path, out_dir: Path, names: list[str]) -> None:
    """Move every finished output from ``staged`` to ``out_dir`` (same filesystem: renames)."""
    for name in names:
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged / name, target)


def _run_pass2(sources, plans, ctx_ref, writers, save_dir, runner, bar, timer, reading) -> None:
    total = sum(r["stats"].read for r in reading.values())
    task = bar.add_task("pass 2/2: build rows, write", total=total)
    by_name = {p.spec.name: p for p in plans}
    start = time.perf_counter()
    chunks = timer.timed(_chunks(_jobs(sources, plans, bar, task), ROW_CHUNK), "read")
    for rows in runner.map(build_chunk, chunks, ctx_ref):
        # Worker times are summed over the workers when parallel (the pass wall time: "pass2").
        timer.add_all(rows.seconds, rows.cpu)
        with timer("write"):
            for output, part in rows.parts.items():
                writers[output].add_part(part)
        for (output, reason), n in rows.skipped.items():
            by_name[output].skipped[reason] += n
        # An output whose last example is in is saved now, while the workers build the others.
        for plan in plans:
            writer = writers[plan.spec.name]
            if not writer.closed and plan.ordinals and plan.ordinals[-1] <= rows.last_ordinal:
                with timer("write"):
                    writer.close(save_dir)
    bar.update(task, completed=total)
    timer.add("pass2", time.perf_counter() - start)
    for plan in plans:
        if plan.cursor != len(plan.ordinals):
            raise RuntimeError(
                f"{plan.spec.name}: the inputs changed between the two passes "
                f"({plan.cursor} of {len(plan.ordinals)} planned examples found again)"
            )
