"""The kernel-prior file (`prior.save_prior` writes it): where it is and whether it can be read,
checked with NumPy alone, so a run's inputs are checked before TensorFlow loads
(`inputs.check_estimation_inputs`). Building the flow from it is `prior.load_prior`'s job.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zssr_tf.errors import ZSSRError

PRIOR_X2 = Path(__file__).resolve().parent.parent / "weights" / "kernel_prior_x2.npz"
PRIOR_FIX = "give a file written by experiments/train_kernel_prior.py, or kernel_estimation.prior_weights=auto"
META_KEYS = ("kernel_size", "blocks", "hidden", "normalization", "variance_low", "variance_high")


def resolve_prior_path(prior_weights: str) -> Path:
    """"auto" -> the shipped x2 prior; anything else is a path."""
    return PRIOR_X2 if prior_weights == "auto" else Path(prior_weights)


def _plausible_sizes(meta: dict[str, float]) -> bool:
    """Whether a prior file's sizes can describe a flow: an odd kernel_size, blocks and hidden
    whole numbers in 1..64, positive finite normalization and variances."""
    if len(meta) != len(META_KEYS) or not all(math.isfinite(v) and v > 0 for v in meta.values()):
        return False
    sizes = [meta["kernel_size"], meta["blocks"], meta["hidden"]]
    return all(n == int(n) and n <= 64 for n in sizes) and int(sizes[0]) % 2 == 1


def read_prior_file(prior_weights: str | Path = "auto") -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Read and check the kernel-prior .npz `prior_weights` ("auto" = the shipped x2 prior) without
    building the flow: (sizes: kernel_size, blocks, hidden, normalization, variance_low,
    variance_high as floats; the flow's arrays v0, v1, ... in order). Raises ZSSRError naming the
    fix when the file is missing, unreadable, not a kernel-prior file, holds implausible sizes or
    NaN/inf weights (whether the arrays fit the sizes is `load_prior`'s check)."""
    path = resolve_prior_path(str(prior_weights))
    if not path.is_file():
        raise ZSSRError(f"kernel prior {path}: no such file; {PRIOR_FIX}")
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {name: data[name] for name in data.files}
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ZSSRError(f"kernel prior {path} cannot be read as a .npz file ({type(err).__name__}); {PRIOR_FIX}") from None
    if not all(key in stored for key in META_KEYS):
        raise ZSSRError(f"kernel prior {path} is not a kernel-prior file (it lacks {', '.join(META_KEYS)}); {PRIOR_FIX}")
    try:
        meta = {key: float(stored.pop(key)) for key in META_KEYS}
    except (TypeError, ValueError):  # not a number, or not one number
        meta = {}
    if not _plausible_sizes(meta):
        raise ZSSRError(f"kernel prior {path}: its sizes are not those of a kernel prior (an odd kernel_size, "
                        f"blocks and hidden from 1 to 64, a positive normalization and variances); {PRIOR_FIX}")
    if not all(np.all(np.isfinite(a)) for a in stored.values()):
        raise ZSSRError(f"kernel prior {path} has NaN or infinite weights; {PRIOR_FIX}")
    return meta, stored
