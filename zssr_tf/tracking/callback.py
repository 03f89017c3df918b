"""The Keras callback of a tracked run (`MLflowLogger`): per-iteration metrics, scores against
the ground truth, each scale step's network and outputs."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from zssr_tf.callbacks import ScaleStepCallback
from zssr_tf.ensemble import tiled_predict_for
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.metrics import evaluate
from zssr_tf.resize import imresize

if TYPE_CHECKING:
    from zssr_tf.tracking.run import TrackedRun

CURVES = ("loss", "learning_rate", "reconstruction_error", "true_error")


class MLflowLogger(ScaleStepCallback):
    """Keras callback of a `TrackedRun`: starts the run when the first scale step begins (so
    input errors the trainer finds leave no run behind), queues the per-iteration metrics (see
    the module docstring) in the run's buffer, keeps the curves in `history` for the figures,
    and saves each finished scale step's network (and the outputs of all steps but the last) in
    the run's folder. Needs the `iteration` key that `IterationLogs` adds. After the start, a
    failure here warns once and never stops training.
    """

    def __init__(self, run: TrackedRun):
        super().__init__()
        self.run = run
        # Run state spans all scale steps (one `fit` each), so it is not reset in on_train_begin.
        self.history: dict[str, list[tuple[int, float]]] = {key: [] for key in CURVES}
        self.step_starts: list[int] = []
        self._step = None
        self._predict = None
        self._interpolated: np.ndarray | None = None
        self._bicubic: dict[str, float] = {}
        self._warned = False

    def on_scale_step_begin(self, step, predict) -> None:
        self.run.start()  # raises ZSSRError when the store fails: nothing has been trained yet
        with self._guard():
            cfg = self.run.config
            self._step, self._interpolated = step, None
            self._predict = tiled_predict_for(predict, cfg)
            self.step_starts.append(step.iteration_offset)
            self._add("scale_step", step.index, step.iteration_offset)
            if step.gt is not None:
                self._interpolated = imresize(step.input_image, scale_factor=step.relative_sf,
                                              output_shape=step.output_shape, kernel=cfg.scale.upscale_method)
                self._bicubic = evaluate(np.clip(self._interpolated, 0, 1), step.gt, step.scale_factor)

    def on_train_batch_end(self, batch, logs=None) -> None:
        logs = logs or {}
        iteration = logs.get("iteration")
        if iteration is None:
            self._warn(f"no 'iteration' in the logs (is IterationLogs first?); available logs: {sorted(logs)}")
            return
        with self._guard():
            for key in ("loss", "learning_rate", "reconstruction_error"):
                if key in logs:
                    self._add(key, logs[key], iteration)
            every = self.run.config.train.gt_test_every
            if self._interpolated is not None and every and batch % every == 0:
                self._log_true_error(iteration)

    def on_scale_step_end(self, step, result) -> None:
        with self._guard():
            for key, value in (("step_iterations", result.iterations), ("step_train_seconds", result.train_seconds),
                               ("step_test_seconds", result.test_seconds)):
                self._add(key, value, step.index)
            if step.gt is not None:
                scores = evaluate(result.output, step.gt, step.scale_factor)
                self._add("step_psnr", scores["psnr"], step.index)
                self._add("step_ssim", scores["ssim"], step.index)
            model_dir = self.run.folder / "model"
            model_dir.mkdir(parents=True, exist_ok=True)
            self.model.save(model_dir / f"step_{step.index}.keras")
            if isinstance(step.kernel, np.ndarray):
                np.save(model_dir / f"step_{step.index}_kernel.npy", step.kernel)
            if step.index < len(self.run.config.scale.scale_factors) - 1:
                sy, sx = step.scale_factor
                path = self.run.folder / "outputs" / f"step_{step.index}_x{sy:g}x{sx:g}.png"
                height, width, channels = result.output.shape
                write_image(path, result.output, ImageInfo(str(path), 8, channels, height, width))

    def _log_true_error(self, iteration: int) -> None:
        step = self._step
        output = np.clip(self._predict(self._interpolated[None])[0], 0, 1)
        scores = evaluate(output, step.gt, step.scale_factor)
        height, width = min(output.shape[0], step.gt.shape[0]), min(output.shape[1], step.gt.shape[1])
        true_error = float(np.mean(np.square(output[:height, :width] - step.gt[:height, :width])))
        for key, value in (("psnr", scores["psnr"]), ("ssim", scores["ssim"]), ("true_error", true_error),
                           ("bicubic_psnr", self._bicubic["psnr"]), ("bicubic_ssim", self._bicubic["ssim"])):
            self._add(key, value, iteration)

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
