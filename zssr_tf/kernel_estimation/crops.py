"""Where KernelGAN looks: crop positions drawn in advance, favouring the image's strongest edges.

A kernel shows only where the image has structure, so crops are drawn from a probability map
built from the top 3 % gradients (KernelGAN, Bell-Kligler et al. 2019, supplementary; values
from the paper's code). All positions are drawn once, before training, from a seeded
`np.random.Generator`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from zssr_tf.resize import imresize

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # BT.601 luma
GRADIENT_BORDER = 5  # pixels zeroed at every border of the gradient maps
GRADIENT_PERCENTILE = 97.0  # only gradients above this percentile count
GRADIENT_BLUR = 5  # box blur of the summed indicator maps


class FlatImageWarning(UserWarning):
    """The image has no gradients to favour: crops are drawn uniformly."""


def gradient_map(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 map of where the strongest edges are, mean 1 (all zero for a flat image).

    Grayscale (BT.601) central-difference gradients give |gx|, |gy| and the magnitude; in each
    (5-px border zeroed) the pixels above its 97th percentile are marked. The paper's code clips
    each map to a tiny band above the percentile and shifts it to 0, which is this indicator up
    to float rounding. Each indicator is divided by its count, the three are added, box-blurred
    5 x 5 and scaled to mean 1.
    """
    gray = image[..., :3] @ GRAY_WEIGHTS if image.ndim == 3 and image.shape[2] == 3 else np.squeeze(image)
    gy, gx = np.gradient(gray.astype(np.float64))
    total = np.zeros(gray.shape)
    for grad in (np.abs(gx), np.abs(gy), np.hypot(gx, gy)):
        grad[:GRADIENT_BORDER], grad[-GRADIENT_BORDER:] = 0, 0
        grad[:, :GRADIENT_BORDER], grad[:, -GRADIENT_BORDER:] = 0, 0
        marked = grad > np.percentile(grad, GRADIENT_PERCENTILE)
        if marked.any():
            total += marked / marked.sum()
    total = np.clip(ndimage.uniform_filter(total, GRADIENT_BLUR, mode="constant"), 0, None)
    return total / total.mean() if total.any() else total


def crop_probability(grad_map: np.ndarray, crop_size: int) -> np.ndarray | None:
    """(H, W) probabilities (sum 1) of each pixel being a crop centre, or None when the map is
    all zero. The gradient map is averaged over (crop/2)^2 windows, so crops cover many edges,
    and only centres whose crop fits in the image keep their probability: c in
    [crop//2, n - crop + crop//2] per axis (`draw_top_lefts` puts the top-left at c - crop//2),
    which for an image of side n = crop is the single centre crop//2."""
    half = crop_size // 2
    # The running-sum filter leaves rounding residues around 0: clip them.
    prob = np.clip(ndimage.uniform_filter(grad_map, half, mode="constant"), 0, None)
    last_y, last_x = np.array(prob.shape[:2]) - crop_size + half  # the last centres whose crop fits
    prob[:half], prob[last_y + 1:], prob[:, :half], prob[:, last_x + 1:] = 0, 0, 0, 0
    total = prob.sum()
    return prob / total if total > 0 else None


def draw_top_lefts(prob: np.ndarray, crop_size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) int even (row, col) top-left corners of crop_size crops inside the image.

    Centres are drawn from `prob` (H, W), moved back by crop/2, clamped to the image and made
    even so that crops stay on the x2 grid.
    """
    centres = np.stack(np.unravel_index(rng.choice(prob.size, size=count, p=prob.ravel()), prob.shape), axis=1)
    top_left = np.clip(centres - crop_size // 2, 0, np.array(prob.shape) - crop_size)
    return top_left - top_left % 2


def sample_crop_positions(image: np.ndarray, g_crop: int, d_crop: int, count: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners for `count` generator crops (g_crop) and discriminator crops (d_crop).

    `image`: (H, W, C) float in [0, 1], H and W even. D crops follow the edges of the image
    itself; G crops follow the edges of its bicubic x2 downscale (nearest-upscaled back), so G
    sees where its own output will have edges. A flat image has no edges: crops are uniform and
    a FlatImageWarning says the kernel cannot be trusted.
    Returns two (count, 2) int arrays of even (row, col).
    """
    h, w = image.shape[:2]
    d_prob = crop_probability(gradient_map(image), d_crop)
    small = gradient_map(imresize(image, scale_factor=0.5))
    g_prob = crop_probability(np.kron(small, np.ones((2, 2)))[:h, :w], g_crop)
    if d_prob is None or g_prob is None:
        warnings.warn("the image has no edges to estimate a kernel from (it is flat): crops are drawn "
                      "uniformly and the estimate is unreliable; the bicubic kernel (kernel=given) is the "
                      "safer choice", FlatImageWarning, stacklevel=2)
        d_prob = g_prob = np.full((h, w), 1.0 / (h * w))
    return draw_top_lefts(g_prob, g_crop, count, rng), draw_top_lefts(d_prob, d_crop, count, rng)


def training_inputs(image: np.ndarray, config, d_size: int, rng: np.random.Generator):
    """The inputs of every estimation iteration, drawn from `rng` in a fixed order (all crop
    positions first, `sample_crop_positions`; then per iteration the real crop's noise and the
    fake's): yields (g_input (1, g, g, C), d_real (1, d, d, C), fake_noise (1, d, d, C)) float32
    for `config.estimation_iters` iterations. `image`: the prepared (h, w, C) float32 in [-1, 1];
    `config`: the KernelEstimationConfig (generator_crop_size, d_noise_std, accumulate_d_noise).
    The real crops get noise of 2 x d_noise_std ([-1, 1] units: 1/255 in [0, 1] units); with
    accumulate_d_noise (the KernelGAN code's behaviour) it is added to `image` in place."""
    g_size = config.generator_crop_size
    g_corners, d_corners = sample_crop_positions((image + 1) / 2, g_size, d_size, config.estimation_iters, rng)
    for (gy, gx), (dy, dx) in zip(g_corners, d_corners):
        real_view = image[dy:dy + d_size, dx:dx + d_size]
        real_noise = rng.normal(0, 2 * config.d_noise_std, real_view.shape).astype(np.float32)
        if config.accumulate_d_noise:
            real_view += real_noise
            d_real = real_view[None].copy()
        else:
            d_real = (real_view + real_noise)[None]
        fake_noise = rng.normal(0, config.d_noise_std, (1, d_size, d_size, image.shape[2])).astype(np.float32)
        yield image[None, gy:gy + g_size, gx:gx + g_size], d_real, fake_noise
