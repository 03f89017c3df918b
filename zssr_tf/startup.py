"""Starting the Keras backend's library: TensorFlow quietly (its C++ log, the CUDA stub's lines on
a machine without a GPU, and its Python loggers, unless the user asks for them: `zssr --verbose`,
TF_CPP_MIN_LOG_LEVEL); JAX and PyTorch as they are. Used by the command line and by the sweep's
worker processes."""

from __future__ import annotations

import os
import sys

from zssr_tf.backend import import_library


def quiet_tensorflow(verbose: bool) -> bool:
    """Before TensorFlow loads: hide its C++ log (oneDNN notes, CPU features, the `E0000 ...
    cuInit` error of a machine without a GPU; TF_CPP_MIN_LOG_LEVEL=3 keeps fatal errors only),
    its Python loggers below ERROR, MLflow's below WARNING and MLflow's download bars, unless `verbose` or the user set
    TF_CPP_MIN_LOG_LEVEL. Returns True when quiet (then `load_tensorflow` also hides the lines
    TensorFlow's libraries print while loading)."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import logging

    for name in ("absl", "tensorflow", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # also when MLflow is already loaded
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when MLflow loads
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return True


def load_tensorflow(quiet: bool) -> None:
    """Import TensorFlow; when `quiet`, with the process's stderr (file descriptor 2) sent to
    /dev/null meanwhile: its CUDA stub logs "Could not find cuda drivers" through absl before
    TF_CPP_MIN_LOG_LEVEL applies. A failed import still raises (its traceback prints after)."""
    if not quiet or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_backend(name: str, quiet: bool) -> None:
    """Import the library of Keras backend `name` (`backend.BACKENDS`), which `select_backend`
    chose: TensorFlow through `load_tensorflow(quiet)`, the others plainly. Raises ZSSRError
    naming the package to install when it is missing (`backend.import_library`)."""
    if name == "tensorflow":
        try:
            load_tensorflow(quiet)
            return
        except ImportError:
            pass  # import_library raises the error that names the package
    import_library(name)
