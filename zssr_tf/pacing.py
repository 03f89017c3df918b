"""Keeping ZSSR's training on time for a time budget: `time_budget.py` plans the run's lengths
from a few timed iterations; while it trains, `PaceToDeadline` measures the real seconds per
iteration and ends each scale step when its share of the time left runs out.

`Deadline` says when the last final test must be done and how the time left is shared between
the scale steps still to train (`ZSSR(config, deadline=...)` takes it). Under the `cosine`
schedule the pacing moves the decay's end (`callbacks.CosineLearningRate.retarget`, the rate
stays continuous) so that `StopAtMinLearningRate` ends training on time; the `policy` and `step`
schedules have lengths of their own that it cannot change, so it stops them at the step's end
time, wherever their learning rate is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import keras

from zssr_tf.callbacks import CosineLearningRate

# How many times `train.max_iters` a paced fit may run at most: the schedule or the deadline ends
# it, not the fit's limit, even where the plan's measured cost per iteration was far too high.
FIT_HEADROOM = 4


@dataclass(frozen=True)
class Deadline:
    """When a run's ZSSR must be done, and what the plan predicted its parts cost.

    `at`: a `time.perf_counter()` value, when the last scale step's final test should end.
    `step_seconds`: each scale step's planned training seconds (only their ratios count: the time
    left is shared between the steps still to train in these proportions). `final_test`: each
    step's predicted final-test seconds. `setup`: seconds a step costs before its first
    iteration. `min_iters`: the fewest iterations a step trains, even past its end time."""

    at: float
    step_seconds: tuple[float, ...]
    final_test: tuple[float, ...]
    setup: float = 0.0
    min_iters: int = 0

    def step_end(self, index: int, now: float) -> float:
        """The `time.perf_counter()` value at which the training of scale step `index` (0-based)
        should end, when it starts at `now`: its share of what is left after this and later
        steps' final tests and later steps' set-up (never before `now`)."""
        later = len(self.final_test) - index - 1
        left = self.at - now - sum(self.final_test[index:]) - later * self.setup
        remaining = sum(self.step_seconds[index:])
        share = self.step_seconds[index] / remaining if remaining > 0 else 1.0
        return now + max(left, 0.0) * share


def cosine_stop_phase(learning_rate: float, min_learning_rate: float) -> float:
    """The phase (0-1, see `CosineLearningRate.phase`) at which a cosine decay from `learning_rate`
    falls under `min_learning_rate`, where `StopAtMinLearningRate` ends training: about 0.94 with
    the defaults (1e-3, 9e-6); 1 when the minimum is 0 or not under the starting rate."""
    if not 0 < min_learning_rate < learning_rate:
        return 1.0
    return math.acos(2 * min_learning_rate / learning_rate - 1) / math.pi


class PaceToDeadline(keras.callbacks.Callback):
    """Ends one scale step's training at `end_at` (a `clock()` value, seconds).

    After `warmup` iterations, every `check_every` iterations it measures the wall seconds per
    iteration since the check at least `window` iterations back (or the first check), so the
    periodic tests run between checks are counted; with a `CosineLearningRate` `schedule` it then
    moves the decay's end so that the phase reaches `stop_phase` (`cosine_stop_phase`, where
    `StopAtMinLearningRate` ends training) at `end_at` at that speed, never before `min_iters`
    iterations nor after `limit` (the fit's `steps_per_epoch`, so the fit's limit does not cut
    the decay short). With any schedule it stops training (`model.stop_training`) once `end_at`
    has passed and `min_iters` iterations have run. `clock` is `time.perf_counter` unless a test
    gives its own. After training: `stopped_at`, the iteration it stopped at (None when the
    schedule or the fit's limit ended training); `retargets`, the (iteration, new total) pairs."""

    def __init__(self, end_at: float, schedule: CosineLearningRate | None = None, stop_phase: float = 1.0,
                 min_iters: int = 0, limit: int | None = None, warmup: int = 20, check_every: int = 25,
                 window: int = 100, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.end_at = end_at
        self.schedule = schedule
        self.stop_phase = stop_phase
        self.min_iters = min_iters
        self.limit = limit
        self.warmup = warmup
        self.check_every = check_every
        self.window = window
        self.clock = clock
        self._reset()

    def _reset(self):
        self.stopped_at: int | None = None
        self.retargets: list[tuple[int, int]] = []
        self._checks: list[tuple[int, float]] = []  # (iterations run, clock)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_train_batch_end(self, batch, logs=None):
        now, done = self.clock(), batch + 1
        if self.model.stop_training:
            return  # ended by the schedule or a failure
        if now >= self.end_at and done >= self.min_iters:
            self.stopped_at = batch
            self.model.stop_training = True
            return
        if done < self.warmup or (done - self.warmup) % self.check_every:
            return
        self._checks.append((done, now))
        if self.schedule is None or len(self._checks) < 2:
            return
        far_enough = [c for c in self._checks[:-1] if done - c[0] >= self.window]
        since, then = far_enough[-1] if far_enough else self._checks[0]
        seconds_per_iteration = (now - then) / (done - since)
        self._retarget(done, done + (self.end_at - now) / max(seconds_per_iteration, 1e-9))

    def _retarget(self, batch: int, stop_at: float) -> None:
        """Move the cosine's end so that its phase reaches `stop_phase` after `stop_at` iterations,
        going on from iteration `batch` (the next one)."""
        stop_at = max(stop_at, self.min_iters, batch + 1)
        if self.limit is not None:
            stop_at = min(stop_at, self.limit)
        phase = self.schedule.phase(batch)
        if phase >= self.stop_phase:
            return  # the decay ends now either way
        # The last iteration (index stop_at - 1) is the first under the minimum; rounded down, it ends
        # an iteration early rather than late.
        total = max(batch + 1, math.floor(batch + (stop_at - 1 - batch) * (1 - phase) / (self.stop_phase - phase)))
        if total != self.schedule.total:
            self.schedule.retarget(batch, total)
            self.retargets.append((batch, total))
