"""The pre-flight checks the command line and sweeps run before any work (and before TensorFlow
loads): everything training needs of the inputs (`inputs.check_training_inputs`), plus what the
whole run needs: the LPIPS-like metric's files, kernel estimation's inputs and supported steps,
the output folder. Cheap (NumPy and h5py, no TensorFlow).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from zssr_tf.config import Config, relative_scale_factors
from zssr_tf.errors import ZSSRError, ZSSRWarning
from zssr_tf.gan.vgg import check_weights_file, lpips_heads_path
from zssr_tf.inputs import check_training_inputs
from zssr_tf.kernel_estimation.inputs import check_estimation_inputs


def blind_step_factors(config: Config) -> list[int]:
    """The factor (2 or 4) each scale step downscales its input by, relative to the step's input
    (after base changes). Blind SR estimates x2 kernels and derives x4 from them, so any other
    step raises ZSSRError, before any long work."""
    factors = []
    for sf, relative in zip(config.scale.scale_factors, relative_scale_factors(config.scale)):
        if relative not in ((2.0, 2.0), (4.0, 4.0)):
            raise ZSSRError(f"scale step {list(sf)} is x{relative[0]:g} x x{relative[1]:g} relative to its input; "
                            "an estimated kernel (kernel=estimate) supports x2 and x4 steps only, e.g. "
                            "scale_factors=[[2,2]] or [[2,2],[4,4]]")
        factors.append(int(relative[0]))
    return factors


def check_inputs(config: Config, image: np.ndarray, gt: np.ndarray | None = None,
                 kernels: Sequence[np.ndarray] | None = None, names: dict[str, str] | None = None):
    """Every check of a run's inputs: what training needs (`inputs.check_training_inputs`), the
    LPIPS-like metric's files (`check_lpips_files`) and, with kernel=estimate and no kernels yet
    (they are to be estimated), `blind_step_factors` and
    `kernel_estimation.inputs.check_estimation_inputs`. Returns (image, gt, kernels) as the run
    uses them; raises ZSSRError for the first input that fails, and warns (ZSSRWarning) for LPIPS
    files set on a run without `gt`. `names` maps "image" and "gt" to how messages name them
    (e.g. their file paths)."""
    image, gt, kernels = check_training_inputs(config, image, gt, kernels, names)
    check_lpips_files(config, gt is not None)
    if kernels is None and config.kernel_estimation.kernel == "estimate":
        blind_step_factors(config)
        check_estimation_inputs(image, config)
    return image, gt, kernels


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """The folder results go to, checked before any training (and without creating it, so a run
    that then fails its other checks leaves nothing behind): it must be a folder you can write
    to, or not exist yet below one. Returns the Path; raises ZSSRError naming the folder, why it
    cannot be used and the fix (`option`: how the user set it, e.g. "--out" or "run.output_dir")."""
    path = Path(path)
    fix = "pass --out DIR with a folder you can write to (it is created when missing)"
    if path.exists() and not path.is_dir():
        raise ZSSRError(f"{option} {path} is a file, not a folder: results go into a folder; {fix}")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ZSSRError(f"{option} {path}: the folder cannot be created ({existing} is a file); {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == path else f"cannot be created ({existing} is not writable)"
        raise ZSSRError(f"{option} {path}: the folder {what}; {fix}")
    return path


def check_lpips_files(config: Config, has_gt: bool) -> None:
    """The LPIPS-like metric's files, when loss.lpips_heads / loss.lpips_vgg_weights are set: with
    a ground truth, the heads file must exist (`gan.vgg.lpips_heads_path`) and the VGG16 weights
    fit (`gan.vgg.check_weights_file`: HDF5 structure only, no TensorFlow), else ZSSRError; without
    one the metric cannot be computed, so warn (ZSSRWarning; issued from this module, so Python's
    default filter shows it once however many times the run's inputs are checked)."""
    loss = config.loss
    if loss.lpips_heads is None and loss.lpips_vgg_weights is None:
        return
    if not has_gt:
        warnings.warn("loss.lpips_heads and loss.lpips_vgg_weights are set but the run has no ground truth, so the "
                      "LPIPS-like metric is not computed: pass the high-resolution image with --gt (a sweep's "
                      "ground_truth), or leave both unset (null)", ZSSRWarning, stacklevel=1)
        return
    if loss.lpips_heads is not None:
        lpips_heads_path(loss.lpips_heads)
    if loss.lpips_vgg_weights is not None:
        check_weights_file(loss.lpips_vgg_weights, "loss.lpips_vgg_weights")


