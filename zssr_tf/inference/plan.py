"""The scale-step plan: what every scale step of a config upscales, by how much, to which size.

Each step upscales its *base*: the input image, or after a base change the output of the last
step whose factor is in `scale.base_change_sfs` (DESIGN §1.8); its factor relative to the base
is its `scale_factor` divided by the base's (`config.scale_step_bases`, which the config's own
validation uses too). Every user of the sizes (the trainer, re-applying trained networks, the
pre-flight checks) takes them from `plan_scale_steps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zssr_tf.config import Config, scale_step_bases


@dataclass(frozen=True)
class PlannedStep:
    """One scale step of a plan. `scale_factor` (sy, sx) is relative to the original input,
    `relative_sf` to the step's own input, which is the original input when `base_index` is None
    and else the output of step `base_index`. `input_shape` and `output_shape` are (h, w) in
    pixels. `changes_base`: this step's output is the input of the steps after it."""

    index: int
    scale_factor: tuple[float, float]
    relative_sf: tuple[float, float]
    base_index: int | None
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    changes_base: bool
    back_projection_iters: int


def step_output_shape(input_shape: tuple[int, int], relative_sf: tuple[float, float]) -> tuple[int, int]:
    """(H, W) of a scale step's output: the input's (h, w) times the step's factors, rounded up."""
    return tuple(int(math.ceil(n * s - 1e-9)) for n, s in zip(input_shape, relative_sf))


def plan_scale_steps(input_shape: tuple[int, int], config: Config) -> list[PlannedStep]:
    """The scale steps of `config` for an input of `input_shape` (h, w) pixels, in order: each
    step's factors, input and output sizes and base (see `PlannedStep`; the bases and relative
    factors are `config.scale_step_bases`). The last step's `output_shape` is the size of the
    final result."""
    steps: list[PlannedStep] = []
    s = config.scale
    for index, ((base_index, relative_sf), sf, bp_iters) in enumerate(
            zip(scale_step_bases(s), s.scale_factors, config.back_projection_per_step)):
        step_input = tuple(input_shape[:2]) if base_index is None else steps[base_index].output_shape
        steps.append(PlannedStep(index, sf, relative_sf, base_index, step_input,
                                 step_output_shape(step_input, relative_sf), sf in s.base_change_sfs, bp_iters))
    return steps
