"""Throughput of ``khabar tag`` with the default sklearn tagger, end to end, on real articles.

JSONL -> JSONL through ``inference.engines.runner.run_tagging`` (reading, the three models, writing
with fsync'ed checkpoints), on ``--n`` real scraped articles (SaudiNewsNet + ANT multi-source from
``../shared/data``, interleaved; records without a body become error records, as in production).
Every article gets all three tags: boilerplate, topic, and stance toward one target
(``--stance-target``).

Bundles: ``--bundles DIR`` (``DIR/boilerplate``, ``DIR/topic``, ``DIR/stance``), else small
default-config sklearn bundles are trained first on the shared data (see ``bench_data.py``).

Printed, in one run so the numbers compare under the same machine load:
1. a per-stage breakdown of one in-process pass (CPU ms per article: read, normalize+features,
   per model: rows->DataFrame, vectorize, classify; write), next to the same pass with sklearn's
   own n-gram counting (``inference.text.ngram_counts`` switched off; ``--no-compare-sklearn`` skips
   it);
2. end-to-end runs for each ``--workers`` value (repeated ``--repeats`` times, interleaved):
   articles/s (wall) and articles per CPU-second (all processes), the ratio between settings, and
   a check that every setting wrote byte-identical output.
``--profile N`` adds a cProfile of a one-worker run on N articles.

    .venv/bin/python benchmarks/tag_throughput.py [--n 20000] [--bundles DIR] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import (  # noqa: E402
    DEFAULT_DATA,
    STANCE_TARGET,
    bundles_from_dir,
    machine_line,
    real_article_lines,
    train_quick_bundles,
    write_archive,
)

TARGET_PER_S = 1000


# ---------------------------------------------------------------- stage breakdown
class Stages:
    """CPU seconds per stage, accumulated by wrapping the real code paths of one tagger."""

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)

    def timed(self, name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name] += time.process_time() - start

        return wrapper


def stage_breakdown(tagger, archive: Path, n: int, batch_size: int) -> tuple[dict, int]:
    """One in-process pass over the first ``n`` records; returns (CPU s per stage, records)."""
    import inference.predictors.sklearn as skp
    from inference.engines.readers import ReadStats, iter_items
    from inference.engines.runner import BATCH_BYTES, _batches, _encode, tag_items

    stages = Stages()
    start = time.process_time()
    items = []
    for item in iter_items(archive, "auto", ReadStats()):
        items.append(item)
        if len(items) >= n:
            break
    stages.cpu["read (JSONL -> articles)"] = time.process_time() - start

    original_frame = skp.rows_to_frame
    patched = []  # (object, attribute) to restore
    skp.rows_to_frame = lambda task, rows: stages.timed(
        f"{task}: rows -> DataFrame", original_frame
    )(task, rows)
    for task, bundle in tagger.bundles.items():
        pipe = bundle.predictor.model
        features, clf = pipe.steps[0][1], pipe.steps[-1][1]
        features.transform = stages.timed(f"{task}: vectorize", features.transform)
        for attr in ("predict_proba", "decision_function"):
            if hasattr(clf, attr):
                setattr(clf, attr, stages.timed(f"{task}: classify", getattr(clf, attr)))
        patched += [(features, "transform"), (clf, "predict_proba"), (clf, "decision_function")]
        bundle.predictor.predict_proba = stages.timed(
            f"_model {task}", bundle.predictor.predict_proba
        )
        patched.append((bundle.predictor, "predict_proba"))
    try:
        with open(os.devnull, "wb") as sink:
            for batch in _batches(iter(items), batch_size, BATCH_BYTES):
                t0 = time.process_time()
                records = tag_items(tagger, batch)
                stages.cpu["_tag"] += time.process_time() - t0
                t0 = time.process_time()
                sink.write(_encode(records)[0])
                stages.cpu["write (records -> JSONL)"] += time.process_time() - t0
    finally:
        skp.rows_to_frame = original_frame
        for obj, attr in patched:
            obj.__dict__.pop(attr, None)
    models = sum(v for k, v in stages.cpu.items() if k.startswith("_model "))
    out = {"read (JSONL -> articles)": stages.cpu["read (JSONL -> articles)"]}
    out["normalize + features + tagger glue"] = stages.cpu["_tag"] - models
    for task in tagger.bundles:
        total = stages.cpu[f"_model {task}"]
        parts = [f"{task}: rows -> DataFrame", f"{task}: vectorize", f"{task}: classify"]
        for part in parts:
            out[part] = stages.cpu.get(part, 0.0)
        out[f"{task}: other (predictor glue)"] = total - sum(out[p] for p in parts)
    out["write (records -> JSONL)"] = stages.cpu["write (records -> JSONL)"]
    return out, len(items)


def print_breakdown(stages: dict, n: int, reference: dict | None = None) -> None:
    """CPU ms per record per stage; with ``reference`` (same records, sklearn's own n-gram
    counting) a second column and the ratio."""
    total = sum(stages.values())
    print(f"\nPer-stage CPU time, one process, {n} records (ms per record):")
    head = f"  {'stage':42s} {'khabar':>9} {'share':>6}"
    if reference:
        head += f" {'sklearn counts':>15} {'ratio':>6}"
    print(head)
    for name, sec in stages.items():
        line = f"  {name:42s} {1000 * sec / n:9.3f} {100 * sec / total:5.1f}%"
        if reference:
            ref = reference[name]
            line += f" {1000 * ref / n:15.3f} {ref / sec if sec > 1e-9 else 0:5.1f}x"
        print(line)
    line = f"  {'total':42s} {1000 * total / n:9.3f} {'':6}"
    if reference:
        ref_total = sum(reference.values())
        line += f" {1000 * ref_total / n:15.3f} {ref_total / total:5.1f}x"
    print(line)
    print(f"  -> {n / total:,.0f} records per CPU-second", end="")
    print(f" ({n / ref_total:,.0f} with sklearn's own n-gram counting)" if reference else "")


def sklearn_counting_breakdown(tagger, archive: Path, n: int, batch_size: int) -> dict:
    """The stage pass again with ``inference.text.ngram_counts`` switched off (sklearn's Python
    loop)."""
    from inference.predictors.sklearn import _vectorizers
    from inference.text import ngram_counts

    vectorizers = [v for b in tagger.bundles.values() for v in _vectorizers(b.predictor.model)]
    for vec in vectorizers:
        ngram_counts.uninstall(vec)
    try:
        return stage_breakdown(tagger, archive, n, batch_size)[0]
    finally:
        for vec in vectorizers:
            ngram_counts.install(vec)


# ---------------------------------------------------------------- end to end
def cpu_seconds() -> float:
    """CPU time of this process plus its reaped children (pool workers end with the run)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def end_to_end(load, archive: Path, out_dir: Path, workers: int, batch_size: int) -> dict:
    """One ``run_tagging`` with a freshly loaded tagger (empty caches, as a new ``khabar tag``)."""
    from inference.engines.runner import run_tagging

    tagger = load()
    out = out_dir / f"tagged-w{workers}.jsonl"
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    summary = run_tagging(
        tagger, archive, out, batch_size=batch_size, progress=False, workers=workers
    )
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    return {
        "workers": workers,
        "records": summary["records"],
        "errors": summary["errors"],
        "wall_s": wall,
        "per_s": summary["records"] / wall,
        "per_cpu_s": summary["records"] / cpu,
        "sha256": digest,
        "load1": os.getloadavg()[0],
    }


