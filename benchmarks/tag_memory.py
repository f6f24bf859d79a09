"""Peak memory of ``khabar tag`` (sklearn tagger) as the archive grows: 25k, 50k, 100k articles.

The archives repeat the real scraped articles of ``../shared/data`` (SaudiNewsNet + ANT
multi-source, ~22k distinct; repeats get new ids) and are written to a temp folder. Each size is
tagged by ``inference.engines.runner.run_tagging`` in a fresh subprocess, which reports:
- the tagging process's peak RSS (``VmHWM`` in ``/proc/self/status``, else ``ru_maxrss``),
- the largest worker's peak RSS (``getrusage(RUSAGE_CHILDREN)``; forked workers share the
  parent's pages copy-on-write, so parent + workers x largest is an upper bound on the total).
and, sampled every 0.2 s from this process while it runs, the summed RSS and PSS of the tagging
process and its workers (PSS splits shared pages among the processes sharing them: the memory
really used). Target: below 1.5 GB in total and flat as the archive grows.

    .venv/bin/python benchmarks/tag_memory.py [--sizes 25000,50000,100000] [--bundles DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
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

TARGET_MB = 1536


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _rss_pss_mb(pid: int) -> tuple[float, float]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0
    fields = {line.split(":")[0]: line.split()[1] for line in text.splitlines()[1:]}
    return int(fields.get("Rss", 0)) / 1024, int(fields.get("Pss", 0)) / 1024


def run_sampled(cmd: list[str], every: float = 0.2) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd``; sample the summed RSS / PSS of its process tree while it runs."""
    peak = {"total_rss_mb": 0.0, "total_pss_mb": 0.0}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        while proc.poll() is None:
            sizes = [_rss_pss_mb(p) for p in _tree(proc.pid)]
            peak["total_rss_mb"] = max(peak["total_rss_mb"], sum(r for r, _ in sizes))
            peak["total_pss_mb"] = max(peak["total_pss_mb"], sum(p for _, p in sizes))
            time.sleep(every)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak


def child(args: argparse.Namespace) -> int:
    """Tag one archive and print a JSON line of measurements (runs in a fresh process)."""
    from inference.engines.runner import count_records, default_workers, run_tagging
    from inference.tagger import TaggerConfig, load_tagger

    bundles = bundles_from_dir(args.bundles)
    tagger = load_tagger(
        [str(p) for p in bundles.values()], config=TaggerConfig(stance_targets=[STANCE_TARGET])
    )
    loaded_mb = peak_rss_mb()
    workers = None if args.workers == "auto" else int(args.workers)
    if workers is None:  # what run_tagging will pick, for the report
        workers = default_workers(tagger, count_records(args.archive), 256)
    started = time.perf_counter()
    summary = run_tagging(
        tagger, args.archive, args.output, progress=False, workers=workers, batch_size=256
    )
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "records": summary["records"],
                "errors": summary["errors"],
                "workers": workers,
                "seconds": time.perf_counter() - started,
                "loaded_mb": loaded_mb,
                "peak_mb": peak_rss_mb(),
                "worker_peak_mb": kids,
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", default="25000,50000,100000")
    ap.add_argument(
        "--bundles", type=Path, default=None, help="DIR with boilerplate/ topic/ stance/"
    )
    ap.add_argument("--workers", default="auto", help="auto (the runner's default) or a number")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    own_work = args.work is None
    work = args.work or Path(tempfile.mkdtemp(prefix="khabar-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_line()}")
    try:
        if args.bundles is None:
            print("bundles: training small default-config sklearn bundles on the shared data ...")
            train_quick_bundles(args.data, work / "quick")
            args.bundles = work / "quick" / "bundles"
        print(f"bundles: {args.bundles}")
        lines = real_article_lines(args.data)
        sizes = [int(s) for s in args.sizes.split(",")]
        print(
            f"{'records':>8} {'workers':>7} {'seconds':>8} {'loaded MB':>10} {'peak MB':>8} "
            f"{'worker MB':>10} {'sum RSS MB':>11} {'sum PSS MB':>11}"
        )
        results = []
        for size in sizes:
            archive = write_archive(lines, work / f"archive-{size}.jsonl", size)
            output = work / f"tagged-{size}.jsonl"
            cmd = [
                sys.executable, __file__, "--child", "--archive", str(archive),
                "--output", str(output), "--bundles", str(args.bundles), "--workers", args.workers,
            ]  # fmt: skip
            proc, sampled = run_sampled(cmd)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            r = {**json.loads(proc.stdout.strip().splitlines()[-1]), **sampled}
            results.append(r)
            print(
                f"{r['records']:>8} {r['workers']:>7} {r['seconds']:8.0f} {r['loaded_mb']:10.0f} "
                f"{r['peak_mb']:8.0f} {r['worker_peak_mb']:10.0f} {r['total_rss_mb']:11.0f} "
                f"{r['total_pss_mb']:11.0f}"
            )
            archive.unlink()
            output.unlink(missing_ok=True)
        worst = max(r["total_pss_mb"] for r in results)
        growth = results[-1]["total_pss_mb"] - results[0]["total_pss_mb"]
        print(
            f"largest total PSS: {worst:.0f} MB "
            f"({'meets' if worst < TARGET_MB else 'above'} the {TARGET_MB} MB target); "
            f"{results[0]['records']} -> {results[-1]['records']} records: {growth:+.0f} MB"
        )
        print(f"machine after: {machine_line()}")
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
