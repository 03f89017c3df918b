"""Checks of the inputs ZSSR trains on, made before the first network is built: the image, the
ground truth against the image and the scale steps, the kernels against the steps, what the
network and its losses need of them, and settings that are valid but unlikely to train. Cheap
(NumPy and h5py, no TensorFlow). `checks.check_inputs` adds what a whole run needs before it
starts (metric files, kernel estimation)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from zssr_tf.config import Config, format_scale, is_warm_start_scale
from zssr_tf.errors import ZSSRError
from zssr_tf.gan.vgg import check_weights_file
from zssr_tf.inference.plan import plan_scale_steps
from zssr_tf.kernels import check_kernel
from zssr_tf.warm_start import read_init_weights

MIN_INPUT_SIDE = 8
# Adam learning rates ZSSR is known to train with: the paper's 1e-3 and its drops to 1e-5 (below
# that the policy stops); beyond 1e-2 the loss of the 8-layer net diverges within a few
# iterations, below 1e-5 it hardly moves in max_iters iterations.
LEARNING_RATE_RANGE = (1e-5, 1e-2)
LEARNING_RATE_FAR_FACTOR = 10  # warn only when the rate is this far outside the range
# Float images this far outside [0, 1] are refused rather than clipped (a little overshoot, e.g.
# from a bicubic resize, is clipped): they are not [0, 1] images.
VALUE_RANGE_TOLERANCE = 0.01


def check_image(image: np.ndarray, scale_factors, name: str = "the image") -> np.ndarray:
    """The input as float32 (h, w, C) clipped to [0, 1]. Raises ZSSRError when it is not (h, w),
    (h, w, 1) or (h, w, 3), is not floats in [0, 1] (integer pixels such as cv2.imread's uint8, or
    values more than VALUE_RANGE_TOLERANCE outside the range), has NaN or infinite values, or is
    too small for the scale factors (each side at least 8 pixels and twice the largest factor)."""
    image = _gray_or_rgb(image, name, "h, w")
    needed = max(MIN_INPUT_SIDE, 2 * math.ceil(max(max(sf) for sf in scale_factors)))
    if min(image.shape[:2]) < needed:
        raise ZSSRError(f"{name} is {image.shape[1]}x{image.shape[0]} pixels, too small for scale "
                        f"{format_scale(scale_factors[-1])}: each side needs at least {needed} pixels")
    return np.clip(image.astype(np.float32), 0, 1)


def check_ground_truth(gt: np.ndarray, image_shape: tuple[int, int, int], config: Config,
                       name: str = "the ground truth") -> np.ndarray:
    """The ground truth as float32 (H, W, C). Raises ZSSRError when it is not floats in [0, 1] or
    has NaN or infinite values (as `check_image`), other channels than the input (shape (h, w, C)), or a size that differs from the final
    output's (the input's size times the scale) by more than the evaluation's shave of
    ceil(scale) pixels, the most that rounding to whole pixels explains."""
    gt = _gray_or_rgb(gt, name, "H, W")
    kinds = {1: "gray", 3: "RGB"}
    if gt.shape[2] != image_shape[2]:
        raise ZSSRError(f"{name} is {kinds[gt.shape[2]]} but the input is {kinds[image_shape[2]]}: "
                        "pass a ground truth with the input's channels (both gray or both RGB)")
    scale = config.scale.scale_factors[-1]
    height, width = plan_scale_steps(image_shape[:2], config)[-1].output_shape
    shave = int(math.ceil(max(scale)))
    if abs(gt.shape[0] - height) > shave or abs(gt.shape[1] - width) > shave:
        raise ZSSRError(f"{name} is {gt.shape[1]}x{gt.shape[0]} pixels, but the {format_scale(scale)} output of "
                        f"the {image_shape[1]}x{image_shape[0]} input is {width}x{height}: pass the high-resolution "
                        f"image the input was made from (about {width}x{height}), or set scale_factors to match it")
    return gt.astype(np.float32)


def check_kernels(kernels: Sequence[np.ndarray] | None, config: Config) -> list[np.ndarray] | None:
    """One valid numeric kernel per scale step (see `kernels.check_kernel`), or None. Raises
    ZSSRError naming the kernel for a wrong count, shape, NaN/inf values or a sum other than 1."""
    if kernels is None:
        return None
    steps = len(config.scale.scale_factors)
    if len(kernels) != steps:
        raise ZSSRError(f"{len(kernels)} kernel(s) given for {steps} scale step(s): "
                        "give one kernel per step in scale.scale_factors, or none")
    return [check_kernel(kernel, f"kernel {i + 1}") for i, kernel in enumerate(kernels)]


def check_training_inputs(config: Config, image: np.ndarray, gt: np.ndarray | None = None,
                          kernels: Sequence[np.ndarray] | None = None, names: dict[str, str] | None = None):
    """What `trainer.ZSSR.run` needs of its inputs: `check_image`, a model.init_weights file that
    exists and fits the network on the image's channels (`warm_start.read_init_weights`),
    `check_ground_truth` (when `gt` is given), the perceptual loss's VGG16 weights
    (`gan.vgg.check_weights_file`) when its weight is > 0, a numeric kernel where the alignment
    needs one (`direct`; not yet when kernel=estimate will estimate them), an image large enough
    for the discriminator when the adversarial loss is on, and `check_kernels`. Returns (image,
    gt, kernels) as the run uses them; raises ZSSRError for the first input that fails. `names`
    maps "image" and "gt" to how messages name them (e.g. their file paths)."""
    names = names or {}
    image = check_image(image, config.scale.scale_factors, names.get("image", "the image"))
    read_init_weights(config.model, image.shape[2])
    if gt is not None:
        gt = check_ground_truth(gt, image.shape, config, names.get("gt", "the ground truth"))
    if config.loss.perceptual_weight > 0:
        check_weights_file(config.loss.perceptual_weights, "loss.perceptual_weights")
    estimate = kernels is None and config.kernel_estimation.kernel == "estimate"
    alignment = config.scale.kernel_alignment
    if kernels is None and not estimate and alignment != "block_centre":
        raise ZSSRError(f"scale.kernel_alignment {alignment!r} applies to a numeric kernel and none was given: pass "
                        "one (zssr train --kernel FILE, a sweep's kernels: patterns, or ZSSR.run(kernels=...)), or "
                        f"use kernel_alignment: block_centre with downscale_method {config.scale.downscale_method!r} "
                        "(MATLAB's grid)")
    if config.loss.adversarial_weight > 0 and min(image.shape[:2]) < 64:
        raise ZSSRError(f"{names.get('image', 'the image')} is {image.shape[1]}x{image.shape[0]} pixels: the "
                        "discriminator (loss.adversarial_weight > 0) needs fathers of at least 64 pixels per side; "
                        "use a larger image or loss.adversarial_weight=0")
    return image, gt, check_kernels(kernels, config)


def setting_warnings(config: Config) -> list[str]:
    """Settings that are valid but unlikely to train as meant, each as one sentence naming the
    fix: a learning rate more than 10x outside LEARNING_RATE_RANGE; the shipped x2 warm start
    on a first scale step other than x2."""
    messages = []
    low, high = LEARNING_RATE_RANGE
    rate = config.train.learning_rate
    if rate > high * LEARNING_RATE_FAR_FACTOR or rate < low / LEARNING_RATE_FAR_FACTOR:
        messages.append(f"train.learning_rate={rate:g} is far outside the range ZSSR trains with ({low:g} to "
                        f"{high:g}; default 1e-3): training will likely {'diverge' if rate > high else 'not move'}")
    first_step = config.scale.scale_factors[0]
    if config.model.init_weights in ("warm_start", "warm_start_blind") and not is_warm_start_scale(first_step):
        messages.append(f"model.init_weights={config.model.init_weights}: the shipped network was trained for x2, "
                        "and the first scale "
                        f"step is {format_scale(first_step)}, where it is only an unmeasured starting point; "
                        "init_weights=auto or none starts from random weights there")
    return messages


def _gray_or_rgb(array, name: str, dims: str) -> np.ndarray:
    """`array` as (rows, cols, 1 or 3) with finite float values in [0, 1]; ZSSRError naming `name` otherwise."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ZSSRError(f"{name} must be ({dims}), ({dims}, 1) or ({dims}, 3), got shape {array.shape}")
    _check_finite(array, name)
    _check_unit_range(array, name)
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ZSSRError(f"{name} has {bad} NaN or infinite value(s): pass finite pixel values in [0, 1]")


def _check_unit_range(array: np.ndarray, name: str) -> None:
    fix = ("pass float32 values in [0, 1], e.g. image / 255 for 8-bit pixels (image / 65535 for 16-bit), or read "
           "the file with zssr_tf.image_io.read_image")
    if not np.issubdtype(array.dtype, np.floating):
        raise ZSSRError(f"{name} has {array.dtype} pixels, not floats in [0, 1]: {fix}")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low < -VALUE_RANGE_TOLERANCE or high > 1 + VALUE_RANGE_TOLERANCE:
        raise ZSSRError(f"{name} has values from {low:g} to {high:g}, outside [0, 1]: {fix}")
