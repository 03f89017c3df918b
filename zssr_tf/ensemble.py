"""The final test: geometric self-ensemble with per-variant back-projection and a median."""

from __future__ import annotations

from typing import Callable

import numpy as np

from zssr_tf.augment import dihedral, undo_dihedral
from zssr_tf.resize import imresize

Predict = Callable[[np.ndarray], np.ndarray]


def back_projection(sr: np.ndarray, lr: np.ndarray, scale_factor, down_kernel="cubic",
                    up_method: str = "cubic") -> np.ndarray:
    """One back-projection step: SR + up(LR - down(SR)), clipped to [0, 1].

    `sr` (H, W, C) and `lr` (h, w, C) float32; `scale_factor` (sy, sx) maps lr to sr.
    Reduces the error between down(SR) and the LR input.
    """
    sy, sx = scale_factor
    down = imresize(sr, scale_factor=(1 / sy, 1 / sx), output_shape=lr.shape[:2], kernel=down_kernel)
    correction = imresize(lr - down, scale_factor=(sy, sx), output_shape=sr.shape[:2], kernel=up_method)
    return np.clip(sr + correction, 0, 1)


def ensemble_transforms(scale_factor, output_flip: bool) -> list[int]:
    """Dihedral transforms used by the self-ensemble: all 8; only 0/180-degree ones (with
    mirrors) when sy != sx, since a 90-degree turn would swap the factors; [0] without flip."""
    if not output_flip:
        return [0]
    return [0, 2, 4, 6] if scale_factor[0] != scale_factor[1] else list(range(8))


def geometric_self_ensemble(predict: Predict, lr_image: np.ndarray, scale_factor, output_shape,
                            down_kernel="cubic", up_method: str = "cubic", back_projection_iters: int = 10,
                            output_flip: bool = True) -> np.ndarray:
    """Super-resolve `lr_image` (h, w, C) to `output_shape` (H, W).

    For each transform: transform the input, upscale it with `up_method`, run `predict`
    ([1, H', W', C] -> same), undo the transform, back-project `back_projection_iters` times.
    The per-pixel median of the variants is back-projected again. Returns float32 (H, W, C).
    """
    outputs = []
    for k in ensemble_transforms(scale_factor, output_flip):
        variant = dihedral(lr_image, k)
        variant_shape = output_shape if k % 2 == 0 else output_shape[::-1]
        variant_scale = scale_factor if k % 2 == 0 else scale_factor[::-1]
        interpolated = imresize(variant, scale_factor=variant_scale, output_shape=variant_shape, kernel=up_method)
        sr = undo_dihedral(np.clip(predict(interpolated[None])[0], 0, 1), k)
        outputs.append(_back_project(sr, lr_image, scale_factor, down_kernel, up_method, back_projection_iters))
    median = np.median(np.stack(outputs), axis=0).astype(np.float32)
    return _back_project(median, lr_image, scale_factor, down_kernel, up_method, back_projection_iters)


def _back_project(sr, lr, scale_factor, down_kernel, up_method, iterations: int) -> np.ndarray:
    for _ in range(iterations):
        sr = back_projection(sr, lr, scale_factor, down_kernel, up_method)
    return sr
