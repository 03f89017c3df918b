"""A config's settings in words and names: scale factors in labels and file names, the output
file stem, the learning-rate schedule for progress lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zssr_tf.config.schema import Config, TrainConfig
    from zssr_tf.image_io import ImageInfo


def describe_schedule(train: TrainConfig) -> str:
    """The learning-rate schedule of `train` in words, for progress lines."""
    if train.learning_rate_schedule == "cosine":
        return f"cosine decay from {train.learning_rate:g} over {train.max_iters} iterations"
    if train.learning_rate_schedule == "step":
        return (f"{train.learning_rate:g}, x{train.learning_rate_step_factor:g} every "
                f"{train.learning_rate_step_every} iterations, at most {train.max_iters}")
    return f"{train.learning_rate:g}, slope/std policy, at most {train.max_iters} iterations"


def format_scale(sf) -> str:
    """'x2' for a square factor (2, 2), 'x1.5x2' for (1.5, 2): in labels, tags and file names."""
    return f"x{sf[0]:g}" if sf[0] == sf[1] else f"x{sf[0]:g}x{sf[1]:g}"


def output_stem(info: ImageInfo, config: Config) -> str:
    """`<input stem>_x<scale>`, e.g. baby_x2 or baby_x1.5x2 for a non-square final step."""
    return f"{Path(info.path).stem}_{format_scale(config.scale.scale_factors[-1])}"
