"""The Keras callback of a tracked run (`MLflowLogger`): per-iteration metrics, scores against
the ground truth, each scale step's network and outputs. It computes none of them: the trainer
and its callbacks do, and hand them over in the batch logs, `ScaleStep` and `StepResult`.

Per-iteration metrics are generic: every number in the Keras batch `logs` dict is logged at the
global iteration, `reconstruction_error` as `test/reconstruction_error`, the ground-truth test's
`psnr`, `ssim`, `true_error` (`callbacks.GroundTruthTest`) as `gt/<key>`, and every other key as
`train/<key>` (`train/loss`, `train/learning_rate`, and whatever a training step or callback adds,
e.g. a GAN's `d_loss` becomes `train/d_loss` with no change here). `iteration` is the step, not a
metric.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

from zssr_tf.callbacks import ScaleStepCallback
from zssr_tf.config import format_scale
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.inference.trained import save_step

# Keras log keys that are not per-iteration training values.
NOT_LOGGED = frozenset({"iteration", "batch", "size"})
# Log keys that get their own group instead of train/.
GROUPS = {"reconstruction_error": "test/reconstruction_error", "psnr": "gt/psnr", "ssim": "gt/ssim",
          "true_error": "gt/true_error"}
CURVES = ("train/loss", "train/learning_rate", "test/reconstruction_error", "gt/true_error")
# ZSRGAN's generator loss terms (gan.model.ZSRGAN logs each whose weight is > 0), drawn under its total.
LOSS_TERMS = ("train/l1_loss", "train/perceptual_loss", "train/adversarial_loss")


class MLflowLogger(ScaleStepCallback):
    """Keras callback of a tracked run (`run`: the `run.TrackedRun` whose `start()`, `buffer`,
    `folder` and `config` it uses; the run makes its own logger, so this module does not import
    it): starts the run when the first scale step begins (so input errors the trainer finds leave
    no run behind), queues the per-iteration metrics (listed in docs/tracking.md, "Metric
    reference") in the run's buffer, keeps the curves in `history` for the figures, and saves each finished scale step's
    network (and the outputs of all steps but the last) in the run's folder. Needs the `iteration`
    key that `IterationLogs` adds. After the start, a failure here warns once and never stops
    training.
    """

    def __init__(self, run):
        super().__init__()
        self.run = run
        # Run state spans all scale steps (one `fit` each), so it is not reset in on_train_begin.
        self.history: dict[str, list[tuple[int, float]]] = {key: [] for key in CURVES + LOSS_TERMS}
        self.step_starts: list[int] = []
        self._warned = False

    @property
    def _several_steps(self) -> bool:
        return len(self.run.config.scale.scale_factors) > 1

    def on_scale_step_begin(self, step, predict) -> None:
        self.run.start()  # raises ZSSRError when the store fails: nothing has been trained yet
        with self._guard():
            self.step_starts.append(step.iteration_offset)
            if self._several_steps:  # with one step the series would be a constant 0
                self._add("train/scale_step", step.index, step.iteration_offset)
                if step.bicubic_scores is not None:
                    self._add("step/bicubic_psnr", step.bicubic_scores["psnr"], step.index)
                    self._add("step/bicubic_ssim", step.bicubic_scores["ssim"], step.index)

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

    def on_scale_step_end(self, step, result) -> None:
        with self._guard():
            if self._several_steps:  # with one step these equal the run's final/ and run/ values
                for key, value in (("step/iterations", result.iterations),
                                   ("step/train_seconds", result.train_seconds),
                                   ("step/test_seconds", result.test_seconds)):
                    self._add(key, value, step.index)
                if result.scores is not None:
                    self._add("step/psnr", result.scores["psnr"], step.index)
                    self._add("step/ssim", result.scores["ssim"], step.index)
            save_step(self.run.folder / "model", step.index, result.network,
                      step.kernel if isinstance(step.kernel, np.ndarray) else None, step.kernel_symmetries)
            if step.index < len(self.run.config.scale.scale_factors) - 1:
                path = self.run.folder / "outputs" / f"step_{step.index}_{format_scale(step.scale_factor)}.png"
                height, width, channels = result.output.shape
                write_image(path, result.output, ImageInfo(str(path), 8, channels, height, width))

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
