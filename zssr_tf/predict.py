"""`zssr predict`: re-apply the networks a tracked run saved to a new image, without training."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.pipeline import super_resolve_with_models
from zssr_tf.tracking import check_reachable, resolve_tracking_uri


def predict_from_run(run_id: str, image_path: str | Path, out_dir: str | Path | None = None,
                     tracking_uri: str | None = None) -> Path:
    """Super-resolve `image_path` with the networks run `run_id` trained: download its
    `config.yaml` and `model/`, run every scale step's final test (self-ensemble and
    back-projection with the run's settings), no training. Writes `<stem>_zssr.png` to
    `out_dir` (default: the run's run.output_dir) and returns its path."""
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
        steps = range(len(config.scale.scale_factors))
        missing = [i for i in steps if not (model_dir / f"step_{i}.keras").is_file()]
        if missing:
            raise ZSSRError(f"run {run_id} has no trained network for scale step(s) {missing} "
                            "(it ended before them); re-apply a finished run")
        models = [keras.saving.load_model(model_dir / f"step_{i}.keras", compile=False) for i in steps]
        kernels = [np.load(p) if (p := model_dir / f"step_{i}_kernel.npy").is_file() else None for i in steps]
        return super_resolve_with_models(config, models, kernels, image, alpha, info,
                                         Path(out_dir or config.run.output_dir))
