"""Config-driven fitting (``khabar train``): ``train`` loads a built dataset, fits an sklearn model
(``sklearn_models``) or fine-tunes a transformer (``transformer_trainer``), writes the bundle,
scores it and tracks the run; ``pair_augment`` derives stance pairs, ``tiny_bert`` builds a tiny
offline BERT."""
