"""MATLAB `imresize`-compatible resizing: bicubic (a = -0.5) with antialiasing, pixel-centre aligned.

Written here because no maintained library reproduces MATLAB's `imresize` exactly (OpenCV and
TF have no antialiased bicubic with MATLAB's kernel stretching, PIL rounds to 8 bits), and the
benchmark LR images were made with MATLAB. Both `scale_factor` and `output_shape` can be given:
a 9-pixel father at sf=2 has a 5-pixel son (ceil), and upscaling the son must give 9 pixels at
exactly scale 2, not at 9/5.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage, sparse

from zssr_tf.errors import ZSSRError


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic'), support [-2, 2]."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2))


def linear(x: np.ndarray) -> np.ndarray:
    """Triangle kernel, support [-1, 1]."""
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def box(x: np.ndarray) -> np.ndarray:
    """Nearest-neighbour box kernel, support [-0.5, 0.5)."""
    return ((-0.5 <= x) & (x < 0.5)) * 1.0


def _lanczos(a: int):
    def kernel(x: np.ndarray) -> np.ndarray:
        return np.sinc(x) * np.sinc(x / a) * (np.abs(x) < a)

    return kernel


METHODS = {"cubic": (cubic, 4.0), "linear": (linear, 2.0), "box": (box, 1.0),
           "lanczos2": (_lanczos(2), 4.0), "lanczos3": (_lanczos(3), 6.0)}


def fix_scale_and_shape(in_shape: tuple[int, int], scale_factor=None, output_shape=None):
    """Complete (scale_factor, output_shape) for the two spatial axes from whichever is given.

    Returns ((sy, sx), (h, w)). A missing shape is ceil(in_shape * scale); a missing scale is
    out/in per axis.
    """
    if scale_factor is None and output_shape is None:
        raise ValueError("give scale_factor, output_shape or both")
    if scale_factor is not None:
        scale = (float(scale_factor),) * 2 if np.isscalar(scale_factor) else tuple(float(s) for s in scale_factor)
    else:
        scale = (output_shape[0] / in_shape[0], output_shape[1] / in_shape[1])
    if output_shape is None:
        # The small epsilon keeps 256 * (1/2) * 2 from rounding up to 257.
        output_shape = tuple(int(math.ceil(n * s - 1e-9)) for n, s in zip(in_shape, scale))
    return scale, (int(output_shape[0]), int(output_shape[1]))


@functools.lru_cache(maxsize=256)
def contributions(in_length: int, out_length: int, scale: float, method: str = "cubic",
                  antialiasing: bool = True, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-pixel source indices and weights along one axis, as MATLAB computes them.

    `offset` (input pixels) moves every sample point; 0 is MATLAB's pixel-centre grid (see
    `kernels.upscale_offset` for the "direct" grid). Returns (weights float32 [out_length, taps],
    indices int64 [out_length, taps]); borders are handled by mirroring the indices (MATLAB's
    symmetric padding).
    """
    kernel, kernel_width = METHODS[method]
    if antialiasing and scale < 1:
        # Downscaling stretches the kernel by 1/scale: a low-pass filter against aliasing.
        fixed_kernel = lambda arg: scale * kernel(scale * arg)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        fixed_kernel = kernel
    # Output pixel centres mapped onto input coordinates (1-based, as in MATLAB).
    out_coordinates = np.arange(1, out_length + 1, dtype=np.float64)
    match = out_coordinates / scale + 0.5 * (1 - 1 / scale)
    if offset:
        match = match + offset
    left = np.floor(match - kernel_width / 2)
    taps = int(math.ceil(kernel_width) + 2)
    indices = left[:, None] + np.arange(taps) - 1  # 0-based
    weights = fixed_kernel(match[:, None] - indices - 1)
    sums = weights.sum(axis=1, keepdims=True)
    weights = weights / np.where(sums == 0, 1.0, sums)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64), 2 * in_length)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used].astype(np.float32), indices[:, used]


@functools.lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, method: str = "cubic",
                  antialiasing: bool = True, offset: float = 0.0) -> sparse.csr_matrix:
    """The (out_length, in_length) sparse float32 matrix of `contributions` along one axis.

    A sparse product is ~20x faster than gathering the taps for 512-pixel images, and caching
    it makes the per-iteration resizes of same-sized crops nearly free.
    """
    weights, indices = contributions(in_length, out_length, scale, method, antialiasing, offset)
    rows = np.repeat(np.arange(out_length), weights.shape[1])
    # Mirrored border taps can repeat an index: the CSR constructor sums them, as it should.
    return sparse.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(out_length, in_length))


def resize_along_axis(image: np.ndarray, axis: int, matrix: sparse.csr_matrix) -> np.ndarray:
    """Resample `image` along `axis` (0 or 1) with a `resize_matrix`."""
    moved = np.moveaxis(image, axis, 0)
    out = matrix @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(out.reshape((matrix.shape[0],) + moved.shape[1:]), 0, axis).astype(np.float32, copy=False)


