"""Keras callbacks of the ZSSR training loop: per-iteration logs, reconstruction test, the test
against a ground truth, the slope/std learning-rate policy, stopping at the minimum learning
rate, and progress.

They share the batch `logs` dict: `IterationLogs` adds `iteration` (global across scale steps)
and `learning_rate`, `ReconstructionTest` adds `reconstruction_error` on test iterations,
`GroundTruthTest` `psnr`, `ssim` and `true_error` on its test iterations, and later callbacks
(the progress line, tracking) read them; `NonFiniteCheck` stops training at the first NaN/inf
among the loss and the reconstruction error.
Order them as `trainer.ZSSR._run_step` does.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Callable, Sequence

import keras
import numpy as np
from tqdm import tqdm

from zssr_tf.config import RECONSTRUCTION_TEST_MODES
from zssr_tf.errors import ZSSRError
from zssr_tf.inputs import LEARNING_RATE_RANGE
from zssr_tf.metrics import evaluate


class IterationLogs(keras.callbacks.Callback):
    """Makes `logs["loss"]` the loss of this iteration and adds `iteration` and `learning_rate`.

    Keras reports the running mean of the loss over the epoch; resetting the loss tracker
    before each batch turns it into the per-iteration value the paper's curves show.
    `iteration_offset` is the number of iterations run in earlier scale steps.
    """

    def __init__(self, iteration_offset: int = 0):
        super().__init__()
        self.iteration_offset = iteration_offset

    def on_train_batch_begin(self, batch, logs=None):
        self.model.reset_metrics()

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["iteration"] = self.iteration_offset + batch
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReconstructionTest(keras.callbacks.Callback):
    """Every `run_test_every` iterations (from 0), the MSE between the LR input `I` and the
    network's output on `interpolated_son` (I downscaled by sf, upscaled back): the only error
    measurable without ground truth. Adds `reconstruction_error` to the logs and keeps the
    tested iterations and errors of the current `fit` in `iterations` and `errors`.

    `predict` maps a [1, h, w, C] float32 array to the network output of the same shape; pass
    a tiled one (`ensemble.tiled_predict_for`) so memory stays bounded on large images.
    `windows` (from `reconstruction_windows`) restricts the error to those (top, left, height,
    width) boxes of `I`, each run with `margin` pixels of context per side (the network's
    receptive-field radius, so every scored pixel sees what it would see in the whole image);
    None scores the whole image.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], lr_image: np.ndarray,
                 interpolated_son: np.ndarray, run_test_every: int = 50,
                 windows: Sequence[tuple[int, int, int, int]] | None = None, margin: int = 0):
        super().__init__()
        self.predict = predict
        self.lr_image = lr_image
        self.interpolated_son = interpolated_son
        self.run_test_every = run_test_every
        self.windows = windows
        self.margin = margin

    def on_train_begin(self, logs=None):
        self.iterations: list[int] = []
        self.errors: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        if batch % self.run_test_every == 0 and logs is not None:
            logs["reconstruction_error"] = self.error()
            self.iterations.append(batch)
            self.errors.append(logs["reconstruction_error"])

    def error(self) -> float:
        """The reconstruction MSE now (float, image values in [0, 1])."""
        if self.windows is None:
            output = np.clip(self.predict(self.interpolated_son[None])[0], 0, 1)
            return float(np.mean(np.square(output - self.lr_image)))
        height, width = self.lr_image.shape[:2]
        total, count = 0.0, 0
        for top, left, h, w in self.windows:
            y0, x0 = max(top - self.margin, 0), max(left - self.margin, 0)
            y1, x1 = min(top + h + self.margin, height), min(left + w + self.margin, width)
            output = self.predict(self.interpolated_son[None, y0:y1, x0:x1])[0]
            output = np.clip(output[top - y0:top - y0 + h, left - x0:left - x0 + w], 0, 1)
            total += float(np.sum(np.square(output - self.lr_image[top:top + h, left:left + w])))
            count += output.size
        return total / count


