"""The code MLflow runs to build the pyfunc of a logged ZSSR model (MLflow's "models from code":
the model is this file plus its artifacts, no pickled Python object). See `tracking.model`.

The model loads on the Keras backend it was trained on (its model config's `keras_backend`),
chosen here before Keras loads; in a process where Keras already runs another backend it loads
on that one (the networks are backend-neutral `.keras` files), with a warning.
"""

import sys
import warnings

import mlflow
from mlflow.models import ModelConfig

from zssr_tf.backend import select_backend


def _recorded_backend() -> str | None:
    """The Keras backend the model was logged from; None for a model logged without one."""
    try:
        return ModelConfig().get("keras_backend")
    except (FileNotFoundError, KeyError):
        return None


_backend = _recorded_backend()
if _backend is not None:
    if "keras" not in sys.modules:
        select_backend(_backend)
    elif sys.modules["keras"].config.backend() != _backend:
        warnings.warn(f"this ZSSR model was trained on the {_backend} Keras backend and runs on "
                      f"{sys.modules['keras'].config.backend()}, which Keras already runs in this process")

from zssr_tf.tracking.model import ZSSRModel  # noqa: E402 (after the backend is chosen)

mlflow.models.set_model(ZSSRModel())
