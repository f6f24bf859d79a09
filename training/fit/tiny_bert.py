"""A tiny BERT built locally (no hub): a WordPiece tokenizer trained on the given texts + a small
``BertConfig``, saved with ``save_pretrained`` so that ``from_pretrained(dir)`` loads it offline.

Tests fine-tune and serve it through the real loading code
(``AutoModelForSequenceClassification.from_pretrained`` / ``AutoTokenizer.from_pretrained``).
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# transformers 5 keeps token_type_ids for a tokenizers-built tokenizer only when it declares them;
# BERT pair inputs need them (segment A / segment B).
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
    # Overfitting a dozen examples reliably: with BERT's default init (0.02) a 32-wide model sits
    # on a loss plateau for ~100 steps; a wider init and no dropout get there in a few epochs.
    initializer_range=0.2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def build_tokenizer(texts: list[str], vocab_size: int = 500):
    """A BERT-style WordPiece ``PreTrainedTokenizerFast`` trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # No lowercasing/accent stripping: Arabic has no case, and stripping would drop diacritics.
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        texts, WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=MODEL_INPUT_NAMES,
        model_max_length=TINY["max_position_embeddings"],
    )


def build_tiny_bert(
    dir: Path, texts: list[str], labels: list[str] | None = None, seed: int = 0
) -> Path:
    """Save a tiny tokenizer + BERT under ``dir``; a classifier with ``labels`` when given, else a
    bare encoder (like a hub checkpoint, whose head the trainer initializes). Returns ``dir``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    dir = Path(dir)
    tokenizer = build_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **TINY)
    torch.manual_seed(seed)
    if labels:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {lab: i for i, lab in enumerate(labels)}
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(config)
    model.save_pretrained(dir)  # safetensors (transformers 5 writes nothing else)
    tokenizer.save_pretrained(dir)
    return dir
