"""Benchmark ``khabar build-dataset``: every task from ``../shared/data`` (configs/datasets/shared_data.yaml).

    .venv/bin/python benchmarks/build_dataset.py [--workers 2] [--limit N] [--out DIR] [--profile]

Prints records (articles) per second, peak RSS (``resource.getrusage``, this process and its worker
processes) and, per stage, wall and CPU seconds side by side. On a shared machine wall time also
counts waiting for a CPU, so the load average is printed too and records per CPU-second is the
number to compare between runs. The target is 2,000 records/s on 2 cores.

Stages: ``read`` (split into records + parse, both passes), ``dedup`` (MinHash fingerprints, LSH
lookups), ``observe`` (weak-label observation keys and counts, pass 1), ``weak_labels`` (labeling,
pass 2), ``examples`` (rows through ``inference.text.preprocess``: normalization, paragraph
features, topic/stance text), ``splits``, ``write`` (Arrow encoding, content hash, Arrow files,
``save_to_disk``). With ``--workers`` > 1 the per-record work of both passes runs in the worker
processes: a stage's CPU is its worker CPU plus its parent CPU. The "cpu (all processes)" line also
counts what no stage does (process start-up and imports, passing chunks between processes).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

for _var, _value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1")):
    os.environ.setdefault(_var, _value)

from training.config import load_dataset_config  # noqa: E402
from training.dataset.build import build_datasets  # noqa: E402

CONFIG = REPO / "configs" / "datasets" / "shared_data.yaml"
SHARED_DATA = Path(os.environ.get("KHABAR_SHARED_DATA", REPO.parent / "shared" / "data"))
TARGET = 2000.0
STAGES = ("read", "dedup", "observe", "splits", "weak_labels", "examples", "write", "total")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--limit", type=int, default=None, help="records per input (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="keep the datasets here")
    ap.add_argument("--profile", action="store_true", help="cProfile the build (use --workers 1)")
    return ap.parse_args()


def load_config(args: argparse.Namespace):
    cfg = load_dataset_config(args.config, [f"workers={args.workers}", *args.overrides])
    for spec in cfg.inputs:
        rel = Path(spec.path)
        if rel.parts[:3] == ("..", "shared", "data"):  # follow KHABAR_SHARED_DATA
            spec.path = str(SHARED_DATA.joinpath(*rel.parts[3:]))
        if not Path(cfg.base_dir or ".", spec.path).exists():
            print(f"SKIP: input {spec.label!r} not found at {spec.path}", file=sys.stderr)
            raise SystemExit(0)
        spec.limit = args.limit
    return cfg


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory in MiB of this process and of its largest child (ru_maxrss is KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def report(manifest: dict, wall: float, cpu: float, workers: int) -> None:
    read = manifest["reading"]["read"]
    seconds, cpu_seconds = manifest["seconds"], manifest["cpu_seconds"]
    print(f"\nstage          wall s   cpu s   cpu share   ({workers} worker process(es))")
    total_cpu = sum(cpu_seconds.get(s, 0.0) for s in STAGES[:-1]) or 1e-9
    for stage in STAGES:
        w, c = seconds.get(stage, 0.0), cpu_seconds.get(stage, 0.0)
        share = "" if stage == "total" else f"{100 * c / total_cpu:8.1f}%"
        print(f"{stage:<12} {w:8.2f} {c:7.2f} {share}")
    own, child = peak_rss_mb()
    rate = read / wall
    print(f"\nrecords read            {read:,} (ok {manifest['reading']['ok']:,})")
    print(f"wall                    {wall:.1f} s -> {rate:,.0f} records/s (target {TARGET:,.0f})")
    print(f"cpu (all processes)     {cpu:.1f} s -> {read / cpu:,.0f} records per CPU-second")
    print(f"peak RSS                {own:,.0f} MiB (main), {child:,.0f} MiB (largest worker)")
    print(f"load average            {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    for name, entry in manifest["outputs"].items():
        sizes = ", ".join(f"{s} {v['examples']:,}" for s, v in entry["splits"].items())
        print(f"  {name:<22} {entry['examples']:>8,} examples ({sizes})")
    print(f"content hash            {manifest['content_hash'][:16]}…")
    print(json.dumps({"records_per_s": round(rate, 1), "records_per_cpu_s": round(read / cpu, 1),
                      "peak_rss_mb": round(max(own, child), 1)}))  # fmt: skip


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="khabar-bench-") as tmp:
        out = args.out or Path(tmp)
        profiler = cProfile.Profile() if args.profile else None
        start, cpu0 = time.perf_counter(), os.times()
        if profiler:
            profiler.enable()
        manifest = build_datasets(cfg, out, progress=sys.stderr.isatty())
        if profiler:
            profiler.disable()
        wall, cpu1 = time.perf_counter() - start, os.times()
        cpu = sum(b - a for a, b in zip(cpu0[:4], cpu1[:4], strict=True))  # user+sys, self+children
    report(manifest, wall, cpu, args.workers)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
