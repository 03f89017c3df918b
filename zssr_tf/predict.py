"""`zssr predict`: re-apply the networks a tracked run trained to a new image, without training.

Two sources, the same final test (`inference.trained.TrainedZSSR.super_resolve`), so the same pixels:
- a run id: the run's `config.yaml` and `model/step_<i>.keras` artifacts (also for runs that
  logged no MLflow model);
- an MLflow model URI (`models:/NAME/VERSION` of a registered model, `models:/<model id>`,
  `runs:/<run id>/zssr`): the pyfunc model `zssr train` logs (`tracking.model`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.inference.trained import TrainedZSSR
from zssr_tf.pipeline import super_resolve_with_trained
from zssr_tf.tracking.model import ZSSRModel
from zssr_tf.tracking.store import check_reachable, resolve_tracking_uri, use_tracking_uri


def predict_from_run(run_id: str, image_path: str | Path, out_dir: str | Path | None = None,
                     tracking_uri: str | None = None) -> Path:
    """Super-resolve `image_path` with the networks run `run_id` trained: download its
    `config.yaml` and `model/`, run every scale step's final test (self-ensemble and
    back-projection with the run's settings), no training. Writes `<stem>_zssr.png` to
    `out_dir` (default: the run's run.output_dir) and returns its path. Raises ZSSRError for an
    unknown run, a run without these artifacts or an unreadable image."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    image, alpha, info = read_image(image_path)
    try:
        MlflowClient(uri).get_run(run_id)
    except Exception as err:
        raise ZSSRError(f"run {run_id!r} not found in {uri} ({type(err).__name__}); pass --tracking-uri "
                        "or set MLFLOW_TRACKING_URI to the store it was logged to") from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            config = load_config(download_artifacts(run_id=run_id, artifact_path="config.yaml", dst_path=tmp,
                                                    tracking_uri=uri))
            model_dir = Path(download_artifacts(run_id=run_id, artifact_path="model", dst_path=tmp,
                                                tracking_uri=uri))
        except ZSSRError:
            raise
        except Exception as err:
            raise ZSSRError(f"run {run_id} in {uri} has no config.yaml or model/ artifacts ({type(err).__name__}); "
                            "was it logged by zssr train and did it finish?") from None
        try:
            trained = TrainedZSSR.load(model_dir, config)
        except ZSSRError as err:
            raise ZSSRError(f"run {run_id}: {err}") from None
        return super_resolve_with_trained(trained, image, alpha, info, Path(out_dir or config.run.output_dir))


def predict_from_model(model_uri: str, image_path: str | Path, out_dir: str | Path | None = None,
                       tracking_uri: str | None = None) -> Path:
    """Super-resolve `image_path` with the MLflow model `model_uri` that `zssr train` logged
    (e.g. `models:/bird_zssr/1`), exactly as its pyfunc `predict` does, and write
    `<stem>_zssr.png` with the input's bit depth and alpha to `out_dir` (default: the model's
    run.output_dir). Returns its path. Raises ZSSRError for a model that cannot be loaded or
    was not logged by zssr."""
    import mlflow.pyfunc

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    image, alpha, info = read_image(image_path)
    try:
        with use_tracking_uri(uri):
            loaded = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:
        raise ZSSRError(f"cannot load the MLflow model {model_uri!r} from {uri} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); check the name and version "
                        "(mlflow models are listed in the UI's Models page) or pass --tracking-uri") from None
    model = loaded.unwrap_python_model()
    if not isinstance(model, ZSSRModel):
        raise ZSSRError(f"{model_uri} is not a model logged by zssr train (it is a {type(model).__name__})")
    return super_resolve_with_trained(model.trained, image, alpha, info,
                                      Path(out_dir or model.trained.config.run.output_dir))
