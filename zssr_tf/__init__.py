"""Zero-Shot Super-Resolution (Shocher, Cohen & Irani, CVPR 2018) in Keras 3, on TensorFlow
(the default), JAX or PyTorch as `KERAS_BACKEND` chooses."""

import os
from importlib.metadata import PackageNotFoundError, version

# Before any module of the package imports Keras (and with KERAS_BACKEND=jax, JAX): JAX would
# otherwise take 75% of the GPU's memory at start. The user's own setting wins.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

try:
    __version__ = version("zssr-tf")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
