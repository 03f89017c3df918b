"""Degraded benchmark sets as public benchmarks make them: blur with a kernel, subsample, add noise.

`degrade` is the reference "blur + subsample" (scipy.ndimage.correlate, then every s-th pixel
from (0, 0)) under either alignment convention (`kernels.align_kernel`): the ZSSR pipeline's sons
must match it (tests/test_degradation.py). `random_anisotropic_kernel` draws kernels the way
DIV2KRK was made (Bell-Kligler, Shocher & Irani, NeurIPS 2019, §5, and the kernel generator its
code builds on): 11x11 anisotropic Gaussians whose covariance has eigenvalues (variances)
~ U(0.6, 5) px^2, i.e. axis stds sqrt(.) in [0.77, 2.24] px, a random angle, uniform
multiplicative noise of up to 25% per tap, normalised to sum 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from zssr_tf.kernels import align_kernel, check_direct_scale, gaussian_kernel


def degrade(hr_image: np.ndarray, kernel: np.ndarray, scale_factor, alignment: str = "block_centre",
            noise_std: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Blur `hr_image` with `kernel` and keep every s-th pixel from (0, 0): the LR image.

    `hr_image`: (H, W) or (H, W, C) float in [0, 1]. `kernel`: a raw 2-D kernel summing to 1
    (correlation convention, as scipy.ndimage.correlate, DIV2KRK's and MZSR's .mat files); it is
    aligned for `alignment` ("block_centre": LR pixel i at the centre of HR block i; "direct": on
    HR pixel s*i) with `kernels.align_kernel`. `scale_factor`: whole number s or (sy, sx).
    Borders are reflected (scipy's "reflect", as the ZSSR sons). `noise_std` > 0 adds Gaussian
    noise of that std (needs `rng`). Returns float32 (ceil(H/sy), ceil(W/sx)[, C]) clipped to [0, 1].
    Raises ZSSRError for fractional factors.
    """
    sy, sx = check_direct_scale(scale_factor)
    aligned = align_kernel(kernel, (sy, sx), alignment)
    image = np.asarray(hr_image, dtype=np.float64)
    planes = image[..., None] if image.ndim == 2 else image
    blurred = np.stack([ndimage.correlate(planes[..., c], aligned, mode="reflect")
                        for c in range(planes.shape[2])], axis=-1)
    lr_image = blurred[::sy, ::sx]
    if image.ndim == 2:
        lr_image = lr_image[..., 0]
    if noise_std > 0:
        if rng is None:
            raise ValueError("noise_std > 0 needs an rng (np.random.default_rng(seed))")
        lr_image = lr_image + rng.normal(scale=noise_std, size=lr_image.shape)
    return np.clip(lr_image, 0, 1).astype(np.float32)


def random_anisotropic_kernel(rng: np.random.Generator, size: int = 11, variance_range=(0.6, 5.0),
                              noise_level: float = 0.25) -> tuple[np.ndarray, dict]:
    """One DIV2KRK-style kernel (see the module docstring) and how it was drawn.

    As DIV2KRK's generator: the two eigenvalues of the Gaussian's covariance, variance_1 and
    variance_2 ~ U(variance_range) px^2 (x2: (0.6, 5)), so the axis stds are sigma_i =
    sqrt(variance_i); angle ~ U(-pi, pi) rad (a Gaussian turned by pi is the same, so this is
    the generator's U(0, pi)); each tap multiplied by U(1 - noise_level, 1 + noise_level), then
    normalised. `size` 11 for x2 (DIV2KRK).
    Returns (float64 (size, size) kernel summing to 1,
    {"variance_1", "variance_2" (px^2), "sigma_1", "sigma_2" (px), "angle" (rad)}).
    """
    variance_1, variance_2 = rng.uniform(*variance_range, size=2)
    sigma_1, sigma_2 = math.sqrt(variance_1), math.sqrt(variance_2)
    angle = rng.uniform(-math.pi, math.pi)
    kernel = gaussian_kernel(size, sigma_1, sigma_2, angle)
    kernel = kernel * rng.uniform(1 - noise_level, 1 + noise_level, size=kernel.shape)
    return kernel / kernel.sum(), {"variance_1": float(variance_1), "variance_2": float(variance_2),
                                   "sigma_1": sigma_1, "sigma_2": sigma_2, "angle": float(angle)}
