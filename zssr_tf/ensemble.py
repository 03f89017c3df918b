"""The final test: geometric self-ensemble with per-variant back-projection and a median."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from zssr_tf.augment import dihedral, undo_dihedral
from zssr_tf.kernels import upscale_offset
from zssr_tf.config import Config
from zssr_tf.resize import imresize

Predict = Callable[[np.ndarray], np.ndarray]


def back_projection(sr: np.ndarray, lr: np.ndarray, scale_factor, down_kernel="cubic",
                    up_method: str = "cubic", up_offset=(0.0, 0.0)) -> np.ndarray:
    """One back-projection step: SR + up(LR - down(SR)), clipped to [0, 1].

    `sr` (H, W, C) and `lr` (h, w, C) float32; `scale_factor` (sy, sx) maps lr to sr.
    `down_kernel` a method name or an aligned numeric kernel; `up_offset` the upscaling grid of the
    same alignment (`kernels.upscale_offset`), so the correction lands where the error came from.
    Reduces the error between down(SR) and the LR input.
    """
    sy, sx = scale_factor
    down = imresize(sr, scale_factor=(1 / sy, 1 / sx), output_shape=lr.shape[:2], kernel=down_kernel)
    correction = imresize(lr - down, scale_factor=(sy, sx), output_shape=sr.shape[:2], kernel=up_method,
                          offset=up_offset)
    return np.clip(sr + correction, 0, 1)


def tiled_predict(predict: Predict, tile_size: int, margin: int) -> Predict:
    """Wrap `predict` to run on tile_size x tile_size tiles of large inputs, each read with
    `margin` extra pixels per side and cropped back, so memory stays bounded.

    With `margin` >= the network's receptive-field radius (its depth, for 3x3 convs) every
    output pixel sees the same input as without tiling: the seams are invisible. Inputs no
    larger than one tile go through whole. Input/output: [N, H, W, C] float32.
    """

    def run(batch: np.ndarray) -> np.ndarray:
        height, width = batch.shape[1:3]
        if height <= tile_size and width <= tile_size:
            return predict(batch)
        out = np.empty(batch.shape, np.float32)
        for y0 in range(0, height, tile_size):
            for x0 in range(0, width, tile_size):
                y1, x1 = min(y0 + tile_size, height), min(x0 + tile_size, width)
                ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
                piece = predict(batch[:, ya:min(y1 + margin, height), xa:min(x1 + margin, width)])
                out[:, y0:y1, x0:x1] = piece[:, y0 - ya:y1 - ya, x0 - xa:x1 - xa]
        return out

    return run


def auto_tile_size(width: int, budget_bytes: int | None = None) -> int:
    """Largest square tile whose activations (about 4 live float32 maps of `width` channels)
    fit in `budget_bytes`: by default a quarter of the available memory, at most 2 GiB."""
    if budget_bytes is None:
        budget_bytes = min(2 << 30, _available_memory() // 4)
    return max(64, int(math.sqrt(budget_bytes / (4 * 4 * width))))


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30  # no /proc (macOS, Windows): assume a modest machine


def tiled_predict_for(predict: Predict, config: Config) -> Predict:
    """`predict` run in tiles of config.test.tile_size (0: sized from free memory), seamless."""
    # A margin of `depth` pixels covers the receptive field of depth 3x3 convs.
    return tiled_predict(predict, config.test.tile_size or auto_tile_size(config.model.width), config.model.depth)


def ensemble_transforms(scale_factor, output_flip: bool, kernel_symmetries=(0,)) -> list[int]:
    """Dihedral transforms used by the self-ensemble: all 8 with `output_flip`, else only those
    in `kernel_symmetries` (the transforms a given kernel is symmetric under; (0,) when none);
    of those, only 0/180-degree ones (with mirrors) when sy != sx, since a 90-degree turn would
    swap the factors."""
    transforms = range(8) if output_flip else kernel_symmetries
    return [k for k in transforms if k % 2 == 0 or scale_factor[0] == scale_factor[1]]


def reversed_axes(k: int) -> tuple[bool, bool]:
    """Whether each axis of `dihedral(image, k)` runs against the original axis it came from."""
    y, x = np.indices((2, 2))
    ty, tx = dihedral(y, k), dihedral(x, k)
    return (bool(ty[1, 0] + tx[1, 0] < ty[0, 0] + tx[0, 0]), bool(ty[0, 1] + tx[0, 1] < ty[0, 0] + tx[0, 0]))


def geometric_self_ensemble(predict: Predict, lr_image: np.ndarray, scale_factor, output_shape,
                            down_kernel="cubic", up_method: str = "cubic", back_projection_iters: int = 10,
                            output_flip: bool = True, alignment: str = "block_centre",
                            kernel_symmetries=(0,)) -> np.ndarray:
    """Super-resolve `lr_image` (h, w, C) to `output_shape` (H, W).

    For each transform (`ensemble_transforms`): transform the input, upscale it with `up_method`,
    run `predict` ([1, H', W', C] -> same), undo the transform, back-project
    `back_projection_iters` times. The per-pixel median of the variants is back-projected again.
    `alignment` ("block_centre" or "direct", see `kernels.align_kernel`) sets the upscaling grid.
    Under "direct" a transform that reverses an axis moves the LR grid's phase by s - 1 HR pixels
    (HR pixel s*i becomes s*(h-1-i) + s - 1), so each variant is upscaled on the grid that lands
    back on HR pixels s*i after the transform is undone (`kernels.upscale_offset`): an identity
    network returns the same upscale from every variant. Returns float32 (H, W, C).
    """
    up_offset = upscale_offset(scale_factor, alignment)
    outputs = []
    for k in ensemble_transforms(scale_factor, output_flip, kernel_symmetries):
        variant = dihedral(lr_image, k)
        variant_shape = output_shape if k % 2 == 0 else output_shape[::-1]
        variant_scale = scale_factor if k % 2 == 0 else scale_factor[::-1]
        interpolated = imresize(variant, scale_factor=variant_scale, output_shape=variant_shape, kernel=up_method,
                                offset=upscale_offset(variant_scale, alignment, reversed_axes(k)))
        sr = undo_dihedral(np.clip(predict(interpolated[None])[0], 0, 1), k)
        outputs.append(_back_project(sr, lr_image, scale_factor, down_kernel, up_method, up_offset,
                                     back_projection_iters))
    median = np.median(np.stack(outputs), axis=0).astype(np.float32)
    return _back_project(median, lr_image, scale_factor, down_kernel, up_method, up_offset, back_projection_iters)


def _back_project(sr, lr, scale_factor, down_kernel, up_method, up_offset, iterations: int) -> np.ndarray:
    for _ in range(iterations):
        sr = back_projection(sr, lr, scale_factor, down_kernel, up_method, up_offset)
    return sr
