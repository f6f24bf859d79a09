"""Transformer tagging speed on CPU: a naive HF pipeline loop vs khabar torch vs khabar ONNX.

One realistic-size model (multilingual-e5-small, 31M parameters, from ``../shared/models``) and
the same ``--n`` real ANS claim/text pairs (official dev split, not used for fine-tuning), timed:
1. naive: ``transformers.pipeline("text-classification")`` called once per pair, as a user with
   a loop would (the pair formatted exactly as khabar formats it, so labels compare);
2. khabar torch: ``load_bundle(backend="torch")`` + ``Bundle.predict`` (length-sorted batches);
3. khabar ONNX fp32 (``backend="onnx"``) and int8 (``backend="onnx-int8"``), after
   ``inference.predictors.onnx_export.export_onnx(bundle, quantize_int8=True)``;
4. for comparison, the same int8 quantization with per-channel weight scales (what
   ``export_onnx`` could write instead), run through the same khabar predictor.
Printed: pairs/s, ratios to the naive loop, and label agreement with khabar torch. Targets: ONNX
int8 >= 3x the naive loop, >= 99% identical labels.

The model: ``--bundle DIR`` (a khabar stance bundle fine-tuned from the e5 encoder), else one is
built here: the encoder + a classification head fine-tuned for ``--steps`` steps on ANS train
pairs through ``training.fit.train.train`` (``training.fit.transformer_trainer``). The point is the
model's size, not its accuracy. Skips (exit 0) when the shared model or data is absent.

    .venv/bin/python benchmarks/transformer_speed.py [--n 300] [--bundle DIR] [--steps 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import DEFAULT_DATA, DEFAULT_E5, iter_ans, machine_line, require  # noqa: E402

TARGET_SPEEDUP = 3.0
TARGET_AGREEMENT = 0.99
BATCH = 16


def ans_rows(data: Path) -> tuple[list[dict], list[dict]]:
    """(train rows, dev rows) of ANS as khabar stance rows (normalized) with labels."""
    from inference.text.preprocess import stance_row

    train, dev = [], []
    for rec in iter_ans(data):
        row = {**stance_row(rec["id"], rec["claim"], rec["text"]), "label": rec["label"]}
        (train if rec.get("split") == "train" else dev).append(row)
    return train, dev


def build_bundle(e5: Path, train: list[dict], dev: list[dict], steps: int, out: Path) -> Path:
    """Fine-tune the e5 encoder for ``steps`` steps on ANS pairs; write a khabar bundle."""
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict

    from training.config import TrainConfig
    from training.fit.train import train as train_model

    datasets.disable_progress_bars()
    labels = ["agree", "disagree", "other"]
    rng = random.Random(7)
    picked = rng.sample(train, min(steps * BATCH, len(train)))  # one epoch = ``steps`` steps

    def ds(rows):
        return Dataset.from_list(rows).cast_column("label", ClassLabel(names=labels))

    DatasetDict({"train": ds(picked), "validation": ds(dev), "test": ds(dev)}).save_to_disk(
        str(out / "data")
    )
    cfg = TrainConfig.model_validate(
        {
            "task": "stance",
            "data": {"dataset_dir": str(out / "data")},
            "model": {
                "kind": "transformer",
                "name_or_path": str(e5),
                "text_prefix": "query: ",
                "max_length": 96,
            },
            "training": {
                "epochs": 1,
                "batch_size": BATCH,
                "learning_rate": 5e-5,
                "early_stopping_patience": None,
            },
            "tracking": {"enabled": False},
        }
    )
    return train_model(cfg, out / "bundle").bundle_dir


def naive_inputs(bundle_dir: Path, rows: list[dict]) -> list[dict]:
    """Each pair as the naive loop passes it: khabar's own formatting (prefix, pair order)."""
    from inference.predictors.bundle import read_bundle_meta
    from inference.predictors.transformer_inputs import InputFormat, row_segments

    fmt = InputFormat.from_config(read_bundle_meta(bundle_dir)["config"]["model"])
    if fmt.pair_first == "both":  # two inputs per row: no one-call-per-row loop to compare with
        raise SystemExit(f"{bundle_dir}: model.pair_first 'both' is not comparable with a pipeline")
    return [
        {"text": first, "text_pair": second}
        for first, second in (row_segments("stance", r, fmt) for r in rows)
    ]


def timed(fn) -> tuple[list[str], float]:
    start = time.perf_counter()
    labels = fn()
    return labels, time.perf_counter() - start


def run_naive(bundle_dir: Path, rows: list[dict]) -> tuple[list[str], float]:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(bundle_dir / "model"), device="cpu")
    inputs = naive_inputs(bundle_dir, rows)
    clf(inputs[0])  # warm-up
    return timed(lambda: [clf(x)["label"] for x in inputs])


