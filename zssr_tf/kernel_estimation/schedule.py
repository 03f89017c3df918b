"""KernelGAN's schedule of loss weights and learning rates (the paper code's "Learner").

Plain Python state, updated once after every training iteration with that iteration's bicubic
loss; the training step reads the weights from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from zssr_tf.config import KernelEstimationConfig

CONSTRAINTS_SWITCH_BELOW = 5e-3  # the bicubic weight under which centralisation and sparsity start
LEARNING_RATE_DROP = 10.0


@dataclass
class ConstraintSchedule:
    """The loss weights and learning rate at the current iteration.

    - Learning rate: divided by 10 at every multiple of `estimation_learning_rate_drop_every`
      (750, 1500, 2250 for 3000 iterations).
    - Bicubic phase: once the bicubic loss has been under `bicubic_similar_threshold` on 3
      consecutive iterations, G is "similar to bicubic"; from then on, at every multiple of
      `bicubic_decay_every`, the bicubic weight is divided by `bicubic_decay_factor` down to
      `bicubic_min_weight` (5 -> 0.05 -> 5e-4 -> 5e-6).
    - The first time the bicubic weight falls under 5e-3, centralisation and sparsity switch on
      with their configured weights. If G never gets similar to bicubic they never do.
    """

    config: KernelEstimationConfig
    learning_rate: float = field(init=False)
    bicubic_weight: float = field(init=False)
    centralization_weight: float = 0.0
    sparsity_weight: float = 0.0
    similar_to_bicubic_at: int | None = None
    constraints_on_at: int | None = None
    _below_count: int = 0

    def __post_init__(self):
        self.learning_rate = self.config.estimation_learning_rate
        self.bicubic_weight = self.config.bicubic_weight

    def update(self, iteration: int, bicubic_loss: float) -> None:
        """Advance after iteration `iteration` (0-based) whose bicubic loss was `bicubic_loss`."""
        c = self.config
        if iteration == 0:
            return
        if iteration % c.estimation_learning_rate_drop_every == 0:
            self.learning_rate /= LEARNING_RATE_DROP
        if self.similar_to_bicubic_at is None:
            if bicubic_loss < c.bicubic_similar_threshold:
                if self._below_count >= 2:
                    self.similar_to_bicubic_at = iteration
                else:
                    self._below_count += 1
            else:
                self._below_count = 0
        elif iteration % c.bicubic_decay_every == 0 and self.bicubic_weight > c.bicubic_min_weight:
            self.bicubic_weight = max(self.bicubic_weight / c.bicubic_decay_factor, c.bicubic_min_weight)
            if self.constraints_on_at is None and self.bicubic_weight < CONSTRAINTS_SWITCH_BELOW:
                self.centralization_weight = c.centralization_weight
                self.sparsity_weight = c.sparsity_weight
                self.constraints_on_at = iteration

    def constraints_on_by(self, iteration: int) -> int | None:
        """The iteration at which centralisation and sparsity would switch on if training went on
        after `iteration` (the last one run), found by running `update` on a copy of this
        schedule. None when G never got similar to bicubic, when they are on already, when both
        weigh 0, or when the bicubic weight stops at `bicubic_min_weight` before 5e-3."""
        c = self.config
        if (self.similar_to_bicubic_at is None or self.constraints_on_at is not None
                or not (c.centralization_weight > 0 or c.sparsity_weight > 0)):
            return None
        trial = copy.copy(self)
        while trial.bicubic_weight > c.bicubic_min_weight:  # each decay brings it closer: this ends
            iteration += 1
            trial.update(iteration, 0.0)
            if trial.constraints_on_at is not None:
                return iteration
        return None
