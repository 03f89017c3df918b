"""Downscaling kernels: loading (.mat / .npy), validation, re-centring, analytic kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import io as scipy_io
from scipy import ndimage

from zssr_tf.errors import ZSSRError
from zssr_tf.resize import cubic

KERNEL_SUM_TOLERANCE = 0.05


def load_kernel(path: str | Path) -> np.ndarray:
    """Read a 2-D kernel from a MATLAB .mat file (variable `Kernel`) or a .npy file.

    Returns float64 (kh, kw), checked to be finite, non-degenerate and to sum to ~1.
    """
    path = Path(path)
    if not path.is_file():
        raise ZSSRError(f"kernel file {str(path)!r} not found; pass an existing .mat or .npy file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".mat":
            data = scipy_io.loadmat(str(path))
            if "Kernel" not in data:
                names = [k for k in data if not k.startswith("__")]
                raise ZSSRError(f"kernel file {str(path)!r} has no variable 'Kernel' (it has {names}); "
                                "save the kernel as a 2-D array named Kernel")
            kernel = data["Kernel"]
        elif suffix == ".npy":
            kernel = np.load(path, allow_pickle=False)
        else:
            raise ZSSRError(f"kernel file {str(path)!r}: use a .mat (variable Kernel) or .npy file")
    except (ValueError, OSError, scipy_io.matlab.MatReadError) as err:
        raise ZSSRError(f"kernel file {str(path)!r} cannot be read ({err}); is it a valid {suffix} file?") from None
    return check_kernel(kernel, str(path))


def check_kernel(kernel, name: str = "kernel") -> np.ndarray:
    """Validate a numeric kernel: a finite 2-D array summing to 1 (within 5%)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or min(kernel.shape) < 1 or not np.issubdtype(kernel.dtype, np.number):
        raise ZSSRError(f"{name}: the kernel must be a 2-D numeric array, got shape {kernel.shape}")
    kernel = kernel.astype(np.float64)
    if not np.all(np.isfinite(kernel)):
        raise ZSSRError(f"{name}: the kernel has NaN or infinite values")
    total = kernel.sum()
    if abs(total - 1) > KERNEL_SUM_TOLERANCE:
        raise ZSSRError(f"{name}: the kernel sums to {total:.4g}, not 1; normalise it (kernel / kernel.sum())")
    return kernel / total


def recenter_kernel(kernel: np.ndarray, scale_factor) -> np.ndarray:
    """Shift a kernel so downscaling by `scale_factor` (>= 1, e.g. (2, 2)) is aligned.

    Two reasons (as in the official ZSSR): a kernel's centre of mass need not be its centre,
    and nothing tells us the degradation shifted the image, so we assume it did not; and each
    output pixel of `downscale_with_kernel` must sit at the centre of its sf x sf input block,
    i.e. (sf - 1) / 2 pixels right/down of the correlation origin (index k // 2).
    Returns a zero-padded, shifted float64 kernel.
    """
    sf = np.broadcast_to(np.asarray(scale_factor, dtype=np.float64), (2,))
    origin = np.array(kernel.shape) // 2
    wanted = origin + (sf - 1) / 2
    shift = wanted - np.array(ndimage.center_of_mass(kernel))
    pad = int(np.ceil(np.max(np.abs(shift)))) + 1
    padded = np.pad(kernel, pad)
    # The padding moves the origin by `pad` (even total growth keeps k // 2 + pad).
    return ndimage.shift(padded, shift, order=3, mode="constant")


def gaussian_kernel(size: int, sigma_y: float, sigma_x: float | None = None, angle: float = 0.0) -> np.ndarray:
    """An anisotropic Gaussian kernel (size x size, odd size), rotated by `angle` radians, sum 1."""
    sigma_x = sigma_y if sigma_x is None else sigma_x
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def bicubic_kernel(scale_factor: int = 2) -> np.ndarray:
    """MATLAB's antialiased bicubic downscaling kernel for an integer factor, as a 2-D array.

    Even size 4 * sf, centred between its two middle taps; sums to 1. Useful to check that
    the numeric-kernel path reproduces `imresize`.
    """
    n = 4 * scale_factor
    taps = cubic((np.arange(n) - (n - 1) / 2) / scale_factor)
    taps /= taps.sum()
    return np.outer(taps, taps)