class GroundTruthTest(keras.callbacks.Callback):
    """Every `every` iterations (from 0; 0: never), the current network's output on
    `interpolated` (the step's input upscaled to the ground truth's size on the final test's
    grid), without self-ensemble or back-projection, scored against `gt` (H, W, C) float32 in
    [0, 1]: `psnr` (dB) and `ssim`, Y channel shaved by `scale_factor` (`metrics.evaluate`,
    DESIGN §2), and `true_error` (MSE over all channels). Adds the three to the logs and keeps the
    tested iterations and scores of the current `fit` in `iterations` and `scores`. `predict`
    maps [1, H, W, C] float32 to the network output of the same shape (a tiled one, as for
    `ReconstructionTest`)."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], interpolated: np.ndarray, gt: np.ndarray,
                 scale_factor: tuple[float, float], every: int = 200):
        super().__init__()
        self.predict = predict
        self.interpolated = interpolated
        self.gt = gt
        self.scale_factor = scale_factor
        self.every = every

    def on_train_begin(self, logs=None):
        self.iterations: list[int] = []
        self.scores: list[dict[str, float]] = []

    def on_train_batch_end(self, batch, logs=None):
        if self.every and batch % self.every == 0 and logs is not None:
            scores = self.test()
            logs.update(scores)
            self.iterations.append(batch)
            self.scores.append(scores)

    def test(self) -> dict[str, float]:
        """{"psnr", "ssim", "true_error"} of the network now (see the class docstring)."""
        output = np.clip(self.predict(self.interpolated[None])[0], 0, 1)
        scores = evaluate(output, self.gt, self.scale_factor)
        height, width = min(output.shape[0], self.gt.shape[0]), min(output.shape[1], self.gt.shape[1])
        true_error = float(np.mean(np.square(output[:height, :width] - self.gt[:height, :width])))
        return {"psnr": float(scores["psnr"]), "ssim": float(scores["ssim"]), "true_error": true_error}


def reconstruction_windows(shape: tuple[int, int], mode: str = "auto", pixels: int = 512 * 512,
                           seed: int = 0) -> list[tuple[int, int, int, int]] | None:
    """Where the reconstruction test scores an (h, w) image: None for the whole image, else a
    fixed list of (top, left, height, width) crops.

    `mode` "full": the whole image. "crops": square crops of side min(256, h, w, sqrt(pixels)),
    as many as fit in `pixels` and the image's area, at positions drawn once from `seed` so every test scores the
    same pixels and the learning-rate policy sees one comparable series. "auto": "full" when
    h * w <= `pixels`, else "crops". Raises ValueError for another mode.
    """
    if mode not in RECONSTRUCTION_TEST_MODES:
        raise ValueError(f"reconstruction test mode {mode!r} is not one of {RECONSTRUCTION_TEST_MODES}")
    height, width = shape
    if mode == "full" or (mode == "auto" and height * width <= pixels):
        return None
    side = min(256, height, width, math.isqrt(pixels))
    count = max(1, min(pixels, height * width) // (side * side))
    rng = np.random.default_rng((seed, 2))
    return [(int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1)), side, side)
            for _ in range(count)]


class NonFiniteCheck(keras.callbacks.Callback):
    """Stops training at the first iteration whose loss or reconstruction error is NaN or
    infinite (the idea of `keras.callbacks.TerminateOnNaN`), by raising ZSSRError naming the
    iteration, the learning rate and the fix. Raising, rather than setting `stop_training`, keeps
    later callbacks (learning-rate policy, tracking) from acting on the non-finite values; what
    they logged before stays. Place it after `IterationLogs` and `ReconstructionTest`.
    `iteration_offset` is the number of iterations run in earlier scale steps.
    """

    def __init__(self, iteration_offset: int = 0):
        super().__init__()
        self.iteration_offset = iteration_offset

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        for key, what in (("loss", "the loss"), ("reconstruction_error", "the network's reconstruction error")):
            if key in logs and not np.isfinite(float(logs[key])):
                rate = float(self.model.optimizer.learning_rate)
                low, high = LEARNING_RATE_RANGE
                raise ZSSRError(
                    f"training diverged: {what} is {float(logs[key])} at iteration {self.iteration_offset + batch} "
                    f"(learning rate {rate:g}); no result was saved. Lower train.learning_rate (ZSSR trains with "
                    f"{low:g} to {high:g}, default 1e-3) or check the input image and kernel for extreme values")


class LearningRatePolicy(keras.callbacks.Callback):
    """Divide the learning rate by 10 when the reconstruction error stops falling clearly.

    Every `check_every` iterations (at iteration k with (k + 1) % check_every == 0), if more
    than `min_iters` iterations passed since the last change, fit a line to the last
    `slope_range // run_test_every` (at least 3) reconstruction errors; with slope `a` and `s` the standard
    error of the slope, drop when `-change_ratio * a < s`. Iterations of drops are in `drops`.
    `legacy_slope_std` estimates `s` as NumPy < 1.16 did (see `slope_and_std`), as the
    official code ran.
    """

    def __init__(self, check_every: int = 60, min_iters: int = 256, slope_range: int = 256,
                 run_test_every: int = 50, change_ratio: float = 1.5, legacy_slope_std: bool = False):
        super().__init__()
        self.check_every = check_every
        self.min_iters = min_iters
        self.slope_range = slope_range
        self.run_test_every = run_test_every
        self.change_ratio = change_ratio
        self.legacy_slope_std = legacy_slope_std
        self._reset()

    def _reset(self):
        self.test_iterations: list[int] = []
        self.test_errors: list[float] = []
        self.last_change = 0
        self.drops: list[int] = []
        self._warned = False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if "reconstruction_error" in logs:
            self.test_iterations.append(batch)
            self.test_errors.append(logs["reconstruction_error"])
        if (batch + 1) % self.check_every or batch - self.last_change <= self.min_iters:
            return
        n = max(self.slope_range // self.run_test_every, 3)  # slope_and_std needs 3 points
        if len(self.test_errors) < n:
            # Too few tests so far (short runs: config.first_policy_check warns before training);
            # none at all means ReconstructionTest is missing or runs after this callback.
            if not self.test_errors and not self._warned:
                warnings.warn(f"LearningRatePolicy has no reconstruction errors; available logs: {sorted(logs)}",
                              stacklevel=2)
                self._warned = True
            return
        slope, std = slope_and_std(self.test_iterations[-n:], self.test_errors[-n:], self.legacy_slope_std)
        if -self.change_ratio * slope < std:
            optimizer = self.model.optimizer
            new_rate = float(optimizer.learning_rate) / 10
            optimizer.learning_rate.assign(new_rate)
            self.last_change = batch
            self.drops.append(batch)


class CosineLearningRate(keras.callbacks.Callback):
    """A fixed schedule in place of `LearningRatePolicy`: the learning rate at iteration k of
    a `total`-iteration step is its starting rate times (1 + cos(pi * k / total)) / 2 (Loshchilov &
    Hutter, SGDR, ICLR 2017, without restarts). It reaches the small rates the policy ends with in a
    known number of iterations; `StopAtMinLearningRate` ends training once it falls below
    the minimum, about 6% of `total` before the end with the defaults. Applies to `model.optimizer`
    and, when the model has one, `model.discriminator_optimizer`, each from the rate it has when
    training begins (as `StepLearningRate`).

    `retarget(batch, total)` moves the end while training (a time budget's pacing does): the
    decay goes on from the phase it has reached, so the rate does not jump, only its slope changes.
    """

    def __init__(self, total: int = 1000):
        super().__init__()
        self.total = total
        self._initial: list[tuple[object, float]] = []
        self._anchor = (0, 0.0)  # (iteration, phase): the decay runs on linearly from there to `total`
        self.drops: list[int] = []  # a continuous decay has no drops (cf. `LearningRatePolicy.drops`)

    def on_train_begin(self, logs=None):
        self._initial = [(o, float(o.learning_rate)) for o in _optimizers(self.model)]
        self._anchor = (0, 0.0)

    def phase(self, batch: int) -> float:
        """How far the decay is at iteration `batch` (0-based, within this fit), from 0 (the starting
        rate) to 1 (zero, at `total` and after): `batch / total` unless `retarget` moved the end."""
        start, phase = self._anchor
        if batch >= self.total:
            return 1.0
        return phase + (batch - start) * (1 - phase) / (self.total - start)

    def retarget(self, batch: int, total: int) -> None:
        """From iteration `batch` on, decay from the phase reached there (`phase(batch)`) to reach zero
        at iteration `total` (> `batch`) instead of the current `total`."""
        if total <= batch:
            raise ValueError(f"CosineLearningRate.retarget: the new total ({total}) must come after iteration {batch}")
        self._anchor = (batch, self.phase(batch))
        self.total = total

    def on_train_batch_begin(self, batch, logs=None):
        factor = (1 + math.cos(math.pi * self.phase(batch))) / 2
        for optimizer, rate in self._initial:
            optimizer.learning_rate.assign(rate * factor)


def slope_and_std(x, y, legacy: bool = False) -> tuple[float, float]:
    """Least-squares line fit of y on x: (slope, standard error of the slope), as `np.polyfit(cov=True)`.

    NumPy scales the fit's covariance by residuals / (n - 2) (n points, degree 1). Before NumPy
    1.16 it divided by n - 4 instead; `legacy=True` reproduces that, as the
    paper's code ran: with its 5-point fits the slope's variance is 3x larger, so the policy
    drops the learning rate sooner. Needs n >= 3 points (n >= 5 when `legacy`); ValueError else.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if legacy and x.size < 5:
        raise ValueError(f"slope_and_std with legacy=True needs at least 5 points, got {x.size}")
    (slope, _), cov = np.polyfit(x, y, 1, cov=True)
    variance = cov[0, 0] * ((x.size - 2) / (x.size - 4) if legacy else 1.0)
    return float(slope), float(np.sqrt(max(variance, 0.0)))


class StepLearningRate(keras.callbacks.Callback):
    """The "step" learning-rate schedule: iteration k (0-based, within one `fit`) trains at the
    starting rate times `factor ** (k // every)` (ZSRGAN, Lee et al. 2021: halved every 500).
    Applies to `model.optimizer` and, when the model has one, `model.discriminator_optimizer`;
    each starts from the rate it has when training begins. `drops` holds the last iteration
    run at each old rate, as `LearningRatePolicy.drops` does."""

    def __init__(self, every: int = 500, factor: float = 0.5):
        super().__init__()
        self.every = every
        self.factor = factor
        self._initial: list[tuple[object, float]] = []
        self.drops: list[int] = []

    def on_train_begin(self, logs=None):
        self._initial = [(o, float(o.learning_rate)) for o in _optimizers(self.model)]
        self.drops = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch % self.every == 0:
            if batch and self.factor < 1:
                self.drops.append(batch - 1)
            for optimizer, rate in self._initial:
                optimizer.learning_rate.assign(rate * self.factor ** (batch // self.every))


def _optimizers(model) -> list:
    """The optimizers a learning-rate schedule drives: the model's and, for a GAN, its discriminator's."""
    return [o for o in (model.optimizer, getattr(model, "discriminator_optimizer", None)) if o is not None]


class StopAtMinLearningRate(keras.callbacks.Callback):
    """Stop training once the learning rate falls below `min_learning_rate` (9e-6: after the
    drop to 1e-6). `stopped_at` holds the iteration (within this fit) or None."""

    def __init__(self, min_learning_rate: float = 9e-6):
        super().__init__()
        self.min_learning_rate = min_learning_rate
        self.stopped_at: int | None = None

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if float(self.model.optimizer.learning_rate) < self.min_learning_rate:
            self.stopped_at = batch
            self.model.stop_training = True


class ProgressLogger(keras.callbacks.Callback):
    """Progress of a scale step: iteration, loss, learning rate, the latest reconstruction error
    and, when a callback before this one puts `psnr` into the logs (`GroundTruthTest` does with a
    ground truth), the latest PSNR in dB; then the speed, the elapsed time and an ETA. The ETA assumes the
    current iteration rate runs on to `max_iters`: the learning-rate policy may stop sooner, so it
    is an upper bound ("ETA <=").

    `bar`: a tqdm progress bar on `stream`, refreshed every iteration, with the values above as its
    postfix (updated every `every` iterations); default: when `stream` is a terminal. Without a
    bar, one line every `every` iterations, so logs of non-interactive runs stay readable.
    `every=0` shows nothing.
    """

    def __init__(self, every: int = 50, label: str = "", max_iters: int | None = None, stream=None,
                 bar: bool | None = None):
        super().__init__()
        self.every = every
        self.label = label
        self.max_iters = max_iters
        self.stream = stream
        self.bar = bar
        self._reset()

    def _reset(self):
        self._last_error: float | None = None
        self._last_psnr: float | None = None
        self._start = time.perf_counter()
        self._tqdm = None

    def on_train_begin(self, logs=None):
        self._reset()
        stream = self.stream or sys.stdout
        bar = self.bar if self.bar is not None else _is_terminal(stream)
        if self.every and bar:
            self._tqdm = tqdm(total=self.max_iters, desc=self.label.strip(), file=stream, unit="it",
                              dynamic_ncols=True, bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if "reconstruction_error" in logs:
            self._last_error = logs["reconstruction_error"]
        if "psnr" in logs:
            self._last_psnr = logs["psnr"]
        if not self.every:
            return
        if self._tqdm is not None:
            self._tqdm.update(1)
        if batch % self.every:
            return
        values = f"loss {logs.get('loss', float('nan')):.4f}  lr {logs.get('learning_rate', float('nan')):.0e}"
        if self._last_error is not None:
            values += f"  rec.err {self._last_error:.3e}"
        if self._last_psnr is not None:
            values += f"  PSNR {self._last_psnr:.2f} dB"
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(values, refresh=False)
            return
        elapsed = time.perf_counter() - self._start
        total = f"/{self.max_iters}" if self.max_iters else ""
        timing = f"  elapsed {tqdm.format_interval(elapsed)}"
        if batch and elapsed > 0:
            rate = batch / elapsed
            timing = f"  {rate:.1f} it/s" + timing
            if self.max_iters:
                timing += f"  ETA <= {tqdm.format_interval((self.max_iters - batch - 1) / rate)}"
        print(f"{self.label}iter {batch:5d}{total}  {values}{timing}", file=self.stream or sys.stdout, flush=True)

    def on_train_end(self, logs=None):
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ScaleStepCallback(keras.callbacks.Callback):
    """A callback that also hears when each scale step starts and ends (see `trainer.ZSSR`).

    `on_scale_step_begin(step, predict)` gets the `trainer.ScaleStep` and the network's predict
    function; `on_scale_step_end(step, result)` the `trainer.StepResult` after the final test.
    """

    def on_scale_step_begin(self, step, predict) -> None:
        """Called before training of `step` starts."""

    def on_scale_step_end(self, step, result) -> None:
        """Called after the final test of `step`."""
