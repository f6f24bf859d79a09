"""The dataset builder (``khabar build-dataset``), in pipeline order:

1. ``records`` reads the inputs as raw lines; ``scan`` (in the ``workers`` processes) parses them
   and computes MinHash fingerprints (``minhash``) and weak-label observation keys (``weak_stats``,
   ``line_keys``, ``fused_keys``).
2. ``plan`` (in the parent) drops exact and near duplicates (``dedup``), counts the observations
   and assigns ``splits``.
3. ``rows`` turns each kept article into example rows (``inference.text.preprocess``; weak labels
   from ``weak_labels`` / ``label_inputs``, topic and stance labels from ``examples``) encoded as
   Arrow batches (``row_parts``).
4. ``writer`` saves each output as a ``DatasetDict``; ``manifest`` describes them; ``build`` runs
   the whole and publishes the outputs together once the build succeeded.
"""
