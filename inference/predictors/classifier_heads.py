"""Sequence classifiers for fine-tuning and serving: the stock HF head, or mean pooling.

``AutoModelForSequenceClassification`` classifies from the first token (BERT: ``[CLS]`` through the
pooler). Sentence encoders such as e5 were pretrained to put the meaning of a text in the *mean* of
their token states and ship no trained pooler (``../shared/models/multilingual-e5-small-ar`` has an
identity placeholder), so a first-token head starts from a representation the encoder never
trained, and on small data (ANS: 2.3k pairs) it spends epochs learning it. The ``mean`` head
classifies the attention-masked mean of the last hidden states, the representation e5 was trained
to produce.

The head is recorded in the saved HF config (``khabar_head``), so a model folder alone says how to
load it: ``load_sequence_classifier`` is the one loader used by the trainer, the torch predictor and
the ONNX export. Weights stay safetensors; the encoder keeps its own parameter names (``bert.*``),
so ``from_pretrained`` loads a plain pretrained encoder into it like the stock class does.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

HEADS = ("cls", "mean")
HEAD_KEY = "khabar_head"


def head_of(config: Any) -> str:
    """The head a saved config asks for (``cls`` when the key is absent: stock HF models)."""
    head = getattr(config, HEAD_KEY, "cls") or "cls"
    if head not in HEADS:
        raise ValueError(f"config {HEAD_KEY}={head!r}: expected one of {HEADS}")
    return head


@cache
def mean_pool_class(encoder_cls: type) -> type:
    """A ``<Encoder>PreTrainedModel`` subclass: encoder + dropout + linear head on mean pooling.

    Subclassing the encoder family's own PreTrainedModel keeps its ``base_model_prefix`` and weight
    initialization, so pretrained encoder weights load by name and only the head is new.
    """
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    family = encoder_cls.__mro__[1]

    class MeanPoolForSequenceClassification(family):
        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            encoder = encoder_cls(config, add_pooling_layer=False)
            setattr(self, self.base_model_prefix, encoder)
            dropout = getattr(config, "classifier_dropout", None)
            if dropout is None:
                dropout = getattr(config, "hidden_dropout_prob", 0.1)
            self.dropout = torch.nn.Dropout(dropout)
            self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                    **kwargs):  # fmt: skip
            encoder = getattr(self, self.base_model_prefix)
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
            if attention_mask is None:
                attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = self.classifier(self.dropout(pooled))
            loss = None
            if labels is not None:
                loss = torch.nn.functional.cross_entropy(logits.float(), labels.view(-1))
            return SequenceClassifierOutput(loss=loss, logits=logits)

    MeanPoolForSequenceClassification.__name__ = f"MeanPool{encoder_cls.__name__}Classifier"
    return MeanPoolForSequenceClassification


def _encoder_class(config: Any) -> type:
    from transformers import AutoModel

    try:
        encoder_cls = AutoModel._model_mapping[type(config)]
    except KeyError:
        raise ValueError(f"no encoder class for model type {config.model_type!r}") from None
    if "add_pooling_layer" not in encoder_cls.__init__.__code__.co_varnames:
        raise ValueError(
            f"model type {config.model_type!r} ({encoder_cls.__name__}): the mean head supports "
            "BERT-style encoders (BERT, RoBERTa/XLM-R, ELECTRA-like with add_pooling_layer)"
        )
    return encoder_cls


def load_sequence_classifier(name_or_path: str | Path, head: str | None = None, **kwargs):
    """``from_pretrained`` a sequence classifier with the stock (``cls``) or ``mean`` head.

    ``head=None`` reads it from the checkpoint's config (a fine-tuned model); training passes it
    explicitly, and it is stored in the config so serving and export load the same model.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    head = head_of(config) if head is None else head
    if head not in HEADS:
        raise ValueError(f"head {head!r}: expected one of {HEADS}")
    setattr(config, HEAD_KEY, head)
    if head == "cls":
        return AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config)
    model_cls = mean_pool_class(_encoder_class(config))
    return model_cls.from_pretrained(name_or_path, config=config)
