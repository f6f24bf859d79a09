"""Fine-tuning a transformer classifier for one task with the HF ``Trainer``.

Inputs are shaped by ``inference.predictors.transformer_inputs`` (the functions the predictor uses
too): stance pairs, boilerplate (paragraph, context) pairs, topic articles cut into overlapping
windows (each window a training example with the article's label; at evaluation the window logits
are pooled per article, exactly as at serving time). The loss is a cross-entropy with optional class
weights and label smoothing; early stopping and best-model selection use the dev macro-F1 from
``training.tracking.metrics.compute_metrics``. Checkpoints live in a temporary folder that is
deleted; the best model and its tokenizer are saved to ``out_dir/"model"`` (safetensors).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inference.predictors.classifier_heads import load_sequence_classifier
from inference.predictors.transformer_inputs import (
    InputFormat,
    build_model_inputs,
    encode_inputs,
    pool_logits,
)
from training.config import TrainConfig, TrainingParams, TransformerModel

log = logging.getLogger(__name__)

MODEL_DIR = "model"
GPU_EVAL_BATCH_FACTOR = 4  # evaluation has no gradients: a GPU takes much larger batches
EpochCallback = Callable[[int, dict], None]


# ---------------------------------------------------------------- data
def label_ids(split, labels: list[str]) -> list[int]:
    """The split's labels as indices into ``labels`` (``label`` may be a ClassLabel or strings)."""
    label2id = {lab: i for i, lab in enumerate(labels)}
    feature = split.features["label"]
    names = getattr(feature, "names", None)
    values = [names[v] if names is not None else str(v) for v in split["label"]]
    unknown = sorted(set(values) - set(label2id))
    if unknown:
        raise ValueError(f"labels {unknown} in the data are not in the label set {labels}")
    return [label2id[v] for v in values]


def encode_split(split, task: str, tokenizer, fmt: InputFormat, labels: list[str]):
    """A ``datasets.Dataset`` of model inputs + ``labels`` + ``owner`` (the source row index).

    Topic rows expand into one example per window; the owner column maps them back to articles.
    Arrow-backed (batched ``map``) so large splits do not live as Python lists.
    """
    ids = label_ids(split, labels)

    def encode(batch: dict, indices: list[int]) -> dict:
        rows = [
            dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)
        ]
        inputs, owners = build_model_inputs(task, rows, tokenizer, fmt)
        enc = encode_inputs(tokenizer, inputs, fmt)
        enc["labels"] = [ids[indices[o]] for o in owners]
        enc["owner"] = [indices[o] for o in owners]
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    return split.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=split.column_names,
        keep_in_memory=True,
        desc=f"encoding {task}",
    )


def class_weights(label_counts: Counter, n_labels: int, how: str) -> np.ndarray | None:
    """Inverse-frequency class weights (``balanced``), their square root (``sqrt``), or None."""
    if how == "none":
        return None
    counts = np.array([max(label_counts.get(i, 0), 1) for i in range(n_labels)], dtype=np.float64)
    weights = counts.sum() / (n_labels * counts)
    return np.sqrt(weights) if how == "sqrt" else weights


# ---------------------------------------------------------------- runtime
def resolve_precision(requested: str, cuda: bool) -> str:
    """``auto``: bf16 where the GPU supports it, else fp16 on a GPU, fp32 on CPU."""
    import torch

    if requested == "auto":
        if not cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested == "fp16" and not cuda:
        log.warning("precision fp16 needs a GPU; training in fp32 on CPU")
        return "fp32"
    return requested


def load_classifier(name_or_path: str, labels: list[str], head: str = "cls"):
    """The pretrained encoder with a new ``head`` for ``labels`` (both stored in its config)."""
    return load_sequence_classifier(
        name_or_path,
        head=head,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        problem_type="single_label_classification",
    )


