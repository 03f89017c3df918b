"""PSNR and SSIM computed the way the super-resolution literature's MATLAB scripts do it.

Protocol: round the images to 8 bits, convert RGB to the Y channel of MATLAB's `rgb2ycbcr`
(BT.601, Y in 16..235, rounded to integer levels), shave `crop_border` pixels from every border,
then PSNR with peak 255 and SSIM of Wang et al. (11x11 Gaussian window, sigma 1.5, K1 = 0.01,
K2 = 0.03, population covariance) on the 0..255 scale. Gray images are compared on their gray
levels as they are. Numbers from this module are comparable with published Set5/Set14 tables.

`blockiness` scores the 8x8 blocking a JPEG leaves (and a network may learn to keep or sharpen).

For 16-bit data `evaluate` adds PSNR/SSIM at the data's own bit depth (`psnr_16bit`,
`ssim_16bit`): rounding to 8 bits first would leave a 12-bit frame stored in 16 bits with 16
gray levels and hide most of the difference between two results.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import to_levels

# MATLAB rgb2ycbcr's Y row for R, G, B in [0, 1].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
_Y_OFFSET = 16.0


def to_y_channel(image: np.ndarray) -> np.ndarray:
    """Luma of a float image in [0, 1] (HxWx3 RGB, HxWx1 or HxW gray), as float64 HxW in 0..255.

    The image is first rounded to 8 bits. RGB becomes MATLAB `rgb2ycbcr`'s Y (16..235) rounded
    to integer levels; gray is returned as its 8-bit levels.
    """
    levels = _eight_bit_levels(image)
    if levels.ndim == 2:
        return levels
    if levels.shape[2] == 1:
        return levels[:, :, 0]
    if levels.shape[2] == 3:
        return np.round(_Y_OFFSET + levels @ (_Y_WEIGHTS / 255.0))
    raise ValueError(f"expected 1 or 3 channels, got image of shape {image.shape}")


def blockiness(image: np.ndarray, scale: int = 1, block: int = 8) -> float:
    """How much the `block`x`block` grid of a JPEG-coded LR image shows in `image`, that LR image
    (`scale` 1) or its x`scale` upscale (HxWx3 RGB, HxWx1 or HxW gray, float in [0, 1]; LR pixel
    i covering HR pixels scale*i .. scale*i + scale - 1): the mean squared difference between
    neighbouring pixels across the grid's lines (every `block * scale` pixels: every 16th for an
    x2 output), divided by the same across the other LR pixel boundaries (every `scale` pixels),
    over rows and columns together, on the luma (`to_y_channel`). Comparing boundaries of one
    kind keeps an upscale's smooth insides out of it. About 1 without blocking (0.92-1.12 on Set5's
    LR images), above 1 with it (Set5 LR at JPEG quality 50: 1.09-1.98). Raises ValueError for an
    image under two blocks per side, or with no differences off the grid."""
    luma = to_y_channel(image)
    period = block * scale
    if min(luma.shape) < 2 * period:
        raise ValueError(f"blockiness needs an image of at least {2 * period} pixels per side, got {luma.shape}")
    on, off = [], []
    for diffs in (np.diff(luma, axis=1), np.diff(luma, axis=0).T):
        position = np.arange(diffs.shape[1]) + 1  # the difference between pixels position - 1 and position
        across_pixels, across_blocks = position % scale == 0, position % period == 0
        on.append(diffs[:, across_blocks].ravel() ** 2)
        off.append(diffs[:, across_pixels & ~across_blocks].ravel() ** 2)
    elsewhere = np.mean(np.concatenate(off))
    if elsewhere == 0:
        raise ValueError("blockiness of a flat image (no differences between neighbours off the grid) is undefined")
    return float(np.mean(np.concatenate(on)) / elsewhere)


def calculate_psnr(
    img: np.ndarray, img2: np.ndarray, crop_border: int, test_y_channel: bool = True
) -> float:
    """PSNR in dB (peak 255; inf when identical) of two float [0, 1] images, HxWxC or HxW.

    `crop_border` pixels are shaved from every border. With test_y_channel the Y channel (or the
    gray levels) is compared, otherwise all channels of the 8-bit-rounded images.
    """
    first, second = _prepare(img, img2, crop_border, test_y_channel)
    mse = np.mean((first - second) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def calculate_ssim(
    img: np.ndarray, img2: np.ndarray, crop_border: int, test_y_channel: bool = True
) -> float:
    """SSIM (unitless, 1.0 when identical) of two float [0, 1] images, HxWxC or HxW.

    `crop_border` pixels are shaved from every border. With test_y_channel the Y channel (or the
    gray levels) is compared, otherwise SSIM is averaged over the channels of the 8-bit-rounded
    images.
    """
    first, second = _prepare(img, img2, crop_border, test_y_channel)
    return _ssim(first, second, 255)


def _ssim(first: np.ndarray, second: np.ndarray, peak: float) -> float:
    """SSIM of Wang et al. as the MATLAB scripts compute it, on levels with the given peak."""
    return float(
        structural_similarity(
            first,
            second,
            data_range=peak,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=2 if first.ndim == 3 else None,
        )
    )


def evaluate(
    sr: np.ndarray, gt: np.ndarray, scale: float | tuple[float, float], bit_depth: int = 8
) -> dict[str, float]:
    """Score a super-resolved float [0, 1] image against its ground truth (HxWxC or HxW).

    Returns {'psnr': Y-channel PSNR in dB, 'ssim': Y-channel SSIM, 'psnr_rgb': PSNR in dB over all
    channels} (for gray images 'psnr_rgb' equals 'psnr'). `scale` is the SR factor, one number or
    a (vertical, horizontal) pair; ceil(max(scale)) pixels are shaved from every border. When the
    ground truth's sides are not multiples of the scale the two images differ by a few pixels: the
    larger one is then cropped from the top-left to the smaller one's size, as the benchmarks'
    `modcrop` does. A difference larger than the shave raises ZSSRError.

    With `bit_depth` 16 (the data's own depth) it also returns 'psnr_16bit' (dB, peak 65535) and
    'ssim_16bit' over all channels of the images rounded to 16-bit levels (gray as it is), with
    the same shave; the 8-bit numbers above stay the protocol's.
    """
    crop_border = int(np.ceil(max(np.atleast_1d(scale))))
    height = min(sr.shape[0], gt.shape[0])
    width = min(sr.shape[1], gt.shape[1])
    size_gap = max(abs(sr.shape[0] - gt.shape[0]), abs(sr.shape[1] - gt.shape[1]))
    if size_gap > crop_border:
        raise ZSSRError(
            f"The SR output is {sr.shape[1]}x{sr.shape[0]} px but the ground truth is "
            f"{gt.shape[1]}x{gt.shape[0]} px, more than the x{_format_scale(scale)} rounding can explain; pass "
            "the high-resolution image that the low-resolution input was made from."
        )
    sr = sr[:height, :width]
    gt = gt[:height, :width]
    scores = {
        "psnr": calculate_psnr(sr, gt, crop_border),
        "ssim": calculate_ssim(sr, gt, crop_border),
        "psnr_rgb": calculate_psnr(sr, gt, crop_border, test_y_channel=False),
    }
    if bit_depth == 16:
        first, second = (_shave(_levels(image, 16), crop_border) for image in _same_shape(sr, gt))
        mse = np.mean((first - second) ** 2)
        scores["psnr_16bit"] = float("inf") if mse == 0 else float(10.0 * np.log10(65535.0**2 / mse))
        scores["ssim_16bit"] = _ssim(first, second, 65535)
    elif bit_depth != 8:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    return scores


def _format_scale(scale) -> str:
    """'2' for 2 or (2, 2), '1.5x2' for (1.5, 2)."""
    factors = [float(f) for f in np.atleast_1d(scale)]
    return f"{factors[0]:g}" if len(set(factors)) == 1 else "x".join(f"{f:g}" for f in factors)


def _eight_bit_levels(image: np.ndarray) -> np.ndarray:
    return _levels(image, 8)


def _levels(image: np.ndarray, bit_depth: int) -> np.ndarray:
    # Integer images would be scaled by 255 a second time and score as garbage without an error.
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    return to_levels(image, bit_depth).astype(np.float64)


def _same_shape(img: np.ndarray, img2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if img.shape != img2.shape:
        raise ZSSRError(
            f"Cannot compare images of different shapes {img.shape} and {img2.shape}; pass the "
            "output and the ground truth at the same size and with the same channels."
        )
    return img, img2


def _shave(levels: np.ndarray, crop_border: int) -> np.ndarray:
    return levels[crop_border:-crop_border, crop_border:-crop_border] if crop_border > 0 else levels


def _prepare(
    img: np.ndarray, img2: np.ndarray, crop_border: int, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    _same_shape(img, img2)
    convert = to_y_channel if test_y_channel else _eight_bit_levels
    first, second = _shave(convert(img), crop_border), _shave(convert(img2), crop_border)
    if first.size == 0:
        raise ZSSRError(
            f"Shaving {crop_border} px from each border of a {img.shape[1]}x{img.shape[0]} px "
            "image leaves nothing to compare; use larger images or a smaller crop_border."
        )
    return first, second