def profile_run(tagger, archive: Path, out_dir: Path, n: int, batch_size: int, top: int) -> None:
    from inference.engines.runner import run_tagging

    small = out_dir / "profile-input.jsonl"
    with open(archive, "rb") as src, open(small, "wb") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    prof = cProfile.Profile()
    prof.enable()
    run_tagging(tagger, small, out_dir / "profile-out.jsonl", progress=False, workers=1)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of a one-worker run on {n} records (by own time):")
    print("\n".join(buf.getvalue().splitlines()[: top + 12]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=20_000, help="articles in the archive")
    ap.add_argument(
        "--bundles", type=Path, default=None, help="DIR with boilerplate/ topic/ stance/"
    )
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    ap.add_argument("--repeats", type=int, default=1, help="end-to-end runs per worker count")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--breakdown-n", type=int, default=4000, help="records in the stage pass")
    ap.add_argument(
        "--no-compare-sklearn",
        dest="compare_sklearn",
        action="store_false",
        help="skip the stage pass with sklearn's own n-gram counting (slow)",
    )
    ap.add_argument("--stance-target", default=STANCE_TARGET)
    ap.add_argument("--profile", type=int, default=0, help="cProfile a run on N records")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = ap.parse_args(argv)

    from inference.tagger import TaggerConfig, load_tagger

    work = args.work or Path(tempfile.mkdtemp(prefix="khabar-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_line()}")
    lines = real_article_lines(args.data, args.n)
    archive = write_archive(lines, work / "archive.jsonl", args.n)
    print(f"archive: {args.n} records ({len(lines)} distinct real articles), {archive}")
    if args.bundles is not None:
        bundles = bundles_from_dir(args.bundles)
        print(f"bundles: {args.bundles}")
    else:
        print("bundles: training small default-config sklearn bundles on the shared data ...")
        bundles = train_quick_bundles(args.data, work / "quick")
        print(f"bundles: {work / 'quick' / 'bundles'} (pass --bundles to reuse)")
    config = TaggerConfig(stance_targets=[args.stance_target])

    def load():
        return load_tagger([str(p) for p in bundles.values()], config=config)

    started = time.perf_counter()
    tagger = load()
    print(f"tagger loaded in {time.perf_counter() - started:.1f}s: {tagger.models}")

    stages, n_stage = stage_breakdown(tagger, archive, args.breakdown_n, args.batch_size)
    reference = None
    if args.compare_sklearn:
        reference = sklearn_counting_breakdown(tagger, archive, n_stage, args.batch_size)
    print_breakdown(stages, n_stage, reference)

    settings = [int(w) for w in args.workers.split(",")]
    runs = [
        end_to_end(load, archive, work, w, args.batch_size)
        for _ in range(args.repeats)
        for w in settings
    ]
    print(f"\nEnd to end, run_tagging JSONL -> JSONL, {args.n} records, batch {args.batch_size}:")
    print(
        f"  {'workers':>7} {'wall s':>8} {'records/s':>10} {'per CPU-s':>10} {'load1':>6}  output"
    )
    for r in runs:
        print(
            f"  {r['workers']:>7} {r['wall_s']:8.1f} {r['per_s']:10,.0f} {r['per_cpu_s']:10,.0f} "
            f"{r['load1']:6.2f}  sha256:{r['sha256']} ({r['errors']} error records)"
        )
    best = {w: max(r["per_s"] for r in runs if r["workers"] == w) for w in settings}
    base = best[settings[0]]
    for w in settings[1:]:
        print(f"  best {w} workers / best {settings[0]}: {best[w] / base:.2f}x")
    same = len({r["sha256"] for r in runs}) == 1
    print(f"  outputs identical across settings: {same}")
    top = max(best.values())
    verdict = "meets" if top >= TARGET_PER_S else "below"
    print(f"  best: {top:,.0f} records/s ({verdict} the {TARGET_PER_S:,}/s target)")
    print(f"machine after: {machine_line()}")
    if args.profile:
        profile_run(load(), archive, work, args.profile, args.batch_size, top=25)
    # The archive and outputs are large; trained bundles stay for --bundles.
    for path in [archive, *work.glob("tagged-w*.jsonl*"), *work.glob("profile-*.jsonl*")]:
        path.unlink(missing_ok=True)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
