"""KernelGAN's losses on the generator's output and on its kernel (Bell-Kligler et al. 2019, Sec. 3).

All functions are `keras.ops` on float32 tensors and differentiable, so they run inside the
generator's gradient computation (`backend.value_and_grad`). Kernels are K x K correlation
kernels (see `networks.extract_kernel`).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from zssr_tf.kernel_estimation.strided import separable_stride2
from zssr_tf.kernels import bicubic_taps

BOUNDARY_SIGMA = 13.0  # std (pixels) of the Gaussian the boundary mask is made from
BOUNDARY_RING = 2  # width (pixels) of the penalised outer ring
BOUNDARY_SCALE = 30.0
SPARSITY_POWER = 0.2
SPARSITY_EPSILON = 1e-8  # |k|^0.2 has an infinite slope at 0


def kernel_centre(kernel_size: int, scale: int = 2) -> float:
    """Where the centre of mass of a K x K generator kernel should lie (row = column), the paper
    code's K//2 + (scale - K mod 2) / 2. For odd K, the only sizes a generator's receptive field
    takes (its layers are odd), that is K//2 + (scale - 1)/2: 6.5 for K = 13 at x2, between the two
    middle HR pixels of each block, the block centre of MATLAB's imresize and of
    `kernels.recenter_kernel` (correlation origin K//2). Even K are not used."""
    return kernel_size // 2 + 0.5 * (scale - kernel_size % 2)


def bicubic_downscale(images, out_size: int, target: str = "channel_sum"):
    """The bicubic x2 reference for G's output: (1, H, W, C) -> (1, out_size, out_size, C) float32.

    MATLAB's antialiased 8x8 bicubic kernel as a stride-2 correlation with zero padding 3, the
    result centre-cropped to `out_size` (26 for a 64 input), which puts it on the same grid as
    G's output; computed as the separable kernel it is (`strided.separable_stride2`), only at
    the kept outputs. `target`: "per_channel" downscales each channel alone; "channel_sum" gives
    every channel the *sum* of the three downscales, as the paper's code does (its dense
    3x3-channel conv weight carries the kernel in every channel pair).
    """
    taps = bicubic_taps(2)
    size = images.shape[1]
    crop = ((size + 6 - len(taps)) // 2 + 1 - out_size) // 2  # of the padded correlation's outputs
    down = separable_stride2(images, taps, 2 * crop - 3, out_size)
    if target == "channel_sum":
        down = ops.broadcast_to(ops.sum(down, axis=-1, keepdims=True), ops.shape(down))
    return down


def bicubic_loss(generated, inputs, target: str = "channel_sum"):
    """MSE between G's output (1, h, w, C) and the bicubic x2 downscale of G's input (1, H, W, C)."""
    return ops.mean(ops.square(generated - bicubic_downscale(inputs, generated.shape[1], target)))


def sum_to_one_loss(kernel):
    """|1 - sum(k)|: a downscaling kernel keeps the mean brightness."""
    return ops.abs(1.0 - ops.sum(kernel))


def boundary_mask(kernel_size: int) -> np.ndarray:
    """(K, K) float32 weights penalising the kernel's outer 2-pixel ring, zero inside it.

    30 * (1 - g / max g) for a separable Gaussian g of std 13 px: about 2.1 in the middle of
    the inner ring's sides up to 5.8 in the corners (K = 13).
    """
    offsets = np.arange(kernel_size) - (kernel_size - 1) / 2
    gauss = np.exp(-offsets**2 / (2 * BOUNDARY_SIGMA**2))
    mask = 1 - np.outer(gauss, gauss) / np.outer(gauss, gauss).max()
    mask[BOUNDARY_RING:kernel_size - BOUNDARY_RING, BOUNDARY_RING:kernel_size - BOUNDARY_RING] = 0
    return (BOUNDARY_SCALE * mask).astype(np.float32)


def boundaries_loss(kernel, mask):
    """Mean of |k * mask| over the K x K taps: mass near the border is penalised."""
    return ops.mean(ops.abs(kernel * mask))


def centralization_loss(kernel, centre: float):
    """Mean of the squared errors of the (row, column) centre of mass of the signed kernel
    against (`centre`, `centre`), in pixels^2; a delta at (6, 6) of a 13 x 13 kernel gives 0.25."""
    size = kernel.shape[0]
    index = ops.arange(size, dtype="float32")
    total = ops.sum(kernel)
    row = ops.sum(index * ops.sum(kernel, axis=1)) / total
    col = ops.sum(index * ops.sum(kernel, axis=0)) / total
    return 0.5 * (ops.square(row - centre) + ops.square(col - centre))


def sparsity_loss(kernel):
    """Mean of |k|^0.2: favours few non-zero taps (epsilon keeps the gradient finite at 0)."""
    return ops.mean(ops.power(ops.abs(kernel) + SPARSITY_EPSILON, SPARSITY_POWER))
