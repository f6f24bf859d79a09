"""Serving a fine-tuned transformer bundle: ``model/`` (HF safetensors folder) or its ONNX export.

Inputs are shaped by ``inference.predictors.transformer_inputs`` (the same functions the trainer
uses), encoded once, sorted by length so each batch pads little, run batched under
``torch.inference_mode()`` (or onnxruntime), put back in order, and pooled per row (topic windows).
Backends:
- ``torch``: ``load_sequence_classifier(bundle/"model")`` (stock HF head or khabar's mean head).
- ``onnx``: ``model.onnx`` (fp32, parity-checked at export); ``onnx-int8``: ``model.int8.onnx``.
- ``auto``: on a GPU, torch; on CPU, ``model.onnx`` when present and onnxruntime is importable,
  else torch. The int8 model is used only when asked for: its predictions may differ slightly from
  the metrics recorded in ``bundle.json``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import BundleError
from inference.predictors.classifier_heads import load_sequence_classifier
from inference.predictors.transformer_inputs import (
    InputFormat,
    build_model_inputs,
    encode_inputs,
    pool_logits,
    softmax,
)

log = logging.getLogger(__name__)

MODEL_DIR = "model"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
BACKENDS = ("auto", "torch", *ONNX_FILES)
CPU_BATCH, GPU_BATCH = 32, 256


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pad_batch(features: dict[str, list], indices: list[int], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad the chosen encoded inputs to the longest one (pad id for ids, 0 elsewhere)."""
    width = max(len(features["input_ids"][i]) for i in indices)
    out = {}
    for name, seqs in features.items():
        fill = pad_id if name == "input_ids" else 0
        arr = np.full((len(indices), width), fill, dtype=np.int64)
        for row, i in enumerate(indices):
            arr[row, : len(seqs[i])] = seqs[i]
        out[name] = arr
    return out


def default_threads() -> int:
    import torch

    return max(1, min(torch.get_num_threads(), available_cpus()))


class TorchRunner:
    """Logits from a torch sequence classifier, one padded batch at a time."""

    def __init__(self, model, device: str):
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            return self.model(**tensors).logits.float().cpu().numpy()


class OnnxRunner:
    """Logits from an onnxruntime session (inputs it does not declare are not fed)."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # One op at a time, each using the cores: batched encoder inference is matmul-bound. The
        # thread count follows torch's (OMP_NUM_THREADS / torch.set_num_threads), one knob for both
        # backends: on shared cores, fewer threads than cores is much faster than oversubscribing.
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path = path

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: batch[name] for name in self.input_names if name in batch}
        return self.session.run(["logits"], feed)[0].astype(np.float32)


class TransformerPredictor:
    """``.labels`` and ``.predict_proba(rows)`` for one task (the ``Predictor`` protocol)."""

    def __init__(
        self,
        task: str,
        labels: list[str],
        fmt: InputFormat,
        tokenizer,
        runner,
        id2label: dict[int, str],
        batch_size: int = CPU_BATCH,
        backend: str = "torch",
    ):
        self.task = task
        self.backend = backend  # which runner serves: torch | onnx | onnx-int8
        self.labels = list(labels)
        self.fmt = fmt
        self.tokenizer = tokenizer
        self.runner = runner
        self.batch_size = batch_size
        self.columns = label_columns(self.labels, id2label)
        self.last_n_inputs = 0  # model inputs of the last call (topic windows); for tests/telemetry

    def encode(self, rows: list[dict]) -> tuple[dict[str, list], list[int]]:
        inputs, owners = build_model_inputs(self.task, rows, self.tokenizer, self.fmt)
        return encode_inputs(self.tokenizer, inputs, self.fmt), owners

    def predict_logits(self, rows: list[dict]) -> np.ndarray:
        """(n, len(labels)) logits in ``self.labels`` order, windows pooled per row."""
        if not rows:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        features, owners = self.encode(rows)
        self.last_n_inputs = len(owners)
        lengths = np.array([len(ids) for ids in features["input_ids"]])
        order = np.argsort(lengths, kind="stable")
        logits = None
        pad_id = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size].tolist()
            out = self.runner(pad_batch(features, idx, pad_id))
            if logits is None:
                logits = np.zeros((len(order), out.shape[1]), dtype=np.float32)
            logits[idx] = out
        pooled = pool_logits(logits, owners, len(rows), self.fmt.pooling)
        return pooled[:, self.columns]

    def predict_proba(self, rows: list[dict]) -> np.ndarray:
        return softmax(self.predict_logits(rows))


def label_columns(labels: list[str], id2label: dict[Any, str]) -> list[int]:
    """Model output column of each bundle label; refuses a model trained on other labels."""
    label2id = {str(name): int(i) for i, name in id2label.items()}
    missing = [lab for lab in labels if lab not in label2id]
    if missing or len(label2id) != len(labels):
        raise BundleError(f"model labels {sorted(label2id)} do not match bundle labels {labels}")
    return [label2id[lab] for lab in labels]


def resolve_device(device: str | None) -> str:
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_backend(path: Path, backend: str, device: str) -> str:
    if backend not in BACKENDS:
        raise BundleError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        if backend in ONNX_FILES and not (path / ONNX_FILES[backend]).exists():
            raise BundleError(f"{path}: backend {backend!r} needs {ONNX_FILES[backend]}")
        return backend
    ort_ok = importlib.util.find_spec("onnxruntime") is not None
    if device == "cpu" and ort_ok and (path / ONNX_FILES["onnx"]).exists():
        return "onnx"
    return "torch"


def load_transformer_predictor(
    path: str | Path, meta: dict, device: str | None = None, backend: str = "auto"
) -> TransformerPredictor:
    """The predictor for a transformer bundle at ``path`` (``meta`` = its ``bundle.json``)."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path)
    model_dir = path / MODEL_DIR
    if not (model_dir / "config.json").exists():
        raise BundleError(f"{path}: transformer bundle without {MODEL_DIR}/config.json")
    fmt = InputFormat.from_config(meta.get("config", {}).get("model", {}))
    device = resolve_device(device)
    chosen = choose_backend(path, backend, device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    id2label = AutoConfig.from_pretrained(model_dir).id2label
    if chosen == "torch":
        runner = TorchRunner(load_sequence_classifier(model_dir), device)
    else:
        runner = OnnxRunner(path / ONNX_FILES[chosen])
    log.info("transformer %s: backend %s on %s", meta.get("task"), chosen, device)
    batch = GPU_BATCH if device.startswith("cuda") else CPU_BATCH
    return TransformerPredictor(
        meta["task"], meta["labels"], fmt, tokenizer, runner, id2label, batch, chosen
    )