def imresize(image: np.ndarray, scale_factor=None, output_shape=None, kernel="cubic",
             antialiasing: bool = True, offset=(0.0, 0.0)) -> np.ndarray:
    """Resize an HxW or HxWxC float image like MATLAB's `imresize`.

    `scale_factor`: a number or (sy, sx); `output_shape`: (h, w); either or both.
    `kernel`: a method name from METHODS, or a 2-D numeric kernel (downscaling only),
    which is correlated with the image and subsampled (see `downscale_with_kernel`).
    `offset`: (dy, dx) in input pixels added to every sample point of a method-name resize
    ((0, 0): MATLAB's grid; `kernels.upscale_offset` gives the "direct" one).
    Returns float32 of shape (h, w[, C]). Raises ZSSRError for an unknown method, a numeric
    kernel asked to upscale, or a numeric kernel with a non-zero `offset`.
    """
    image = np.asarray(image, dtype=np.float32)
    scale, out_shape = fix_scale_and_shape(image.shape[:2], scale_factor, output_shape)
    if isinstance(kernel, np.ndarray):
        if max(scale) > 1:
            raise ZSSRError("a numeric kernel can only downscale; use a method name such as 'cubic' to upscale")
        if any(offset):
            raise ZSSRError(f"offset {tuple(offset)} applies to a method-name resize only; a numeric kernel's "
                            "sample grid is set by its alignment: align it with kernels.align_kernel and "
                            "pass offset=(0, 0)")
        return downscale_with_kernel(image, kernel, scale, out_shape)
    if kernel not in METHODS:
        raise ZSSRError(f"unknown resize method {kernel!r}; use one of {sorted(METHODS)}")
    out = image
    # MATLAB resizes the axis with the smaller scale first (cheaper when shrinking).
    for axis in np.argsort(scale, kind="stable"):
        if scale[axis] == 1.0 and out.shape[axis] == out_shape[axis] and not offset[axis]:
            continue
        matrix = resize_matrix(out.shape[axis], out_shape[axis], scale[axis], kernel, antialiasing,
                               float(offset[axis]))
        out = resize_along_axis(out, int(axis), matrix)
    return out


def downscale_with_kernel(image: np.ndarray, kernel: np.ndarray, scale: tuple[float, float],
                          out_shape: tuple[int, int]) -> np.ndarray:
    """Correlate with an aligned 2-D kernel (reflected borders), then keep every 1/scale-th pixel.

    Output pixel i is the correlation at input pixel (1/scale)*i, exactly, for whole factors
    (for fractional ones, at round(linspace(0, n - 1/scale, out)), as the official ZSSR). Where LR
    pixel i then sits on the HR grid is decided by the kernel: `kernels.align_kernel`.
    The correlation runs over the whole image and the kept rows and columns are taken from it,
    except that a separable (rank-1) kernel, like a Gaussian, runs as two 1-D correlations
    (scipy.ndimage.correlate1d), the second one only on the kept rows: for a 21x21 kernel at
    most 21 + 21 taps per pixel instead of 441, with the same result to float rounding.
    `image`: (H, W[, C]) float32; `scale` (sy, sx) <= 1; `out_shape` (h, w). Returns float32 (h, w[, C]).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    rows = _kept_pixels(image.shape[0], scale[0], out_shape[0])
    cols = _kept_pixels(image.shape[1], scale[1], out_shape[1])
    factors = _separable_factors(kernel)
    if factors is not None:
        column, row = factors
        # The vertical pass over the whole image, then the horizontal one on the kept rows only.
        filtered = ndimage.correlate1d(image, column, axis=0, mode="reflect", output=np.float64)[rows]
        filtered = ndimage.correlate1d(filtered, row, axis=1, mode="reflect", output=np.float64)[:, cols]
        return filtered.astype(np.float32)
    kernel = kernel.astype(np.float32)
    if image.ndim == 3:
        filtered = np.stack([ndimage.correlate(image[..., c], kernel, mode="reflect")
                             for c in range(image.shape[2])], axis=-1)
    else:
        filtered = ndimage.correlate(image, kernel, mode="reflect")
    return filtered[rows[:, None], cols[None, :]]


def _kept_pixels(in_length: int, scale: float, out_length: int) -> np.ndarray:
    """The input indices that become output pixels when subsampling by 1/scale."""
    step = 1 / scale
    if abs(step - round(step)) < 1e-9:
        return np.arange(out_length) * int(round(step))
    return np.round(np.linspace(0, in_length - step, out_length)).astype(int)


def _separable_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) 1-D kernels whose outer product is `kernel` to float precision (1e-7 of its
    largest tap), else None. Built from the row and column through the largest tap, without
    LAPACK: this runs in tf.data's worker threads, where a threaded SVD per son stalls training.
    """
    i, j = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    column, row = kernel[:, j], kernel[i] / kernel[i, j]
    if np.max(np.abs(np.outer(column, row) - kernel)) > 1e-7 * abs(kernel[i, j]):
        return None
    return column, row
