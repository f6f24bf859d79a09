"""How a row becomes transformer input: the ONE formatting used by training and serving.

``training/fit/transformer_trainer.py`` and ``inference/predictors/transformer.py`` both call these
functions, so a fine-tuned model can never see one input format at training time and another when it
tags (train/serve parity by construction; ``tests/fit/test_transformer.py`` checks it).

Per task (row keys as in ARCHITECTURE.md "Built datasets"):
- stance: a sentence pair ``(target, text)``, or ``(text, target)`` when ``pair_first == "text"``;
  ``pair_first == "both"`` gives two inputs per row, one in each order, pooled like topic windows
  (for claim pairs whose relation is symmetric: paraphrase, contradiction, unrelated). Training
  then sees every pair both ways, and prediction averages the two orders.
- boilerplate: a pair ``(paragraph text, "prev | next")`` (the neighbours as context).
- topic: the article text alone. An article longer than the window is split into overlapping token
  windows (``stride`` tokens shared, at most ``max_chunks``); each window is a model input owned by the
  article, and the article's logits are the pooled (mean or max) logits of its windows.
``text_prefix`` (e.g. e5's ``"query: "``) is prepended to the first segment of every input, every
topic window included.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

TASKS = ("boilerplate", "topic", "stance")
PAIR_ORDERS = ("target", "text", "both")
# Tokens kept free when cutting a window, so that re-tokenizing the window's text (a word cut at a
# window edge can split differently) still fits without truncation in almost every case.
WINDOW_SLACK = 2


@dataclass(frozen=True)
class InputFormat:
    """The input-shaping part of ``TransformerModel`` (training/config.py); same names and defaults."""

    max_length: int = 128
    stride: int = 32
    max_chunks: int = 8
    text_prefix: str = ""
    pair_first: str = "target"
    pooling: str = "mean"

    @classmethod
    def from_config(cls, model_cfg: dict[str, Any] | Any) -> InputFormat:
        """From ``bundle.json``'s ``config.model`` mapping or a ``TransformerModel`` object."""
        get = (
            model_cfg.get if isinstance(model_cfg, dict) else lambda k, d: getattr(model_cfg, k, d)
        )
        values = {f.name: get(f.name, f.default) for f in fields(cls)}
        fmt = cls(**values)
        if fmt.pair_first not in PAIR_ORDERS:
            raise ValueError(
                f"model.pair_first must be one of {PAIR_ORDERS}, got {fmt.pair_first!r}"
            )
        if fmt.pooling not in ("mean", "max"):
            raise ValueError(f"model.pooling must be 'mean' or 'max', got {fmt.pooling!r}")
        return fmt


Segments = tuple[str, str | None]


def boilerplate_context(prev_text: str, next_text: str) -> str:
    """Same string as ``ParagraphInput.context()``: the neighbours a pair model reads."""
    return f"{prev_text} | {next_text}"


def row_segments(task: str, row: dict, fmt: InputFormat) -> Segments:
    """(first segment, second segment or None) for one row, prefix included."""
    if task == "stance":
        if fmt.pair_first == "both":
            raise ValueError("pair_first 'both' makes two inputs per row: use build_model_inputs")
        target, text = row.get("target") or "", row.get("text") or ""
        first, second = (target, text) if fmt.pair_first == "target" else (text, target)
        return fmt.text_prefix + first, second
    if task == "boilerplate":
        context = boilerplate_context(row.get("prev_text") or "", row.get("next_text") or "")
        return fmt.text_prefix + (row.get("text") or ""), context
    if task == "topic":
        return fmt.text_prefix + (row.get("text") or ""), None
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def _window_budget(tokenizer, fmt: InputFormat) -> int:
    """Text tokens that fit in one window next to the special tokens and the prefix."""
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    # The prefix alone may tokenize one token longer than inside a text ("query: " ends in "▁"):
    # an upper bound is what is needed here.
    n_prefix = len(tokenizer(fmt.text_prefix, add_special_tokens=False)["input_ids"])
    budget = fmt.max_length - n_special - n_prefix - WINDOW_SLACK
    if budget < 4:
        raise ValueError(f"model.max_length {fmt.max_length} leaves no room for text")
    return budget


def split_windows(tokenizer, text: str, fmt: InputFormat) -> list[str]:
    """The text cut into overlapping token windows (returned as text), at most ``max_chunks``.

    A text that fits in one window is returned unchanged, so short texts are formatted exactly as
    they would be without chunking.
    """
    budget = _window_budget(tokenizer, fmt)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= budget:
        return [text]
    # Stride is the overlap between consecutive windows; keep the step at least half a window.
    step = budget - min(fmt.stride, budget // 2)
    windows = []
    for start in range(0, len(offsets), step):
        end = min(start + budget, len(offsets))
        windows.append(text[offsets[start][0] : offsets[end - 1][1]].strip())
        if end == len(offsets) or len(windows) == fmt.max_chunks:
            break
    return windows


def build_model_inputs(
    task: str, rows: list[dict], tokenizer, fmt: InputFormat
) -> tuple[list[Segments], list[int]]:
    """Model inputs for ``rows`` and, for each input, the index of the row it belongs to.

    Stance and boilerplate: one input per row (stance with ``pair_first == "both"``: two, one per
    order). Topic: one input per window of the row's text.
    """
    inputs: list[Segments] = []
    owners: list[int] = []
    both = task == "stance" and fmt.pair_first == "both"
    orders = [replace(fmt, pair_first="target"), replace(fmt, pair_first="text")] if both else []
    for i, row in enumerate(rows):
        if task == "topic":
            for window in split_windows(tokenizer, row.get("text") or "", fmt):
                inputs.append(row_segments(task, {"text": window}, fmt))
                owners.append(i)
        elif both:
            for order in orders:
                inputs.append(row_segments(task, row, order))
                owners.append(i)
        else:
            inputs.append(row_segments(task, row, fmt))
            owners.append(i)
    return inputs, owners


def encode_inputs(tokenizer, inputs: list[Segments], fmt: InputFormat) -> dict[str, list]:
    """Token ids (unpadded lists) for model inputs; pairs truncate the longer segment first."""
    firsts = [a for a, _ in inputs]
    seconds = [b for _, b in inputs]
    if not inputs or seconds[0] is None:
        enc = tokenizer(firsts, truncation=True, max_length=fmt.max_length)
    else:
        enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=fmt.max_length)
    # Only what the model consumes, in the tokenizer's declared order (token_type_ids included when
    # the tokenizer declares them: BERT pairs need segment ids, XLM-R style tokenizers have none).
    return {name: enc[name] for name in tokenizer.model_input_names if name in enc}


def pool_logits(
    logits: np.ndarray, owners: list[int] | np.ndarray, n_rows: int, how: str
) -> np.ndarray:
    """Per-row logits from per-input logits: mean or max over the inputs a row owns."""
    logits = np.asarray(logits, dtype=np.float32)
    owners = np.asarray(owners, dtype=np.int64)
    if len(owners) == n_rows and np.array_equal(owners, np.arange(n_rows)):
        return logits  # one input per row: nothing to pool
    out = np.zeros((n_rows, logits.shape[1]), dtype=np.float32)
    if how == "max":
        out[:] = -np.inf
        np.maximum.at(out, owners, logits)
    else:
        np.add.at(out, owners, logits)
        out /= np.maximum(np.bincount(owners, minlength=n_rows), 1)[:, None]
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
