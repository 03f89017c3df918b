"""What an estimation needs of its image and settings, checked with NumPy alone before any work
(and before TensorFlow loads): `check_estimation_inputs`; and the image as the estimator sees
it, `prepare_image`.
"""

from __future__ import annotations

import numpy as np

from zssr_tf.config import Config
from zssr_tf.errors import ZSSRError
from zssr_tf.kernel_estimation.prior_file import read_prior_file

# The Keras backends kernel estimation runs on: not PyTorch, where Keras' spectral normalisation
# (in the discriminator) assigns its kernel in place inside the forward pass, which torch's
# autograd rejects when it differentiates through that pass.
BACKENDS = ("tensorflow", "jax")


def check_estimation_inputs(lr_image: np.ndarray, config: Config) -> None:
    """What an estimation of `lr_image` ((h, w[, C]) float in [0, 1]) needs, checked before any
    work: enough pixels for the crops after the border shave (`prepare_image`) and, for method
    fkp, a readable kernel-prior file (`prior_file.read_prior_file`) whose kernels leave the
    discriminator room in the generator's crops; and a `run.backend` it runs on (BACKENDS).
    Raises ZSSRError naming the fix."""
    c = config.kernel_estimation
    if config.run.backend not in BACKENDS:
        raise ZSSRError(f"kernel estimation runs on the {' and '.join(BACKENDS)} Keras backends, not on "
                        f"{config.run.backend}: use --backend (run.backend) {' or '.join(BACKENDS)}, or give the "
                        "kernel (--kernel FILE)")
    prepare_image(lr_image, c.estimation_shave, c.generator_crop_size)
    if c.method == "fkp":
        check_prior_fits(int(read_prior_file(c.prior_weights)[0]["kernel_size"]), c)


def check_prior_fits(size: int, c) -> None:
    """ZSSRError unless the discriminator's patches fit in the generator crops downscaled with the
    prior's `size` x `size` kernels (`c`: the KernelEstimationConfig)."""
    if (c.generator_crop_size - size) // 2 + 1 < c.patch_discriminator_kernel_size:
        smallest = size - 1 + 2 * c.patch_discriminator_kernel_size
        raise ZSSRError(f"kernel_estimation.generator_crop_size {c.generator_crop_size} is too small for the prior's "
                        f"{size}x{size} kernels and the discriminator's {c.patch_discriminator_kernel_size}-pixel "
                        f"patches: use at least {smallest + smallest % 2}")


def prepare_image(image: np.ndarray, shave: int, crop_size: int) -> np.ndarray:
    """The image as the estimator sees it: (h, w, C) float32 in [-1, 1], `shave` pixels dropped
    from every border (synthetic benchmarks have border artefacts), bottom/right cropped to even
    sizes. Raises ZSSRError when a side is then smaller than `crop_size`."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    h, w = image.shape[:2]
    shaved = image[shave:h - shave, shave:w - shave] if shave else image
    hs, ws = shaved.shape[:2]
    if min(hs, ws) < crop_size:
        fixes = ["a larger image", "the bicubic kernel (kernel=given)"]
        if shave and min(h, w) >= crop_size:
            fixes.append(f"estimation_shave=0 (it is {shave})")
        raise ZSSRError(f"the image is {w}x{h} pixels ({ws}x{hs} after shaving {shave} px per border); kernel "
                        f"estimation needs at least {crop_size} pixels per side for its crops: use "
                        f"{', '.join(fixes[:-1])} or {fixes[-1]}")
    shaved = shaved[:hs - hs % 2, :ws - ws % 2]
    return np.clip(shaved, 0, 1) * 2 - 1
