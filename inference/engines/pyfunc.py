"""An MLflow pyfunc wrapper around a khabar bundle.

Logged by ``training.tracking.mlflow_runs`` with ``artifacts={"bundle": <bundle dir>}``, so
``mlflow.pyfunc.load_model(uri).predict(rows_df)`` works wherever khabar is installed, and
``inference.predictors.bundle.load_bundle("models:/NAME@alias")`` finds the same bundle inside the
logged model.
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd

from inference.predictors.bundle import load_bundle


def _plain(value):
    # Parquet/pyfunc round-trips turn list cells (boilerplate ``features``) into ndarrays.
    return value.tolist() if isinstance(value, np.ndarray) else value


class KhabarBundleModel(mlflow.pyfunc.PythonModel):
    """``predict(rows)``: a DataFrame of predictor rows (``inference.text.preprocess`` *_row dicts
    as records) -> a DataFrame with ``label`` and ``score`` per row."""

    def load_context(self, context) -> None:
        self.bundle = load_bundle(context.artifacts["bundle"])

    # The pd.DataFrame hint tells MLflow 3 to pass rows through unvalidated (no signature to infer).
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        rows = [
            {key: _plain(value) for key, value in record.items()}
            for record in model_input.to_dict(orient="records")
        ]
        labels, scores = self.bundle.predict(rows)
        return pd.DataFrame({"label": labels, "score": np.asarray(scores, dtype=np.float64)})
