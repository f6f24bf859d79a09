"""The MLflow model registry: ``--register NAME`` (alias ``candidate``) and ``khabar promote``.

``promote`` moves alias ``champion`` to the ``candidate`` version only when the candidate beats the
champion on the same test data. By default it compares the ``test_macro_f1`` both training runs
logged, and only if both runs were scored on the same test-split content hash; with
``test_data_ref`` (a labeled file or a built dataset folder) it re-scores both models on that data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from training.tracking.mlflow_runs import TAG_TEST_HASH, resolve_tracking_uri, use_tracking_uri

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"
SCORE = "test_macro_f1"


class PromoteError(ValueError):
    """Promotion cannot be decided (no candidate, incomparable test data, missing scores)."""


def register_model(model_uri: str, name: str, alias: str = CANDIDATE) -> dict[str, str]:
    """Register ``model_uri`` under ``name`` and point ``alias`` at the new version."""
    import mlflow
    from mlflow import MlflowClient

    version = mlflow.register_model(model_uri, name)
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    log.info("registered %s version %s (alias %s)", name, version.version, alias)
    return {
        "name": name,
        "version": str(version.version),
        "alias": alias,
        "uri": f"models:/{name}@{alias}",
    }


def _alias_version(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _describe(client, version) -> dict[str, Any]:
    run = client.get_run(version.run_id) if version.run_id else None
    metrics = run.data.metrics if run else {}
    tags = run.data.tags if run else {}
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        SCORE: metrics.get(SCORE),
        "test_data_hash": tags.get(TAG_TEST_HASH),
    }


def _rescore(name: str, info: dict, test_data_ref: str) -> float:
    """``test_macro_f1`` of version ``info`` re-computed on ``test_data_ref``."""
    from inference.predictors.bundle import load_bundle

    bundle = load_bundle(f"models:/{name}/{info['version']}")
    path = Path(test_data_ref)
    if (path / "dataset_dict.json").is_file():
        return _score_dataset(bundle, path)
    from training.tracking.evaluate import evaluate_bundle

    return evaluate_bundle(bundle, test_data_ref, bundle.task)["macro_f1"]


def _score_dataset(bundle, path: Path) -> float:
    """Score on the ``test`` split of a built dataset folder."""
    import datasets

    from training.tracking.evaluate import gold_labels, predict_labels, split_rows
    from training.tracking.metrics import compute_metrics

    split = datasets.load_from_disk(str(path))["test"]
    labels = list(split.features["label"].names)
    gold = gold_labels(split, labels)
    predicted = predict_labels(bundle, split_rows(split, bundle.task))
    return compute_metrics(bundle.task, gold, predicted, bundle.labels)["macro_f1"]


def _logged_scores(candidate: dict, champion: dict) -> None:
    if candidate[SCORE] is None or champion[SCORE] is None:
        raise PromoteError(
            f"{SCORE} missing on the candidate or champion run; pass test data to re-score both"
        )
    if not candidate["test_data_hash"] or candidate["test_data_hash"] != champion["test_data_hash"]:
        raise PromoteError(
            "candidate and champion were evaluated on different test data "
            f"(hashes {candidate['test_data_hash']} vs {champion['test_data_hash']}); "
            "pass test data to re-score both on the same split"
        )


def promote(
    name: str, test_data_ref: str | None = None, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Move ``champion`` to the ``candidate`` version of ``name`` if it scores strictly higher.

    Returns ``{"name", "promoted", "reason", "basis", "candidate": {...}, "champion": {...}|None}``
    where each side carries ``version``, ``run_id`` and ``test_macro_f1``.
    """
    from mlflow import MlflowClient

    uri = tracking_uri or resolve_tracking_uri()
    if tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(uri)
    else:
        use_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    found = _alias_version(client, name, CANDIDATE)
    if found is None:
        raise PromoteError(f"model {name!r} has no {CANDIDATE!r} version (train with --register)")
    candidate = _describe(client, found)
    current = _alias_version(client, name, CHAMPION)
    result: dict[str, Any] = {
        "name": name,
        "candidate": candidate,
        "champion": None,
        "basis": "logged" if test_data_ref is None else str(test_data_ref),
    }
    if current is None:
        reason = "no champion yet"
    else:
        champion = result["champion"] = _describe(client, current)
        if champion["version"] == candidate["version"]:
            return {**result, "promoted": False, "reason": "candidate is already the champion"}
        if test_data_ref is None:
            _logged_scores(candidate, champion)
        else:
            candidate[SCORE] = _rescore(name, candidate, test_data_ref)
            champion[SCORE] = _rescore(name, champion, test_data_ref)
        if candidate[SCORE] <= champion[SCORE]:
            reason = f"candidate {SCORE} {candidate[SCORE]:.4f} <= champion {champion[SCORE]:.4f}"
            log.info("%s: not promoted: %s", name, reason)
            return {**result, "promoted": False, "reason": reason}
        reason = f"candidate {SCORE} {candidate[SCORE]:.4f} > champion {champion[SCORE]:.4f}"
    client.set_registered_model_alias(name, CHAMPION, candidate["version"])
    log.info("%s: version %s is now %s (%s)", name, candidate["version"], CHAMPION, reason)
    return {**result, "promoted": True, "reason": reason}
