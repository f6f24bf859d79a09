"""Text in, model rows out: the ``Article`` record, the versioned normalizer and furniture rules
(``rules/``), page-layout flags, and ``preprocess`` (the rows the dataset builder writes and the
tagger feeds its models); plus the shared tokenization behind the fast n-gram counts."""
