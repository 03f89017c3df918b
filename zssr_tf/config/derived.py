"""Numbers that follow from the settings: each scale step's base and factor relative to its own
input (after base changes), and when the learning-rate policy first can act."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zssr_tf.config.schema import ScaleConfig, TrainConfig


def scale_step_bases(s: ScaleConfig) -> list[tuple[int | None, tuple[float, float]]]:
    """Per scale step, (the index of the step whose output it upscales, None for the input image;
    the (sy, sx) factor it upscales that by). The base changes after each step whose factor is in
    base_change_sfs, and the factor is scale_factors divided by the base's (DESIGN §1.8). The one
    statement of this rule: `inference.plan.plan_scale_steps` adds the sizes."""
    bases, base_index, base = [], None, (1.0, 1.0)
    for index, sf in enumerate(s.scale_factors):
        bases.append((base_index, (sf[0] / base[0], sf[1] / base[1])))
        if sf in s.base_change_sfs:
            base_index, base = index, sf
    return bases


def relative_scale_factors(s: ScaleConfig) -> list[tuple[float, float]]:
    """Per scale step, the (sy, sx) factor it upscales its own input by (`scale_step_bases`)."""
    return [relative for _, relative in scale_step_bases(s)]


def first_policy_check(train: TrainConfig) -> int:
    """The first iteration (from 0) at which `callbacks.LearningRatePolicy` may drop the learning
    rate: the first k > min_iters with (k + 1) % learning_rate_policy_check_every == 0 by which the
    reconstruction tests (at 0, run_test_every, ...) number enough for the slope fit."""
    every = train.learning_rate_policy_check_every
    earliest = max(train.min_iters + 1, (tests_needed(train) - 1) * train.run_test_every)
    return -(-(earliest + 1) // every) * every - 1


def tests_needed(train: TrainConfig) -> int:
    """How many reconstruction errors the policy's line fit uses (at least 3, see `callbacks.slope_and_std`)."""
    return max(train.learning_rate_slope_range // train.run_test_every, 3)
