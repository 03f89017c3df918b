"""From a read image to files on disk: run ZSSR, save SR and bicubic images, evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zssr_tf.config import Config
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.metrics import evaluate
from zssr_tf.resize import imresize
from zssr_tf.trainer import ZSSR, ZSSRResult


@dataclass
class Outcome:
    """A finished run: the result, where its images were written, metrics when GT was given."""

    result: ZSSRResult
    sr_path: Path
    bicubic_path: Path
    metrics: dict[str, dict[str, float]] | None


def output_stem(info: ImageInfo, config: Config) -> str:
    """`<input stem>_x<scale>`, e.g. baby_x2 or baby_x1.5x2 for a non-square final step."""
    sy, sx = config.scale.scale_factors[-1]
    scale = f"{sy:g}" if sy == sx else f"{sy:g}x{sx:g}"
    return f"{Path(info.path).stem}_x{scale}"


def super_resolve_file(config: Config, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                       out_dir: Path, gt: np.ndarray | None = None, kernels: Sequence[np.ndarray] | None = None,
                       callbacks: Sequence[keras.callbacks.Callback] = ()) -> Outcome:
    """Run ZSSR on `image` (h, w, C) and write `<stem>_zssr.png` and `<stem>_bicubic.png` to
    `out_dir` with the input's bit depth and channel layout (alpha upscaled with bicubic)."""
    result = ZSSR(config, callbacks=callbacks).run(image, gt=gt, kernels=kernels)
    stem = output_stem(info, config)
    big_alpha = None
    if alpha is not None:
        big_alpha = np.clip(imresize(alpha, scale_factor=config.scale.scale_factors[-1],
                                     output_shape=result.sr.shape[:2]), 0, 1)
    sr_path = Path(out_dir) / f"{stem}_zssr.png"
    bicubic_path = Path(out_dir) / f"{stem}_bicubic.png"
    write_image(sr_path, result.sr, info, alpha=big_alpha)
    write_image(bicubic_path, result.bicubic, info, alpha=big_alpha)
    metrics = None
    if gt is not None:
        scale = config.scale.scale_factors[-1]
        metrics = {"zssr": evaluate(result.sr, gt, scale), "bicubic": evaluate(result.bicubic, gt, scale)}
    return Outcome(result, sr_path, bicubic_path, metrics)
