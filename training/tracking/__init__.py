"""Measuring and recording models: ``metrics`` (the one ``compute_metrics``), ``evaluate`` (scoring
a bundle on labeled data, ``khabar evaluate``), ``mlflow_runs`` (one MLflow run per training),
``registry`` (``--register``, ``khabar promote``) and ``runs`` (``khabar runs`` / ``runs diff``)."""
