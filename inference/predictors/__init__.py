"""Model bundles and what loads them: ``bundle`` (``bundle.json``, ``load_bundle``), the sklearn
predictor (``sklearn``, ``skops_io``) and the transformer predictor (``transformer``,
``transformer_inputs``, ``classifier_heads``, ``onnx_export``). Reads rows made by
``inference.text``."""
