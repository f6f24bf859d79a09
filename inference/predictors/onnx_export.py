"""ONNX fast path for a transformer bundle: ``model.onnx`` (+ ``model.int8.onnx``) with a parity check.

The export is checked where it matters: the same rows go through the bundle's predictor with the torch
backend and with onnxruntime (same formatting, batching, window pooling), and the largest logit
difference and the share of identical labels are recorded in ``bundle.json`` under ``onnx``.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from inference.predictors.bundle import read_bundle_meta, write_bundle_meta
from inference.predictors.classifier_heads import load_sequence_classifier
from inference.predictors.transformer import (
    MODEL_DIR,
    ONNX_FILES,
    OnnxRunner,
    TorchRunner,
    TransformerPredictor,
)
from inference.predictors.transformer_inputs import InputFormat

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
PARITY_BATCH = 5
# Parity probes when the caller has no dev rows: short and long Arabic news sentences.
_SAMPLE_SENTENCES = [
    "أعلنت وزارة المالية ارتفاع الإيرادات العامة خلال الربع الأول من العام",
    "فاز المنتخب الوطني على نظيره في المباراة النهائية للبطولة",
    "المصدر: وكالة الأنباء الرسمية",
    "اقرأ أيضاً",
    "قال وزير الخارجية إن المحادثات ستستأنف الأسبوع المقبل في العاصمة بعد توقف دام شهرين",
    "تراجعت أسعار النفط في الأسواق العالمية وسط مخاوف من تباطؤ الطلب",
    "حمل تطبيقنا على الهاتف لمتابعة آخر الأخبار",
    "جميع الحقوق محفوظة",
]


def sample_rows(task: str) -> list[dict]:
    """A few rows of the task's shape built from ``_SAMPLE_SENTENCES`` (a long topic text included)."""
    s = _SAMPLE_SENTENCES
    n = len(s)
    if task == "stance":
        return [{"id": str(i), "target": s[i], "text": s[(i + 3) % n]} for i in range(n)]
    if task == "boilerplate":
        return [
            {
                "id": str(i),
                "text": s[i],
                "prev_text": s[i - 1] if i else "",
                "next_text": s[i + 1] if i + 1 < n else "",
            }
            for i in range(n)
        ]
    rows = [{"id": str(i), "text": s[i]} for i in range(n)]
    rows.append({"id": "long", "text": "\n".join(s * 12)})  # beyond one window: pooled windows
    return rows


def _logits_module(model, input_names: list[str]):
    """The classifier as a module with positional tensor inputs and one output (the logits)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(input_names, tensors, strict=True))).logits

    return LogitsOnly().eval()


def _export(model_dir: Path, target: Path, opset: int) -> None:
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Eager attention: plain matmul/softmax ops that every opset >= 17 runtime supports.
    model = load_sequence_classifier(model_dir, attn_implementation="eager")
    dummy = tokenizer(
        _SAMPLE_SENTENCES[:2], _SAMPLE_SENTENCES[2:4], padding=True, return_tensors="pt"
    )
    names = [n for n in tokenizer.model_input_names if n in dummy]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings():
        # Tracing warns about shape checks it freezes (an encoder's mask is never padded) and
        # about index ops; the parity check below is what proves the graph right.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        # The TorchScript exporter: the dynamo one needs onnxscript, not a khabar dependency.
        torch.onnx.export(
            _logits_module(model, names),
            tuple(dummy[n] for n in names),
            str(target),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ORT suggests its pre-processing first; its symbolic shape inference fails on this graph, and
    # the parity check measures the quantized model anyway: drop the hint.
    hint = _DropMessage("pre-processing before quantization")
    logging.getLogger().addFilter(hint)
    try:
        # Dynamic int8: weights quantized once, activations per batch; no calibration data needed.
        # Per-channel scales: per-tensor int8 flipped 9% of near-tie labels on a fine-tuned e5
        # (benchmarks/transformer_speed.py); per-channel kept 100% at the same speed.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().removeFilter(hint)


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _parity(reference: np.ndarray, predictor: TransformerPredictor, rows: list[dict]) -> dict:
    logits = predictor.predict_logits(rows)
    same = reference.argmax(axis=1) == logits.argmax(axis=1)
    return {
        "n": len(rows),
        "max_abs_logit_diff": float(np.abs(reference - logits).max()),
        "label_agreement": float(same.mean()),
    }


def export_onnx(
    bundle_dir: str | Path,
    quantize_int8: bool = True,
    rows: list[dict] | None = None,
    opset: int = DEFAULT_OPSET,
) -> dict:
    """Export ``bundle_dir/model`` to ``model.onnx`` (and ``model.int8.onnx``), check parity against
    torch on ``rows`` (default: built-in samples), and record it in ``bundle.json`` under ``onnx``.
    Returns the recorded ``onnx`` entry."""
    from transformers import AutoConfig, AutoTokenizer

    bundle_dir = Path(bundle_dir)
    meta = read_bundle_meta(bundle_dir)
    model_dir = bundle_dir / MODEL_DIR
    rows = rows or sample_rows(meta["task"])
    fmt = InputFormat.from_config(meta.get("config", {}).get("model", {}))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    id2label = AutoConfig.from_pretrained(model_dir).id2label

    def predictor(runner) -> TransformerPredictor:
        # Small batches: the check runs several batch sizes and sequence lengths through the graph.
        return TransformerPredictor(
            meta["task"], meta["labels"], fmt, tokenizer, runner, id2label, batch_size=PARITY_BATCH
        )

    torch_model = load_sequence_classifier(model_dir)
    reference = predictor(TorchRunner(torch_model, "cpu")).predict_logits(rows)

    started = time.perf_counter()
    files: dict[str, dict] = {}
    variants = ["onnx", "onnx-int8"] if quantize_int8 else ["onnx"]
    for variant in variants:
        path = bundle_dir / ONNX_FILES[variant]
        if variant == "onnx":
            _export(model_dir, path, opset)
        else:
            _quantize(bundle_dir / ONNX_FILES["onnx"], path)
        parity = _parity(reference, predictor(OnnxRunner(path)), rows)
        files[path.name] = {"backend": variant, "bytes": path.stat().st_size, **parity}
        log.info("%s: %s", path.name, json.dumps(parity))

    entry = {"opset": opset, "files": files, "export_seconds": time.perf_counter() - started}
    # Read-modify-write: other keys of bundle.json (metrics, config...) stay as they are.
    meta = read_bundle_meta(bundle_dir)
    meta["onnx"] = entry
    write_bundle_meta(bundle_dir, meta)
    return entry
