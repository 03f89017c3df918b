"""MLflow autologging (`mlflow.tensorflow.autolog()`, `mlflow.keras.autolog()`, `mlflow.autolog()`)
around ZSSR's training.

Autologging patches `keras.Model.fit`: each scale step's `fit` would open a run of its own beside
the one zssr logs, and its per-batch hooks and model logging are not made for thousands of
one-crop batches. `autolog_paused()` turns it off for the duration of the training, with one
warning, and back on afterwards; zssr's own run is then the only one.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

FLAVORS = ("tensorflow", "keras")  # the integrations that patch Keras' fit


def active_autolog() -> list[str]:
    """The MLflow autologging integrations that would patch Keras' fit now (empty when MLflow
    was never imported: then nothing can have turned autologging on)."""
    if "mlflow" not in sys.modules:
        return []
    from mlflow.utils.autologging_utils import AUTOLOGGING_INTEGRATIONS, autologging_is_disabled

    return [name for name in FLAVORS if name in AUTOLOGGING_INTEGRATIONS and not autologging_is_disabled(name)]


@contextmanager
def autolog_paused() -> Iterator[None]:
    """Inside the block, MLflow autologging is off (MLflow's own `disable_autologging`); it is
    restored on exit. Warns once (Python's default warning filter) when it was on."""
    active = active_autolog()
    if not active:
        yield
        return
    from mlflow.utils.autologging_utils import disable_autologging

    warnings.warn(f"MLflow autologging ({', '.join(f'mlflow.{name}.autolog()' for name in active)}) is paused "
                  "while ZSSR trains (every scale step's fit would open a run of its own; zssr_tf.tracking logs "
                  "ZSSR's run); it is back on afterwards", UserWarning, stacklevel=3)
    with disable_autologging():
        yield
