"""The Keras callback of a tracked run (`MLflowLogger`): per-iteration metrics, scores against
the ground truth, each scale step's network and outputs.

Per-iteration metrics are generic: every number in the Keras batch `logs` dict is logged at the
global iteration, `reconstruction_error` as `test/reconstruction_error` and every other key as
`train/<key>` (`train/loss`, `train/learning_rate`, and whatever a training step or callback adds,
e.g. a GAN's `d_loss` becomes `train/d_loss` with no change here). `iteration` is the step, not a
metric.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from zssr_tf.callbacks import ScaleStepCallback
from zssr_tf.ensemble import tiled_predict_for
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.inference.trained import save_step
from zssr_tf.kernels import upscale_offset
from zssr_tf.metrics import evaluate
from zssr_tf.resize import imresize

if TYPE_CHECKING:
    from zssr_tf.tracking.run import TrackedRun

# Keras log keys that are not per-iteration training values.
NOT_LOGGED = frozenset({"iteration", "batch", "size"})
# Log keys that get their own group instead of train/.
GROUPS = {"reconstruction_error": "test/reconstruction_error"}
CURVES = ("train/loss", "train/learning_rate", "test/reconstruction_error", "gt/true_error")
# ZSRGAN's generator loss terms (gan.model.ZSRGAN logs each whose weight is > 0), drawn under its total.
LOSS_TERMS = ("train/l1_loss", "train/perceptual_loss", "train/adversarial_loss")


class MLflowLogger(ScaleStepCallback):
    """Keras callback of a `TrackedRun`: starts the run when the first scale step begins (so
    input errors the trainer finds leave no run behind), queues the per-iteration metrics (see
    the module docstrings) in the run's buffer, keeps the curves in `history` for the figures,
    and saves each finished scale step's network (and the outputs of all steps but the last) in
    the run's folder. Needs the `iteration` key that `IterationLogs` adds. With a ground truth,
    puts the latest `psnr` (dB) into the logs of test iterations for callbacks after it (the
    progress line). After the start, a failure here warns once and never stops training.
    """

    def __init__(self, run: TrackedRun):
        super().__init__()
        self.run = run
        # Run state spans all scale steps (one `fit` each), so it is not reset in on_train_begin.
        self.history: dict[str, list[tuple[int, float]]] = {key: [] for key in CURVES + LOSS_TERMS}
        self.step_starts: list[int] = []
        self._step = None
        self._predict = None
        self._interpolated: np.ndarray | None = None
        self._warned = False

    @property
    def _several_steps(self) -> bool:
        return len(self.run.config.scale.scale_factors) > 1

    def on_scale_step_begin(self, step, predict) -> None:
        self.run.start()  # raises ZSSRError when the store fails: nothing has been trained yet
        with self._guard():
            cfg = self.run.config
            self._step, self._interpolated = step, None
            self._predict = tiled_predict_for(predict, cfg)
            self.step_starts.append(step.iteration_offset)
            if self._several_steps:  # with one step the series would be a constant 0
                self._add("train/scale_step", step.index, step.iteration_offset)
            if step.gt is not None:
                # On the grid of the final test (kernel_alignment), so the curves score what it would.
                self._interpolated = imresize(step.input_image, scale_factor=step.relative_sf,
                                              output_shape=step.output_shape, kernel=cfg.scale.upscale_method,
                                              offset=upscale_offset(step.relative_sf, cfg.scale.kernel_alignment))
                if self._several_steps:
                    bicubic = evaluate(np.clip(self._interpolated, 0, 1), step.gt, step.scale_factor)
                    self._add("step/bicubic_psnr", bicubic["psnr"], step.index)
                    self._add("step/bicubic_ssim", bicubic["ssim"], step.index)

    def on_train_batch_end(self, batch, logs=None) -> None:
        if logs is None:
            return
        iteration = logs.get("iteration")
        if iteration is None:
            self._warn(f"no 'iteration' in the logs (is IterationLogs first?); available logs: {sorted(logs)}")
            return
        with self._guard():
            for key, value in list(logs.items()):
                if key not in NOT_LOGGED and isinstance(value, (int, float, np.number)):
                    self._add(GROUPS.get(key, f"train/{key}"), value, iteration)
            every = self.run.config.train.gt_test_every
            if self._interpolated is not None and every and batch % every == 0:
                logs["psnr"] = self.evaluate_against_gt(iteration)

    def on_scale_step_end(self, step, result) -> None:
        with self._guard():
            if self._several_steps:  # with one step these equal the run's final/ and run/ values
                for key, value in (("step/iterations", result.iterations),
                                   ("step/train_seconds", result.train_seconds),
                                   ("step/test_seconds", result.test_seconds)):
                    self._add(key, value, step.index)
                if step.gt is not None:
                    scores = evaluate(result.output, step.gt, step.scale_factor)
                    self._add("step/psnr", scores["psnr"], step.index)
                    self._add("step/ssim", scores["ssim"], step.index)
            save_step(self.run.folder / "model", step.index, result.network,
                      step.kernel if isinstance(step.kernel, np.ndarray) else None, step.kernel_symmetries)
            if step.index < len(self.run.config.scale.scale_factors) - 1:
                sy, sx = step.scale_factor
                path = self.run.folder / "outputs" / f"step_{step.index}_x{sy:g}x{sx:g}.png"
                height, width, channels = result.output.shape
                write_image(path, result.output, ImageInfo(str(path), 8, channels, height, width))

    def evaluate_against_gt(self, iteration: int) -> float:
        """Score the current network (no ensemble, no back-projection) on the whole bicubic-upscaled
        input against the step's ground truth; log `gt/psnr`, `gt/ssim` (Y, shaved: DESIGN §2) and
        `gt/true_error` (MSE, all channels) at `iteration`; return the PSNR in dB."""
        step = self._step
        output = np.clip(self._predict(self._interpolated[None])[0], 0, 1)
        scores = evaluate(output, step.gt, step.scale_factor)
        height, width = min(output.shape[0], step.gt.shape[0]), min(output.shape[1], step.gt.shape[1])
        true_error = float(np.mean(np.square(output[:height, :width] - step.gt[:height, :width])))
        for key, value in (("gt/psnr", scores["psnr"]), ("gt/ssim", scores["ssim"]), ("gt/true_error", true_error)):
            self._add(key, value, iteration)
        return float(scores["psnr"])

    def _add(self, key: str, value: float, step: int) -> None:
        self.run.buffer.add(key, value, step)
        if key in self.history:
            self.history[key].append((int(step), float(value)))

    @contextmanager
    def _guard(self):
        try:
            yield
        except Exception as err:  # tracking must never stop a long training run
            self._warn(f"{type(err).__name__}: {err}")

    def _warn(self, message: str) -> None:
        if not self._warned:
            warnings.warn(f"MLflowLogger: {message}; training goes on, some tracking data may be missing",
                          stacklevel=3)
            self._warned = True
