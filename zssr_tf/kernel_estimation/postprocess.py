"""From the generator's raw kernel to the kernels ZSSR uses: cleaning, re-centring, averaging
runs, narrowing (`scale_kernel_variance`, the `estimate_variance_scale` setting), analytic x4.

Follows the KernelGAN paper's code (Bell-Kligler et al. 2019): negligible taps are zeroed, the
centre of mass is moved to the x2 block centre, and the x4 kernel is derived as "x2 twice".
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from zssr_tf.kernels import centre_kernel, recenter_kernel


def zero_negligible_taps(kernel: np.ndarray, keep: int = 40) -> np.ndarray:
    """k - t clipped at 0, with t = 0.75 x the (keep + 1)-th largest tap, then normalised to sum 1.

    Every tap above t survives, so at least `keep` + 1 taps stay non-zero when that tap is
    positive. Returns float64 of the same shape. Raises ValueError when nothing is left
    (a kernel with no positive tap).
    """
    kernel = np.asarray(kernel, np.float64)
    ranked = np.sort(kernel.ravel())[::-1]
    threshold = 0.75 * ranked[min(keep, ranked.size - 1)]
    cleaned = np.clip(kernel - threshold, 0, None)
    total = cleaned.sum()
    if not total > 0:
        raise ValueError("the kernel has no positive taps")
    return cleaned / total


def post_process(kernel: np.ndarray, keep: int = 40, scale: int = 2) -> np.ndarray:
    """The paper code's post-processing of the extracted x2 kernel: `zero_negligible_taps`, then
    `kernels.recenter_kernel`, which moves the centre of mass (cubic spline, zero padding) to the
    x`scale` block centre, K//2 + (scale - 1)/2 for the odd K of a generator's receptive field
    (the paper code's K//2 + (scale - K mod 2)/2, `constraints.kernel_centre`). As in the paper's
    code the result is not renormalised (the spline may leave tiny negative taps).
    (K, K) -> (K + 2p, K + 2p) float64 with p >= 1 (15 x 15 to 17 x 17 for 13 x 13)."""
    return recenter_kernel(zero_negligible_taps(kernel, keep), scale)


def average_kernels(kernels, scale: int = 2) -> np.ndarray:
    """The mean of several estimates of one kernel, in the convention of `post_process`.

    Each kernel (odd-sized, any centre of mass) is normalised to sum 1 and centred on its middle
    tap (`kernels.centre_kernel`), all are zero-padded to a common size and averaged, and the
    mean is moved to the x`scale` block centre (`kernels.recenter_kernel`). Centring first keeps
    estimates that sit a fraction of a pixel apart from blurring their mean. Each centring pads
    the kernel, so the mean's border rings are then trimmed while they hold almost nothing
    (`trim_negligible_border`).
    list of (K_i, K_i) -> (K, K) float64, K odd. Raises ValueError for an empty list or an
    even-sized kernel.
    """
    if not kernels:
        raise ValueError("no kernels to average")
    if any(np.shape(k)[0] % 2 == 0 or np.shape(k)[1] % 2 == 0 for k in kernels):
        raise ValueError("kernels to average must have odd sides")
    centred = [centre_kernel(np.asarray(k, np.float64) / np.sum(k)) for k in kernels]
    size = max(max(k.shape) for k in centred)
    # Odd sizes differ by even numbers: symmetric padding keeps every middle tap in the middle.
    padded = [np.pad(k, [((size - n) // 2,) * 2 for n in k.shape]) for k in centred]
    return trim_negligible_border(recenter_kernel(np.mean(padded, axis=0), scale))


def scale_kernel_variance(kernel: np.ndarray, factor: float, scale: int = 2) -> np.ndarray:
    """The kernel narrowed: its covariance multiplied by `factor` (0 < factor <= 1), then its
    centre of mass moved back to the x`scale` block centre (`kernels.recenter_kernel`, which
    zero-pads by the shift). The taps (negative ones set to 0; post-processed estimates have
    none) are raised to the power 1 / `factor` and normalised to sum 1: exact for a Gaussian,
    whose p-th power is a Gaussian with its covariance divided by p, and close to it for the
    near-Gaussian kernels FKP decodes and their averages; orientation and shape are kept.
    (K, K) float -> float64 (K', K'), K' >= K. Raises ValueError for a factor outside (0, 1]
    (widening a kernel on its finite support is not exact) or a kernel with no positive tap."""
    if not 0 < factor <= 1:
        raise ValueError(f"the variance factor must be in (0, 1], got {factor}")
    powered = np.clip(np.asarray(kernel, np.float64), 0, None) ** (1.0 / factor)
    total = powered.sum()
    if not total > 0:
        raise ValueError("the kernel has no positive taps")
    return recenter_kernel(powered / total, scale)


def trim_negligible_border(kernel: np.ndarray, fraction: float = 1e-4) -> np.ndarray:
    """Cut the same number of outer rows and columns from every side of a square kernel while
    what is cut holds at most `fraction` of its absolute mass, then rescale to the old sum.

    Cutting p rings from every side keeps each tap's offset from index K // 2, so the kernel's
    alignment convention (direct or block centre) is unchanged. The cubic-spline shifts of
    `kernels.recenter_kernel` pad with rings that end up holding only spline ringing; this is
    what removes them. (K, K) -> (K - 2p, K - 2p) float64, at least 3 x 3 (never cut to less).
    Raises ValueError for a kernel that is not square.
    """
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"trimming needs a square kernel, got shape {kernel.shape}")
    size = kernel.shape[0]
    total = np.abs(kernel).sum()
    cut = 0
    while size - 2 * (cut + 1) >= 3:
        inner = kernel[cut + 1:size - cut - 1, cut + 1:size - cut - 1]
        if total - np.abs(inner).sum() > fraction * total:
            break
        cut += 1
    trimmed = kernel[cut:size - cut, cut:size - cut]
    return trimmed * (kernel.sum() / trimmed.sum())


def analytic_x4_kernel(kernel_x2: np.ndarray, crop: bool = True) -> np.ndarray:
    """The x4 kernel equivalent to downscaling x2 twice with `kernel_x2` (s x s).

    Correlating with k2 and keeping every 2nd pixel, twice, is correlating once with
    k4 = full convolution of k2 with k2 upsampled x2 by zero insertion, (3s - 2) x (3s - 2),
    and keeping every 4th pixel. With `crop`, s // 2 pixels are cut from every border (the
    tails are tiny) and the result is normalised to sum 1, as in the paper's code.
    Returns float64.
    """
    k2 = np.asarray(kernel_x2, np.float64)
    dilated = np.zeros((2 * k2.shape[0] - 1, 2 * k2.shape[1] - 1))
    dilated[::2, ::2] = k2
    k4 = signal.convolve2d(k2, dilated, mode="full")
    if not crop:
        return k4
    cy, cx = k2.shape[0] // 2, k2.shape[1] // 2
    k4 = k4[cy:k4.shape[0] - cy, cx:k4.shape[1] - cx]
    return k4 / k4.sum()
