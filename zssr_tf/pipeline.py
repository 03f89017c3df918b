"""From a read image to files on disk: run ZSSR, save SR and bicubic images, evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zssr_tf.augment import kernel_symmetries
from zssr_tf.config import Config
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.metrics import evaluate
from zssr_tf.resize import imresize
from zssr_tf.trainer import ZSSR, ZSSRResult, final_test, format_scale, step_output_shape


@dataclass
class Outcome:
    """A finished run: the result, where its images were written, metrics when GT was given."""

    result: ZSSRResult
    sr_path: Path
    bicubic_path: Path
    metrics: dict[str, dict[str, float]] | None


def output_stem(info: ImageInfo, config: Config) -> str:
    """`<input stem>_x<scale>`, e.g. baby_x2 or baby_x1.5x2 for a non-square final step."""
    return f"{Path(info.path).stem}_{format_scale(config.scale.scale_factors[-1])}"


def super_resolve_file(config: Config, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                       out_dir: Path, gt: np.ndarray | None = None, kernels: Sequence[np.ndarray] | None = None,
                       callbacks: Sequence[keras.callbacks.Callback] = ()) -> Outcome:
    """Run ZSSR on `image` (h, w, C) and write `<stem>_zssr.png` and `<stem>_bicubic.png` to
    `out_dir` with the input's bit depth and channel layout (alpha upscaled with bicubic)."""
    result = ZSSR(config, callbacks=callbacks).run(image, gt=gt, kernels=kernels)
    stem = output_stem(info, config)
    big_alpha = _upscale_alpha(alpha, config, result.sr.shape[:2])
    sr_path = Path(out_dir) / f"{stem}_zssr.png"
    bicubic_path = Path(out_dir) / f"{stem}_bicubic.png"
    write_image(sr_path, result.sr, info, alpha=big_alpha)
    write_image(bicubic_path, result.bicubic, info, alpha=big_alpha)
    metrics = None
    if gt is not None:
        scale = config.scale.scale_factors[-1]
        metrics = {"zssr": evaluate(result.sr, gt, scale), "bicubic": evaluate(result.bicubic, gt, scale)}
    return Outcome(result, sr_path, bicubic_path, metrics)


def super_resolve_with_models(config: Config, models: Sequence[keras.Model], kernels: Sequence[np.ndarray | None],
                              image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo, out_dir: Path) -> Path:
    """Super-resolve `image` (h, w, C) float32 in [0, 1] with networks trained earlier, one per
    scale step of `config`, without training: each step's final test as in training (tiled
    self-ensemble and back-projection with `config`'s settings, base changes). `kernels[i]`: step
    i's numeric kernel as aligned for training (`kernels.align_kernel`), or None for
    scale.downscale_method; its symmetries choose the ensemble's transforms as in training. Writes and returns
    `<stem>_zssr.png` in `out_dir`."""
    channels = models[0].input_shape[-1]
    if image.shape[2] != channels:
        raise ZSSRError(f"{info.path} has {image.shape[2]} channel(s) but the networks were trained on "
                        f"{channels}-channel images; convert the image first")
    base_input, base_sf = np.clip(image, 0, 1).astype(np.float32), (1.0, 1.0)
    steps = zip(config.scale.scale_factors, config.back_projection_per_step, models, kernels)
    for sf, bp_iters, model, kernel in steps:
        relative_sf = (sf[0] / base_sf[0], sf[1] / base_sf[1])
        symmetries = (0,)
        if kernel is None:
            kernel = config.scale.downscale_method
        elif config.scale.kernel_symmetry:
            symmetries = kernel_symmetries(kernel)  # about its centre of mass: the alignment shift does not matter
        output = final_test(_numpy_predict(model), config, base_input, relative_sf,
                            step_output_shape(base_input.shape[:2], relative_sf), kernel, bp_iters, symmetries)
        if sf in config.scale.base_change_sfs:
            base_input, base_sf = output, sf
    sr_path = Path(out_dir) / f"{output_stem(info, config)}_zssr.png"
    write_image(sr_path, output, info, alpha=_upscale_alpha(alpha, config, output.shape[:2]))
    return sr_path


def _upscale_alpha(alpha: np.ndarray | None, config: Config, shape: tuple[int, int]) -> np.ndarray | None:
    """The alpha channel (h, w, 1) upscaled with bicubic to the output's (H, W), or None."""
    if alpha is None:
        return None
    return np.clip(imresize(alpha, scale_factor=config.scale.scale_factors[-1], output_shape=shape), 0, 1)


def _numpy_predict(model: keras.Model):
    return lambda batch: keras.ops.convert_to_numpy(model(np.asarray(batch, np.float32), training=False))
