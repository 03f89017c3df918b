"""Downscaling kernels: loading (.mat / .npy), validation, re-centring, analytic kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import io as scipy_io
from scipy import ndimage

from zssr_tf.errors import ZSSRError
from zssr_tf.resize import cubic

KERNEL_SUM_TOLERANCE = 0.05
MAT_KERNEL_NAMES = ("Kernel", "kernel")
ALIGNMENTS = ("block_centre", "direct")
# A kernel counts as symmetric under a transform when no tap moves by more than this fraction
# of the largest tap: far above float rounding, far below the 25% tap noise of DIV2KRK kernels.
SYMMETRY_TOLERANCE = 1e-3
# Rotating an isotropic kernel by 45 degrees changes it by at most this fraction of its largest tap.
ISOTROPY_TOLERANCE = 0.02


def load_kernel(path: str | Path) -> np.ndarray:
    """Read a 2-D kernel from a MATLAB .mat file or a .npy file.

    A .mat file may hold the kernel as `Kernel` (KernelGAN, DIV2KRK, the official ZSSR), as
    `kernel` (MZSR's test sets), or as its only 2-D numeric variable under any name.
    Returns float64 (kh, kw), checked to be finite, non-degenerate and to sum to ~1.
    Raises ZSSRError naming the file and the fix (missing file, unreadable file, several
    candidate variables, bad values).
    """
    path = Path(path)
    if not path.is_file():
        raise ZSSRError(f"kernel file {str(path)!r} not found; pass an existing .mat or .npy file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".mat":
            kernel = _kernel_from_mat(scipy_io.loadmat(str(path)), str(path))
        elif suffix == ".npy":
            kernel = np.load(path, allow_pickle=False)
        else:
            raise ZSSRError(f"kernel file {str(path)!r}: use a .mat (variable Kernel) or .npy file")
    except (ValueError, OSError, scipy_io.matlab.MatReadError) as err:
        raise ZSSRError(f"kernel file {str(path)!r} cannot be read ({err}); is it a valid {suffix} file?") from None
    return check_kernel(kernel, str(path))


def _kernel_from_mat(data: dict, name: str) -> np.ndarray:
    """The kernel variable of a loaded .mat file: `Kernel`, else `kernel`, else the only 2-D
    numeric variable."""
    for key in MAT_KERNEL_NAMES:
        if key in data:
            return data[key]
    variables = {k: v for k, v in data.items() if not k.startswith("__")}
    candidates = sorted(k for k, v in variables.items()
                        if isinstance(v, np.ndarray) and v.ndim == 2 and min(v.shape) > 1
                        and np.issubdtype(v.dtype, np.number))
    if len(candidates) == 1:
        return variables[candidates[0]]
    if not candidates:
        raise ZSSRError(f"kernel file {name!r} has no 2-D numeric variable (it has {sorted(variables)}); "
                        "save the kernel as a 2-D array named Kernel")
    raise ZSSRError(f"kernel file {name!r} has several 2-D variables {candidates}; save only the kernel, "
                    "or name it Kernel (or kernel)")


def check_kernel(kernel, name: str = "kernel") -> np.ndarray:
    """Validate a numeric kernel: a finite 2-D array with a positive sum of 1 (within 5%).

    Returns it as float64 divided by its sum. Raises ZSSRError for other shapes, NaN/inf,
    an all-zero kernel, a kernel whose sum is not positive, or one far from sum 1.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or min(kernel.shape) < 1 or not np.issubdtype(kernel.dtype, np.number):
        raise ZSSRError(f"{name}: the kernel must be a 2-D numeric array, got shape {kernel.shape}")
    kernel = kernel.astype(np.float64)
    if not np.all(np.isfinite(kernel)):
        raise ZSSRError(f"{name}: the kernel has NaN or infinite values")
    if not np.any(kernel):
        raise ZSSRError(f"{name}: the kernel is all zeros; a downscaling kernel needs positive weights "
                        "that sum to 1 (is this the right file or variable?)")
    total = kernel.sum()
    if total <= 0:
        raise ZSSRError(f"{name}: the kernel sums to {total:.4g}; a downscaling kernel is a weighted average "
                        "with a sum of 1 (mostly positive weights); check the file or the sign of the kernel")
    if abs(total - 1) > KERNEL_SUM_TOLERANCE:
        raise ZSSRError(f"{name}: the kernel sums to {total:.4g}, not 1; normalise it (kernel / kernel.sum())")
    return kernel / total


def align_kernel(kernel: np.ndarray, scale_factor, alignment: str = "block_centre") -> np.ndarray:
    """The kernel to correlate with before keeping every sf-th pixel from (0, 0), for a convention.

    `alignment` says where LR pixel i sits on the HR grid (DESIGN §5):
    - "block_centre" (MATLAB `imresize`, the official ZSSR, KernelGAN/DIV2KRK): at the centre of
      HR block i, s*i + (s - 1)/2; see `recenter_kernel`.
    - "direct" (MZSR's test sets, ZSRGAN's data, plain blur + subsample pipelines): on HR pixel
      s*i; the kernel's centre of mass is only moved onto its middle tap (`centre_kernel`), and
      every factor must be a whole number.
    `scale_factor`: sf (sy, sx) >= 1. Returns a float64 kernel, zero-padded. Raises ZSSRError for
    an unknown convention or a non-integer factor under "direct".
    """
    if alignment == "block_centre":
        return recenter_kernel(kernel, scale_factor)
    if alignment == "direct":
        check_direct_scale(scale_factor)
        return centre_kernel(kernel)
    raise ZSSRError(f"unknown kernel alignment {alignment!r}; use one of {ALIGNMENTS}")


def check_direct_scale(scale_factor) -> tuple[int, int]:
    """(sy, sx) as whole numbers, or ZSSRError: "direct" keeps HR pixels s*i, which exist only
    for whole factors (a factor like 1.5 would put LR pixels between HR pixels)."""
    sf = np.broadcast_to(np.asarray(scale_factor, dtype=np.float64), (2,))
    if np.any(np.abs(sf - np.round(sf)) > 1e-9):
        raise ZSSRError(f"scale factor {sf.tolist()}: kernel_alignment 'direct' needs whole-number factors "
                        "(LR pixel i on HR pixel s*i); use scale.kernel_alignment: block_centre for "
                        "fractional factors")
    return int(round(sf[0])), int(round(sf[1]))


def recenter_kernel(kernel: np.ndarray, scale_factor) -> np.ndarray:
    """Shift a kernel so downscaling by `scale_factor` (>= 1, e.g. (2, 2)) is block-centre aligned.

    Two reasons (as in the official ZSSR): a kernel's centre of mass need not be its centre,
    and nothing tells us the degradation shifted the image, so we assume it did not; and each
    output pixel of `downscale_with_kernel` must sit at the centre of its sf x sf input block,
    i.e. (sf - 1) / 2 pixels right/down of the correlation origin (index k // 2).
    Returns a zero-padded, shifted float64 kernel.
    """
    sf = np.broadcast_to(np.asarray(scale_factor, dtype=np.float64), (2,))
    return _shift_centre_of_mass(kernel, (sf - 1) / 2)


def centre_kernel(kernel: np.ndarray) -> np.ndarray:
    """Move a kernel's centre of mass onto its middle tap (index k // 2, the correlation origin)
    with a cubic-spline shift: the "direct" convention's kernel. Returns zero-padded float64."""
    return _shift_centre_of_mass(kernel, np.zeros(2))


def _shift_centre_of_mass(kernel: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The kernel shifted so its centre of mass lands `offset` (dy, dx) past index k // 2."""
    kernel = np.asarray(kernel, dtype=np.float64)
    origin = np.array(kernel.shape) // 2
    shift = origin + offset - np.array(ndimage.center_of_mass(kernel))
    pad = int(np.ceil(np.max(np.abs(shift)))) + 1
    padded = np.pad(kernel, pad)
    # The padding moves the origin by `pad` (even total growth keeps k // 2 + pad).
    return ndimage.shift(padded, shift, order=3, mode="constant")


def is_isotropic(kernel: np.ndarray, tolerance: float = ISOTROPY_TOLERANCE) -> bool:
    """True when turning the kernel about its centre of mass by 30 and 45 degrees (cubic-spline
    rotation) changes no tap by more than `tolerance` times the largest tap: the kernel is
    the same under any rotation, so arbitrary-angle (affine) fathers keep the degradation."""
    centred = odd_square(centre_kernel(kernel))
    limit = tolerance * np.max(np.abs(centred))
    return all(np.max(np.abs(ndimage.rotate(centred, angle, reshape=False, order=3) - centred)) <= limit
               for angle in (30, 45))


def odd_square(kernel: np.ndarray) -> np.ndarray:
    """Zero-pad a kernel centred on index k // 2 (e.g. from `centre_kernel`) to an odd square
    whose middle tap is that one, so transforms about the middle act about the kernel's centre."""
    kernel = np.pad(kernel, [(0, 1 - n % 2) for n in kernel.shape])
    side = max(kernel.shape)
    return np.pad(kernel, [((side - n) // 2, (side - n) // 2) for n in kernel.shape])


def kernel_distance(estimated: np.ndarray, true: np.ndarray) -> float:
    """L2 norm of the difference of two kernels after each is normalised to sum 1 and its centre
    of mass moved (`centre_kernel`) onto the middle of a common odd square grid: how far an
    estimated kernel is from the true one, ignoring a sub-pixel shift (which only moves the image).
    Inputs: 2-D float arrays of any sizes, each with a positive sum (the caller's to check, as
    `load_kernel` does). Returns a float >= 0, 0 for the same kernel."""
    a, b = (odd_square(centre_kernel(np.asarray(k, np.float64) / np.sum(k))) for k in (estimated, true))
    side = max(a.shape[0], b.shape[0])
    a, b = (np.pad(k, (side - k.shape[0]) // 2) for k in (a, b))
    return float(np.linalg.norm(a - b))


def kernel_variances(kernel: np.ndarray) -> list[float]:
    """The eigenvalues (px^2, ascending) of a kernel's covariance about its centre of mass: its
    blur along its thinnest and widest axes (for a Gaussian, the variances along its axes).
    `kernel`: 2-D float array with a positive sum. Returns two floats."""
    k = np.asarray(kernel, np.float64) / np.sum(kernel)
    y, x = np.mgrid[:k.shape[0], :k.shape[1]]
    dy, dx = y - np.sum(k * y), x - np.sum(k * x)
    cov = [[np.sum(k * dy * dy), np.sum(k * dy * dx)], [np.sum(k * dy * dx), np.sum(k * dx * dx)]]
    return [float(v) for v in np.linalg.eigvalsh(cov)]


def upscale_offset(scale_factor, alignment: str, reversed_axes=(False, False)) -> tuple[float, float]:
    """Where an upscaling (`resize.imresize(offset=...)`, in LR pixels) must sample so that LR
    pixel i lands where `alignment` puts it on the HR grid.

    "block_centre": (0, 0), MATLAB's grid. "direct": +(s - 1)/(2s) per axis, so HR pixel s*i
    reads LR pixel i exactly; on an axis that a dihedral transform reversed (`reversed_axes`),
    -(s - 1)/(2s), because reversing an s*h-pixel axis maps HR pixel s*i to s*(h-1-i) + s - 1.
    `scale_factor`: (sy, sx) of the upscaling. Returns (dy, dx).
    """
    if alignment == "block_centre":
        return (0.0, 0.0)
    sy, sx = check_direct_scale(scale_factor)
    return tuple(float((s - 1) / (2 * s) * (-1 if rev else 1)) for s, rev in zip((sy, sx), reversed_axes))


def gaussian_kernel(size: int, sigma_y: float, sigma_x: float | None = None, angle: float = 0.0) -> np.ndarray:
    """An anisotropic Gaussian kernel (size x size, odd size), rotated by `angle` radians, sum 1."""
    sigma_x = sigma_y if sigma_x is None else sigma_x
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def bicubic_taps(scale_factor: int = 2) -> np.ndarray:
    """The 1-D factor of `bicubic_kernel`: 4 * sf float64 taps summing to 1."""
    n = 4 * scale_factor
    taps = cubic((np.arange(n) - (n - 1) / 2) / scale_factor)
    return taps / taps.sum()


def bicubic_kernel(scale_factor: int = 2) -> np.ndarray:
    """MATLAB's antialiased bicubic downscaling kernel for an integer factor, as a 2-D array.

    Even size 4 * sf, centred between its two middle taps; sums to 1; separable, the outer
    product of `bicubic_taps`. Useful to check that the numeric-kernel path reproduces `imresize`.
    """
    taps = bicubic_taps(scale_factor)
    return np.outer(taps, taps)
