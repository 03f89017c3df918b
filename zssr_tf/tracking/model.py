"""A run's trained networks as an MLflow model: a `pyfunc` that maps an LR image to its SR image.

    model = mlflow.pyfunc.load_model("models:/bird_zssr/1")      # or runs:/..., models:/<model id>
    sr = model.predict(lr)          # lr: (h, w, C) float32 in [0, 1] -> sr: (H, W, C) float32 in [0, 1]

`predict` runs exactly the final test of `zssr predict` (`inference.trained.TrainedZSSR.super_resolve`:
tiled self-ensemble, back-projection, base changes and the re-centred kernels of the run), so the
two give the same pixels. The model's artifacts are the run's `config.yaml`, one
`step_<i>.keras` per scale step and, where a numeric kernel was given, `step_<i>_kernel.npy` and
`step_<i>_kernel_symmetries.npy` (the dihedral transforms its self-ensemble used). Its
signature is a float32 tensor (-1, -1, C) in and out; the input example is a small crop of the
run's input. Loading it needs this package installed (`pip install zssr-tf`) beside MLflow. Its
model config's `keras_backend` (and the `run.backend` of its config.yaml) names the Keras backend
it was trained on, which `model_code.py` chooses when it loads.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.models import Model, ModelSignature
from mlflow.types import Schema, TensorSpec

from zssr_tf.backend import LIBRARIES
from zssr_tf.config import Config, load_config
from zssr_tf.inference.trained import TrainedZSSR, step_files

MODEL_CODE = Path(__file__).with_name("model_code.py")  # MLflow's "models from code" entry point
MODEL_NAME = "zssr"  # the logged model's name within its run
EXAMPLE_SIDE = 16  # pixels: the input example is at most this many pixels on a side
# Distributions a serving environment needs (zssr-tf itself is installed from its source).
REQUIREMENTS = ("keras", "numpy", "scipy", "opencv-python-headless", "scikit-image", "PyYAML",
                "mlflow", "matplotlib")


class ZSSRModel(mlflow.pyfunc.PythonModel):
    """The pyfunc of a ZSSR run. After `load_context`: `trained`, the run's
    `inference.trained.TrainedZSSR` (its config, one network per scale step, kernels, symmetries)."""

    # MLflow would wrap `predict` for validation by type hints and warn that there are none; the
    # logged signature (float32 tensors of any height and width) is what MLflow validates inputs by.
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        """Load the config, networks and kernels from the model's artifacts."""
        with warnings.catch_warnings():  # the config's setting warnings were shown when it trained
            warnings.simplefilter("ignore", UserWarning)
            config = load_config(context.artifacts["config"])
        self.trained = TrainedZSSR.load(Path(context.artifacts["config"]).parent, config, context.artifacts)

    def predict(self, context, model_input, params=None):
        """The SR image (H, W, C) float32 in [0, 1] of `model_input`, an LR image (h, w, C) or
        (h, w) float32 in [0, 1] (a leading batch axis of 1 is accepted). Raises ZSSRError for
        another channel count than the networks were trained on."""
        image = np.asarray(model_input, dtype=np.float32)
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        return self.trained.super_resolve(image)


def log_zssr_model(run_id: str, experiment_id: str, folder: Path, config: Config, image: np.ndarray,
                   registered_model_name: str | None = None):
    """Log the networks the run `run_id` saved in `folder` (`config.yaml`, `model/step_<i>.keras`,
    kernels) as the MLflow model `zssr` of that run, in the run's experiment `experiment_id`, with
    a signature and an input example (a crop of at most EXAMPLE_SIDE pixels of `image`, (h, w, C)
    float32 in [0, 1]); register it as a new version of `registered_model_name` when given. Uses
    MLflow's current tracking URI (`store.use_tracking_uri`). Returns MLflow's `ModelInfo`."""
    artifacts = {"config": str(folder / "config.yaml")}
    for i in range(len(config.scale.scale_factors)):
        artifacts.update({path.stem: str(path) for path in step_files(folder / "model", i).values() if path.is_file()})
    channels = image.shape[2]
    tensor = TensorSpec(np.dtype(np.float32), (-1, -1, channels))
    signature = ModelSignature(inputs=Schema([tensor]), outputs=Schema([tensor]))
    example = np.ascontiguousarray(image[:EXAMPLE_SIDE, :EXAMPLE_SIDE], dtype=np.float32)
    # Model.log files a model it creates in the fluent API's current experiment (0, "Default", when
    # none is set), not in its run's: create it in the run's experiment, with the run's params as
    # Model.log gives them, and log into it.
    params = MlflowClient().get_run(run_id).data.params
    model = mlflow.initialize_logged_model(name=MODEL_NAME, source_run_id=run_id, experiment_id=experiment_id,
                                           params=params)
    # Model.log, unlike mlflow.pyfunc.log_model, takes the run explicitly: no fluent run is needed.
    return Model.log(artifact_path=None, name=MODEL_NAME, flavor=mlflow.pyfunc, run_id=run_id, model_id=model.model_id,
                     python_model=str(MODEL_CODE), artifacts=artifacts, signature=signature, input_example=example,
                     registered_model_name=registered_model_name, pip_requirements=_requirements(config.run.backend),
                     model_config={"keras_backend": config.run.backend})


def _requirements(keras_backend: str) -> list[str]:
    """The installed versions of the `keras_backend`'s library and REQUIREMENTS, pinned (a serving
    environment then matches this one)."""
    found = []
    for name in (LIBRARIES[keras_backend], *REQUIREMENTS):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return found
