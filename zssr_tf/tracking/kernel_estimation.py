"""The kernel estimation of a blind run (`kernel: estimate`) in the same MLflow run as its ZSSR.

Metrics whose step is the estimation iteration (from 0): `kernel_estimation/<name>` for every
value `zssr_tf.kernel_estimation.estimate_kernel` reports per iteration (g_loss, g_adversarial,
bicubic, sum_to_one, boundaries, centralization, sparsity, d_loss, kernel_sum, bicubic_weight,
learning_rate; method fkp: g_loss, d_loss, kernel_sum, learning_rate, latent_learning_rate).
Step 0: `kernel_estimation/seconds`, `kernel_estimation/ms_per_iteration`,
`kernel_estimation/runs_averaged` (the runs in the mean), `kernel_estimation/runs_made` (fewer
than estimation_runs when the runs agreed early), and when they happened in the first kept run
`kernel_estimation/similar_to_bicubic_at`, `kernel_estimation/constraints_on_at`; step r (from 0)
of `kernel_estimation/run_iterations`: how many iterations run r ran. Tag
`kernel_estimation.runs`: each run's iterations and why it stopped (all iterations, kernel
stopped moving, collapsed early, ...).
Artifacts: `kernel_estimation/` holds the kernel files (.npy, .mat with `Kernel`, .png picture).
Failures only warn, as everywhere in tracking.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Sequence

from zssr_tf.tracking.run import TrackedRun

PREFIX = "kernel_estimation/"


class KernelEstimationLogger:
    """A per-iteration callback for `estimate_kernel` that queues its values in `run` (started
    here, so the estimation's metrics precede the training's), and `log_result` at the end."""

    def __init__(self, run: TrackedRun):
        self.run = run
        self._warned = False
        run.start()

    def __call__(self, iteration: int, values: dict) -> None:
        try:
            for name, value in values.items():
                self.run.buffer.add(PREFIX + name, float(value), iteration)
        except Exception as err:  # tracking never stops the estimation
            self._warn(err)

    def log_result(self, history, kernel_paths: Sequence[Path]) -> None:
        """Queue the estimation's timings, how many runs its mean holds (`runs_averaged`: the
        collapsed ones are left out) and were made, each run's iterations (and, as a tag, why it
        stopped) and the first kept run's milestones; copy the kernel files to
        the run's folder (uploaded when the run ends)."""
        try:
            summary = {"seconds": history.seconds, "ms_per_iteration": history.ms_per_iteration,
                       "runs_averaged": history.runs_averaged, "runs_made": len(history.runs) or None,
                       "similar_to_bicubic_at": history.similar_to_bicubic_at,
                       "constraints_on_at": history.constraints_on_at}
            for name, value in summary.items():
                if value is not None:
                    self.run.buffer.add(PREFIX + name, float(value), 0)
            for step, record in enumerate(history.runs):
                self.run.buffer.add(PREFIX + "run_iterations", float(record.iterations), step)
            if history.runs:
                self.run.client.set_tag(self.run.run_id, "kernel_estimation.runs", history.describe_runs())
            folder = self.run.folder / "kernel_estimation"
            folder.mkdir(parents=True, exist_ok=True)
            for path in kernel_paths:
                shutil.copy2(path, folder)
        except Exception as err:
            self._warn(err)

    def _warn(self, err: Exception) -> None:
        if not self._warned:
            warnings.warn(f"MLflow: could not log the kernel estimation of run {self.run.run_id} "
                          f"({type(err).__name__}: {err}); the kernel files stay in the output folder", stacklevel=3)
            self._warned = True
