"""Zero-Shot Super-Resolution (Shocher, Cohen & Irani, CVPR 2018) in Keras 3 / TensorFlow 2."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zssr-tf")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