def training_arguments(params: TrainingParams, output_dir: str, has_eval: bool, cuda: bool):
    from transformers import TrainingArguments

    precision = resolve_precision(params.precision, cuda)
    eval_batch = params.eval_batch_size * (GPU_EVAL_BATCH_FACTOR if cuda else 1)
    strategy = "epoch" if has_eval else "no"
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=params.epochs,
        max_steps=params.max_steps or -1,
        learning_rate=params.learning_rate,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=eval_batch,
        weight_decay=params.weight_decay,
        warmup_steps=params.warmup_ratio,  # a float below 1 is a ratio of the total steps
        eval_strategy=strategy,
        save_strategy=strategy,
        save_total_limit=1,  # with load_best_model_at_end the best checkpoint is kept as well
        save_only_model=True,  # no optimizer state: checkpoints only serve best-model reloading
        load_best_model_at_end=has_eval,
        metric_for_best_model="macro_f1" if has_eval else None,
        greater_is_better=True if has_eval else None,
        logging_strategy="epoch",
        report_to="none",  # the caller logs to MLflow through on_epoch
        seed=params.seed,
        data_seed=params.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
    )


def make_trainer_class():
    """``Trainer`` with a weighted, label-smoothed cross-entropy (built lazily: importing
    transformers' Trainer costs seconds, and the trainer module is imported by the CLI)."""
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        # The loss below is a per-batch mean: let the Trainer scale it for gradient accumulation.
        loss_is_scaled_for_ga = False

        def __init__(
            self, *args, weights: np.ndarray | None = None, smoothing: float = 0.0, **kwargs
        ):
            super().__init__(*args, **kwargs)
            self.class_weight = (
                None if weights is None else torch.tensor(weights, dtype=torch.float32)
            )
            self.smoothing = smoothing

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()  # autocast (bf16/fp16) logits: the loss in fp32
            weight = None if self.class_weight is None else self.class_weight.to(logits.device)
            loss = torch.nn.functional.cross_entropy(
                logits, labels, weight=weight, label_smoothing=self.smoothing
            )
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def metrics_fn(
    task: str, labels: list[str], owners: list[int], row_labels: list[int], pooling: str
) -> Callable:
    """``compute_metrics`` for the Trainer: pool window logits per row, then macro-F1/accuracy."""
    from training.tracking.metrics import compute_metrics

    owner_index = np.unique(np.asarray(owners), return_inverse=True)
    rows, inverse = owner_index
    y_true = [labels[row_labels[r]] for r in rows]

    def compute(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        pooled = pool_logits(logits, inverse, len(rows), pooling)
        y_pred = [labels[i] for i in pooled.argmax(axis=1)]
        scores = compute_metrics(task, y_true, y_pred, labels)
        return {"macro_f1": float(scores["macro_f1"]), "accuracy": float(scores["accuracy"])}

    return compute


def history_callback(history: list[dict], on_epoch: EpochCallback | None):
    """Collects per-epoch train loss + dev scores, and hands each epoch to ``on_epoch``."""
    from transformers import TrainerCallback

    class History(TrainerCallback):
        train_loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.train_loss = float(logs["loss"])

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if not metrics or "eval_macro_f1" not in metrics:
                return  # an evaluation outside the epoch loop
            entry = {
                "epoch": int(round(state.epoch or 0)),
                "val_macro_f1": float(metrics["eval_macro_f1"]),
                "val_accuracy": float(metrics["eval_accuracy"]),
                "val_loss": float(metrics.get("eval_loss", math.nan)),
            }
            if self.train_loss is not None:  # logged at each epoch end, before the evaluation
                entry["train_loss"] = self.train_loss
            history.append(entry)
            log.info("epoch %s: %s", entry["epoch"], entry)
            if on_epoch is not None:
                on_epoch(entry["epoch"], dict(entry))

    return History()


# ---------------------------------------------------------------- entry point
def train_transformer(
    cfg: TrainConfig, data, labels: list[str], out_dir: Path, on_epoch: EpochCallback | None = None
) -> dict:
    """Fine-tune ``cfg.model.name_or_path`` on ``data`` (a DatasetDict); save the best model.

    Returns ``{"history": [{"epoch", "val_macro_f1", "val_accuracy", "train_loss", ...}],
    "train_seconds", "best_epoch", "n_train_inputs", "n_eval_inputs", "device", "precision"}``.
    """
    import torch

    if not isinstance(cfg.model, TransformerModel):
        raise ValueError("train_transformer needs a model of kind 'transformer'")
    threads_before = torch.get_num_threads()
    if cfg.training.threads:
        torch.set_num_threads(cfg.training.threads)
    try:
        return _fit(cfg, data, labels, Path(out_dir), on_epoch)
    finally:
        torch.set_num_threads(threads_before)  # a process-wide setting: scoped to this run


def _eval_setup(cfg: TrainConfig, eval_split, tokenizer, fmt, labels, history, on_epoch):
    """Encoded dev set (sorted by length: less padding), its metric function and callbacks."""
    from transformers import EarlyStoppingCallback

    encoded = encode_split(eval_split, cfg.task, tokenizer, fmt, labels)
    encoded = encoded.select(np.argsort(encoded["length"], kind="stable"))
    # The owner column keeps topic windows tied to their article through the reordering.
    compute = metrics_fn(
        cfg.task, labels, encoded["owner"], label_ids(eval_split, labels), fmt.pooling
    )
    callbacks = [history_callback(history, on_epoch)]
    if cfg.training.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.training.early_stopping_patience))
    return encoded, compute, callbacks


