"""The whole tagger (every task's bundle + the tagger config) as one MLflow pyfunc model.

``log_tagger_model(refs)`` logs it; then ``mlflow models serve -m URI --env-manager local`` answers
``POST /invocations`` with ``{"dataframe_records": [article, ...]}`` by
``{"predictions": [output record, ...]}`` -- the records of ``khabar tag`` (DESIGN.md "Output"),
one per input article, in order, bad articles as error records.

The model is logged "from code" (``mlflow.models.set_model``), like the per-bundle models of
``training.tracking.mlflow_runs``: loading it never unpickles a Python object, and bundles load
through ``load_bundle`` (skops allow-list, normalizer version check). Each bundle is an artifact
named after its task; ``model_config`` carries the task order and the ``TaggerConfig`` (so it can be
overridden at load time: ``mlflow.pyfunc.load_model(uri, model_config={"tagger": {...}})``).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from inference.engines.items import record_item
from inference.engines.runner import tag_items
from inference.errors import BundleError
from inference.predictors.bundle import library_versions, load_bundle
from inference.tagger import Tagger, TaggerConfig, load_tagger

MODEL_NAME = "tagger"
DEFAULT_EXPERIMENT = "khabar-tagger"
REQUEST = "request"  # the "file" of a served record: errors read "request:3: ..."

# Every input field article_from_record reads (DESIGN.md "Input" + news-please / trafilatura
# aliases). All optional and untyped in the signature: MLflow drops columns the signature does not
# name, and a record may carry its body as ``text`` or ``paragraphs`` (and ``id`` as int or str).
ARTICLE_FIELDS = (
    "id", "url", "source_url", "source", "source_domain", "hostname", "source-hostname", "sitename",
    "published", "date_publish", "date", "time", "date_extracted", "pubdate", "section",
    "categories", "category", "title", "paragraphs", "text", "maintext", "raw_text", "content",
    "claim", "label", "labels", "split", "kinds", "spans", "author",
)  # fmt: skip

INPUT_EXAMPLE = [
    {
        "id": "example-1",
        "title": "الحكومة تعلن خطة جديدة لدعم المزارعين",
        "text": "أعلنت وزارة الزراعة اليوم عن خطة لدعم المزارعين في المحافظات.\n"
        "وقال الوزير إن الخطة تشمل قروضا ميسرة وبذورا محسنة.\n"
        "المصدر: وكالة الأنباء",
    }
]

# Logged as the model's code: MLflow runs this file to build the model, nothing is unpickled.
_MODEL_CODE = """\
import mlflow
from inference.engines.serving import KhabarTaggerModel

mlflow.models.set_model(KhabarTaggerModel())
"""


# ---------------------------------------------------------------- request -> records
def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _plain(key: str, value: Any) -> Any:
    # DataFrames hand back numpy arrays for list cells and numpy scalars for numbers.
    if isinstance(value, np.ndarray):
        return [None if _is_missing(v) else v for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if key == "id" and isinstance(value, float) and value.is_integer():
        return int(value)  # an int id column with gaps became float64 in pandas
    return value


def input_records(model_input: Any) -> list[dict]:
    """A DataFrame, a list of dicts or one dict -> plain article records (missing cells dropped)."""
    if isinstance(model_input, pd.DataFrame):
        raw = model_input.to_dict(orient="records")
    elif isinstance(model_input, dict):
        raw = [model_input]
    elif isinstance(model_input, list):
        raw = model_input
    else:
        raise TypeError(
            f"expected a DataFrame or a list of article records, got {type(model_input).__name__}"
        )
    out = []
    for record in raw:
        if not isinstance(record, dict):
            out.append(record)  # article_from_record turns it into an error record
            continue
        out.append({str(k): _plain(str(k), v) for k, v in record.items() if not _is_missing(v)})
    return out


def tag_records(tagger: Tagger, records: list) -> list[dict]:
    """One output record per input record, in order (``khabar tag`` output format); whatever
    goes wrong with one record (a wrong type, a lone surrogate...) is its error record only."""
    items = [record_item(rec, REQUEST, i) for i, rec in enumerate(records, start=1)]
    return tag_items(tagger, items)


# ---------------------------------------------------------------- the pyfunc model
class KhabarTaggerModel(mlflow.pyfunc.PythonModel):
    """``predict(articles)`` -> a list of ``khabar tag`` output records."""

    def load_context(self, context) -> None:
        config = context.model_config or {}
        tasks = config.get("tasks") or list(context.artifacts)
        bundles = {}
        for task in tasks:
            bundle = load_bundle(context.artifacts[task])
            if bundle.task != task:
                raise BundleError(f"artifact {task!r} holds a {bundle.task!r} bundle")
            bundles[task] = bundle
        self.tagger = Tagger(bundles, TaggerConfig.model_validate(config.get("tagger") or {}))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[dict]:
        return tag_records(self.tagger, input_records(model_input))


# ---------------------------------------------------------------- logging
def input_signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), name, required=False) for name in ARTICLE_FIELDS])
    )


def _pip_requirements(tagger: Tagger) -> list[str]:
    # Explicit, so MLflow does not spawn a subprocess to infer them from a loaded model.
    dists = ["khabar", "scikit-learn", "skops", "mlflow"]
    if any(b.meta.get("kind") == "transformer" for b in tagger.bundles.values()):
        dists += ["torch", "transformers", "tokenizers", "onnxruntime"]
    versions = library_versions()
    return [f"{d}=={versions[d]}" for d in dists if d in versions] or ["khabar"]


def _experiment_id(name: str, artifact_location: str | None) -> str:
    """Experiment ``name``, created with an explicit artifact location (next to a sqlite store)."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    uri = mlflow.get_tracking_uri()
    if artifact_location is None and uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :]).resolve()
        artifact_location = (db.parent / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


@contextmanager
def _run(experiment: str, artifact_location: str | None) -> Iterator[None]:
    """The active run if there is one, else a new run (marked FAILED if logging fails)."""
    if mlflow.active_run() is not None:
        yield
        return
    with mlflow.start_run(
        experiment_id=_experiment_id(experiment, artifact_location), run_name="tagger"
    ):
        yield


def log_tagger_model(
    model_refs: list[str],
    config: str | Path | TaggerConfig | None = None,
    registered_name: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
) -> str:
    """Log the tagger (bundles ``model_refs`` + ``config``) as a pyfunc model; return its URI.

    Logs into the active MLflow run if there is one, else into a new run of ``experiment``.
    ``registered_name`` also registers it; the URI returned is then ``models:/NAME/VERSION``.
    """
    tagger = load_tagger(model_refs, config)  # validates refs, resolves MLflow URIs to folders
    artifacts = {task: str(bundle.path) for task, bundle in tagger.bundles.items()}
    model_config = {"tasks": list(artifacts), "tagger": tagger.config.model_dump(mode="json")}
    with tempfile.TemporaryDirectory() as tmp, _run(experiment, artifact_location):
        code = Path(tmp) / "khabar_tagger_model.py"
        code.write_text(_MODEL_CODE, "utf-8")
        mlflow.set_tags({f"khabar.model.{task}": v for task, v in tagger.models.items()})
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(code),
            artifacts=artifacts,
            model_config=model_config,
            signature=input_signature(),
            input_example=INPUT_EXAMPLE,
            pip_requirements=_pip_requirements(tagger),
            registered_model_name=registered_name,
        )
    if registered_name and info.registered_model_version is not None:
        return f"models:/{registered_name}/{info.registered_model_version}"
    return info.model_uri