def quantize_per_channel(bundle_dir: Path) -> Path:
    """``model.onnx`` quantized like ``export_onnx`` does but with per-channel weight scales."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = bundle_dir / "model.int8-per-channel.onnx"
    quantize_dynamic(
        str(bundle_dir / "model.onnx"), str(target), weight_type=QuantType.QInt8, per_channel=True
    )
    return target


def run_khabar(
    bundle_dir: Path, rows: list[dict], backend: str, onnx_file: Path | None = None
) -> tuple[list[str], float]:
    from inference.predictors.bundle import load_bundle
    from inference.predictors.transformer import OnnxRunner

    bundle = load_bundle(bundle_dir, device="cpu", backend=backend)
    if onnx_file is not None:  # same predictor (batching, pooling), another graph
        bundle.predictor.runner = OnnxRunner(onnx_file)
    bundle.predict(rows[:BATCH])  # warm-up (graph optimization, allocator)
    return timed(lambda: bundle.predict(rows)[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--e5", type=Path, default=DEFAULT_E5, help="the shared e5 encoder folder")
    ap.add_argument("--bundle", type=Path, default=None, help="a fine-tuned stance bundle")
    ap.add_argument("--n", type=int, default=300, help="pairs to tag")
    ap.add_argument("--steps", type=int, default=100, help="fine-tuning steps (no --bundle)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = ap.parse_args(argv)

    require(args.data / "ans_stance" / "stance.jsonl", "ANS stance data")
    train, dev = ans_rows(args.data)
    rng = random.Random(11)
    rng.shuffle(dev)
    eval_rows, bench_rows = dev[:200], [{k: r[k] for k in ("id", "target", "text")} for r in dev]
    bench_rows = (
        bench_rows[200 : 200 + args.n] if len(dev) >= 200 + args.n else bench_rows[: args.n]
    )
    own_work = args.work is None
    work = args.work or Path(tempfile.mkdtemp(prefix="khabar-tf-"))
    print(f"machine: {machine_line()}")
    try:
        if args.bundle is None:
            require(args.e5 / "config.json", "the shared e5 encoder")
            print(f"fine-tuning {args.e5.name} for {args.steps} steps on ANS pairs ...")
            started = time.perf_counter()
            bundle_dir = build_bundle(args.e5, train, eval_rows, args.steps, work)
            print(f"  done in {time.perf_counter() - started:.0f}s: {bundle_dir}")
        else:  # exported into a copy: the user's bundle is left as it was
            bundle_dir = work / "bundle"
            shutil.copytree(args.bundle, bundle_dir, dirs_exist_ok=True)
        from inference.predictors.onnx_export import export_onnx

        started = time.perf_counter()
        entry = export_onnx(bundle_dir, quantize_int8=True)
        print(f"ONNX export + int8 quantization: {time.perf_counter() - started:.0f}s")
        for name, info in entry["files"].items():
            print(
                f"  {name}: {info['bytes'] / 1e6:.0f} MB, parity label agreement "
                f"{info['label_agreement']:.3f}, max |logit diff| {info['max_abs_logit_diff']:.4f}"
            )

        print(f"\n{len(bench_rows)} ANS dev pairs (not used for fine-tuning), CPU:")
        results = {"naive pipeline loop": run_naive(bundle_dir, bench_rows)}
        for label, backend in (
            ("khabar torch", "torch"),
            ("khabar onnx fp32", "onnx"),
            ("khabar onnx int8", "onnx-int8"),
        ):
            results[label] = run_khabar(bundle_dir, bench_rows, backend)
        # Not what export_onnx writes today: per-channel weight scales, for comparison.
        per_channel = quantize_per_channel(bundle_dir)
        results["onnx int8 per-channel"] = run_khabar(bundle_dir, bench_rows, "onnx", per_channel)
        reference = results["khabar torch"][0]
        naive_rate = len(bench_rows) / results["naive pipeline loop"][1]
        print(f"  {'method':22s} {'pairs/s':>8} {'vs naive':>9} {'same label as torch':>20}")
        for label, (labels, seconds) in results.items():
            rate = len(bench_rows) / seconds
            same = sum(a == b for a, b in zip(labels, reference, strict=True)) / len(reference)
            print(f"  {label:22s} {rate:8.1f} {rate / naive_rate:8.2f}x {100 * same:19.1f}%")
        int8_labels, int8_seconds = results["khabar onnx int8"]
        speedup = (len(bench_rows) / int8_seconds) / naive_rate
        agreement = sum(a == b for a, b in zip(int8_labels, reference, strict=True)) / len(
            reference
        )
        print(
            f"ONNX int8: {speedup:.2f}x the naive loop (target {TARGET_SPEEDUP}x: "
            f"{'met' if speedup >= TARGET_SPEEDUP else 'not met'}), {100 * agreement:.1f}% same "
            f"labels as torch (target {100 * TARGET_AGREEMENT:.0f}%: "
            f"{'met' if agreement >= TARGET_AGREEMENT else 'not met'})"
        )
        print(f"machine after: {machine_line()}")
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