def _fit(cfg: TrainConfig, data, labels: list[str], out_dir: Path, on_epoch) -> dict:
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, PrinterCallback, set_seed

    params = cfg.training
    set_seed(params.seed)  # the classification head is initialized randomly
    cuda = torch.cuda.is_available()
    fmt = InputFormat.from_config(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.name_or_path)
    model = load_classifier(cfg.model.name_or_path, labels, cfg.model.head)
    train_ds = encode_split(data[cfg.data.train_split], cfg.task, tokenizer, fmt, labels)
    eval_split = data[cfg.data.eval_split] if cfg.data.eval_split in data else None
    has_eval = eval_split is not None and len(eval_split) > 0
    history: list[dict] = []
    eval_ds, compute, callbacks = None, None, []
    if has_eval:
        eval_ds, compute, callbacks = _eval_setup(
            cfg, eval_split, tokenizer, fmt, labels, history, on_epoch
        )
    weights = class_weights(Counter(train_ds["labels"]), len(labels), params.class_weights)

    with tempfile.TemporaryDirectory(prefix="khabar-trainer-") as tmp:
        trainer = make_trainer_class()(
            model=model,
            args=training_arguments(params, tmp, has_eval, cuda),
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(
                tokenizer, pad_to_multiple_of=8 if cuda else None
            ),
            compute_metrics=compute,
            callbacks=callbacks,
            weights=weights,
            smoothing=params.label_smoothing,
        )
        # Epochs are reported through logging/on_epoch, not printed as raw dicts.
        trainer.remove_callback(PrinterCallback)
        started = time.perf_counter()
        trainer.train()  # load_best_model_at_end: trainer.model is the best epoch's
        train_seconds = time.perf_counter() - started
        save_model(trainer.model, tokenizer, out_dir / MODEL_DIR)

    return {
        "history": history,
        "train_seconds": train_seconds,
        "best_epoch": best_epoch(history, trainer.state.epoch),
        "n_train_inputs": len(train_ds),
        "n_eval_inputs": len(eval_ds) if eval_ds is not None else 0,
        "device": "cuda" if cuda else "cpu",
        "precision": resolve_precision(params.precision, cuda),
    }


def best_epoch(history: list[dict], last_epoch: float | None) -> int:
    """The first epoch with the best dev macro-F1 (the Trainer keeps the first of equal scores)."""
    if not history:
        return int(round(last_epoch or 0))
    best = max(h["val_macro_f1"] for h in history)
    return next(h["epoch"] for h in history if h["val_macro_f1"] == best)


def save_model(model, tokenizer, directory: Path) -> None:
    """``save_pretrained`` (transformers 5 writes safetensors only) + the tokenizer, on CPU."""
    directory.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if not any(directory.glob("*.safetensors")):
        raise RuntimeError(f"{directory}: save_pretrained wrote no safetensors file")
