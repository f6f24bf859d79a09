"""Inputs from the wild through ``khabar tag``: one archive per fault, format and engine, and the
peak memory of tagging a 50 MB article.

Every fault archive holds ten real articles (``../shared/data``, SaudiNewsNet + ANT) and the
faulty records; the script counts the records it writes (``in``) and reads back the output
(``out``, ``errors``) and the exit code of ``training.cli.main`` (the ``khabar`` entry point),
local engine and Ray (one Ray runtime for all, started here). The 50 MB articles (real paragraphs
repeated, and one 50 MB paragraph) are tagged by ``khabar tag`` in a fresh process each, which
reports its peak RSS (``VmHWM``), next to a baseline run of ten ordinary articles.

    .venv/bin/python benchmarks/wild_inputs.py [--bundles DIR] [--no-ray] [--mb 50]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import (  # noqa: E402
    DEFAULT_DATA,
    bundles_from_dir,
    machine_line,
    real_article_lines,
    train_quick_bundles,
)

BOM = b"\xef\xbb\xbf"
LIMIT = 1 << 20  # --max-record-bytes for the fault archives: the "huge" record is 2 MB
N_GOOD = 10


def _good(data: Path) -> list[dict]:
    return [json.loads(line) for line in real_article_lines(data, N_GOOD)]


def _dumps(record) -> bytes:
    try:
        return json.dumps(record, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: written as the \\ud83d escape a scraper would
        return json.dumps(record).encode()


def _jsonl(records: list) -> bytes:
    return b"".join((r if isinstance(r, bytes) else _dumps(r)) + b"\n" for r in records)


def _csv(records: list[dict], raw_rows: dict[int, bytes] | None = None) -> bytes:
    """Rows of id,title,text (paragraphs joined); ``raw_rows``: bytes put in as written."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "title", "text"])
    rows = [buf.getvalue().encode()]
    for i, rec in enumerate(records):
        if raw_rows and i in raw_rows:
            rows.append(raw_rows[i] + b"\n")
            continue
        buf = io.StringIO()
        text = rec.get("text") or "\n".join(rec.get("paragraphs") or [])
        csv.writer(buf, lineterminator="\n").writerow([rec.get("id"), rec.get("title"), text])
        rows.append(buf.getvalue().encode("utf-8", "surrogatepass"))
    return b"".join(rows)


def fault_archives(data: Path) -> list[tuple[str, str, str, bytes, int]]:
    """(kind, format, file name, bytes, input records) for every fault tried."""
    good = _good(data)
    no_id = {k: v for k, v in good[0].items() if k not in ("id", "url", "paragraphs", "text")}
    huge = dict(good[1], id="huge", text="كلمة " * (2 * LIMIT // 9))
    huge.pop("paragraphs", None)
    furniture = {"id": "furniture-only", "title": "", "paragraphs": ["المصدر: وكالة الأنباء"]}
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb") as fh:
        fh.write(_jsonl(good))
    n = N_GOOD
    mid = n // 2
    out = [
        ("UTF-8 BOM", "jsonl", "a.jsonl", BOM + _jsonl(good), n),
        ("UTF-8 BOM", "csv", "a.csv", BOM + _csv(good), n),
        ("UTF-8 BOM", "json", "a.json", BOM + json.dumps(good).encode(), n),
        (
            "lone surrogate, no id",
            "jsonl",
            "a.jsonl",
            _jsonl([dict(no_id, text="خبر \ud83d")] + good),
            n + 1,
        ),
        (
            "lone surrogate, no id",
            "json",
            "a.json",
            json.dumps([dict(no_id, text="\ud83d")] + good).encode(),
            n + 1,
        ),
        (
            "lone surrogate (bytes)",
            "csv",
            "a.csv",
            _csv([dict(no_id, text="خبر \ud83d")] + good),
            n + 1,
        ),
        (
            "undecodable bytes",
            "jsonl",
            "a.jsonl",
            _jsonl(good[:mid] + [b'{"id": "x", "text": "\xff\xfe"}'] + good[mid:]),
            n + 1,
        ),
        ("undecodable bytes", "csv", "a.csv", _csv(good, {mid: b"bad,\xff\xfe,x"}), n),
        ("NUL byte", "csv", "a.csv", _csv(good, {mid: b"nul,\x00,text\x00"}), n),
        ("bare CR in a row", "csv", "a.csv", _csv(good, {mid: b"cr,a\rb,c"}), n),
        ("stray quote", "csv", "a.csv", _csv(good, {mid: b'stray,"never closed,x'}), n),
        (
            # each line reopens a quote whether read from a row start or from inside quotes
            "quotes never close (6 lines), then 5 plain rows",
            "csv",
            "a.csv",
            _csv(good) + b'q",b,"open\n' * 6 + b"".join(b"p%d,t,x\n" % i for i in range(5)),
            None,
        ),
        (
            "truncated line",
            "jsonl",
            "a.jsonl",
            _jsonl(good[:mid] + [_jsonl([good[mid]])[:300]] + good[mid + 1 :]),
            n,
        ),
        (
            "random bytes",
            "jsonl",
            "a.jsonl",
            _jsonl(good[:mid] + [os.urandom(200).replace(b"\n", b" ")] + good[mid:]),
            n + 1,
        ),
        (
            "wrong types",
            "jsonl",
            "a.jsonl",
            _jsonl([{"id": "t", "text": 5}, [1, 2], None, {"id": [1], "text": "x"}] + good),
            n + 4,
        ),
        (
            "wrong types",
            "json",
            "a.json",
            json.dumps([{"id": "t", "text": 5}, [1, 2], None] + good).encode(),
            n + 3,
        ),
        ("empty record", "jsonl", "a.jsonl", _jsonl([{}, {"id": "e", "text": ""}] + good), n + 2),
        ("huge record (2 MB > 1 MiB limit)", "jsonl", "a.jsonl", _jsonl([huge] + good), n + 1),
        ("huge record (2 MB > 1 MiB limit)", "csv", "a.csv", _csv([huge] + good), n + 1),
        (
            "huge record (2 MB > 1 MiB limit)",
            "json",
            "a.json",
            json.dumps([huge] + good).encode(),
            n + 1,
        ),
        ("every paragraph furniture", "jsonl", "a.jsonl", _jsonl([furniture] + good), n + 1),
        (
            "truncated gzip",
            "jsonl.gz",
            "a.jsonl.gz",
            gz.getvalue()[: len(gz.getvalue()) // 2],
            None,
        ),
        (
            "JSON Lines named .json, bad line",
            "json",
            "a.json",
            _jsonl(good[:mid] + [b"{oops"] + good[mid:]),
            n + 1,
        ),
    ]
    return out


def run_faults(models: list[str], work: Path, engines: list[str]) -> list[dict]:
    from training.cli import main

    rows = []
    for kind, fmt, name, data, n_in in fault_archives(DEFAULT_DATA):
        for engine in engines:
            folder = work / f"f{len(rows)}"
            folder.mkdir()
            (folder / name).write_bytes(data)
            out = folder / "out.jsonl"
            argv = ["tag", *models, "--input", str(folder / name), "--output", str(out)]
            argv += ["--max-record-bytes", str(LIMIT), "--engine", engine]
            code = main(argv)
            records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
            flagged = [r for r in records if r.get("boilerplate", {}).get("all_removed")]
            rows.append(
                {
                    "kind": kind,
                    "format": fmt,
                    "engine": engine,
                    "in": n_in,
                    "out": len(records),
                    "errors": sum("error" in r for r in records),
                    "exit": code,
                    "note": _note(records, flagged),
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def _note(records: list[dict], flagged: list[dict]) -> str:
    if flagged:
        return f"all_removed, topic unfiltered={flagged[0]['topic'].get('unfiltered')}"
    types = sorted({r["error"]["type"] for r in records if "error" in r})
    return ", ".join(types)


# ---------------------------------------------------------------- the 50 MB article
CHILD = """
import json, sys, time
from pathlib import Path
from inference.engines.runner import run_tagging
from inference.tagger import load_tagger
refs, src, out, limit = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
tagger = load_tagger(refs)
loaded = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM")]
t0 = time.perf_counter()
summary = run_tagging(tagger, src, out, progress=False, workers=1, max_record_bytes=limit)
peak = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM")]
rec = json.loads(Path(out).read_text("utf-8").splitlines()[0])
print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "exit_code": 3 if summary["errors"] else 0,
                  "peak_rss_mb": int(peak[0].split()[1]) // 1024,
                  "rss_after_load_mb": int(loaded[0].split()[1]) // 1024,
                  "errors": summary["errors"], "first": {k: (v if k != "boilerplate" else
                  {"paragraphs": len(v["labels"]), "removed": v["removed"]}) for k, v in rec.items()
                  if k != "models"}}, ensure_ascii=False))
"""


def big_article(data: Path, mb: int, folder: Path) -> dict[str, Path]:
    paras = [p for r in _good(data) for p in (r.get("paragraphs") or r["text"].split("\n"))]
    paras = [p for p in paras if p.strip()]
    target = mb * 1_000_000
    many, size, i = [], 0, 0
    while size < target:
        many.append(paras[i % len(paras)])
        size += len(many[-1].encode()) + 1
        i += 1
    files = {
        "ten ordinary articles": _jsonl(_good(data)),
        f"{mb} MB article, {len(many):,} paragraphs": _jsonl(
            [{"id": "big", "title": "خبر طويل", "paragraphs": many}]
        ),
        f"{mb} MB article, one paragraph": _jsonl(
            [{"id": "big1", "title": "خبر طويل", "text": " ".join(many)}]
        ),
    }
    paths = {}
    for n, (label, data_) in enumerate(files.items()):
        paths[label] = folder / f"big{n}.jsonl"
        paths[label].write_bytes(data_)
    return paths


def run_big(refs: list[str], mb: int, work: Path) -> list[dict]:
    rows = []
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for label, path in big_article(DEFAULT_DATA, mb, work).items():
        for limit in (16 << 20, 64 << 20):  # the default, and a limit the article is under
            if label.startswith("ten") and limit != 16 << 20:
                continue
            cmd = [sys.executable, "-c", CHILD, json.dumps(refs), str(path), str(work / "o.jsonl")]
            proc = subprocess.run([*cmd, str(limit)], capture_output=True, text=True, env=env)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            row = {"input": label, "bytes": path.stat().st_size, "limit": limit, **result}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundles", type=Path, help="DIR/{boilerplate,topic,stance}")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--skip-faults", action="store_true")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.bundles:
            bundles = bundles_from_dir(args.bundles)
        else:
            bundles = train_quick_bundles(DEFAULT_DATA, work / "quick")
        refs = [str(p) for p in bundles.values()]
        models = [a for r in refs for a in ("--model", r)]
        engines = ["local"] if args.no_ray else ["local", "ray"]
        if "ray" in engines:
            import ray

            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
        t0 = time.perf_counter()
        if not args.skip_faults:
            rows = run_faults(models, work, engines)
            print("\n| fault | format | engine | in | out | errors | exit | error types |")
            print("|---|---|---|---|---|---|---|---|")
            for r in rows:
                n_in = r["in"] if r["in"] is not None else "?"
                print(
                    f"| {r['kind']} | {r['format']} | {r['engine']} | {n_in} | {r['out']} | "
                    f"{r['errors']} | {r['exit']} | {r['note']} |"
                )
        big = run_big(refs, args.mb, work)
        print(
            "\n| input | bytes | --max-record-bytes | result | seconds | peak RSS MB | after load MB |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in big:
            first = r["first"]
            result = first["error"]["type"] if "error" in first else "tagged"
            print(
                f"| {r['input']} | {r['bytes']:,} | {r['limit']:,} | {result} | {r['seconds']} | "
                f"{r['peak_rss_mb']} | {r['rss_after_load_mb']} |"
            )
        print(f"\n{machine_line()}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
