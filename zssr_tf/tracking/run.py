"""The lifecycle of one tracked training: `tracked_run` creates the MLflow run when training
starts, logs params, inputs and final results, and ends it FINISHED, KILLED or FAILED."""

from __future__ import annotations

import platform
import shutil
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow import MlflowClient
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

import zssr_tf
from zssr_tf.config import Config, format_scale, output_stem, save_config
from zssr_tf.hashing import file_sha256
from zssr_tf.image_io import ImageInfo
from zssr_tf.precision import device_name, resolve_precision
from zssr_tf.tracking.buffer import MetricBuffer, log_params
from zssr_tf.tracking.callback import MLflowLogger
from zssr_tf.tracking.plots import plot_crop_comparison, plot_training_curves
from zssr_tf.tracking.store import check_reachable, http_retries_for_tracking, resolve_tracking_uri, start_run


class TrackedRun:
    """The MLflow run of one ZSSR training, as `tracked_run` yields it: pass `callback` to the
    training and `log_outcome` its result. The run starts when training does (or on `start()`);
    until then `run_id`, `client`, `folder` and `buffer` are None."""

    def __init__(self, config: Config, info: ImageInfo, out_dir: str | Path, gt_path: str | Path | None = None,
                 kernel_paths: Sequence[str | Path] = (), tags: dict[str, str] | None = None):
        self.config = config
        self.info = info
        self.out_dir = Path(out_dir)
        self.gt_path = gt_path
        self.kernel_paths = list(kernel_paths)
        self.tags = dict(tags or {})
        self.tracking_uri = resolve_tracking_uri(config.run.tracking_uri)
        self.callback = MLflowLogger(self)
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.folder: Path | None = None  # <out_dir>/mlflow_runs/<run_id>
        self.buffer: MetricBuffer | None = None
        self.status: str | None = None  # set when the run has ended

    def start(self) -> None:
        """Create the run (once), log params, tags, the config and the input files. Raises
        ZSSRError naming the store when the run cannot be created."""
        if self.run_id is not None:
            return
        config, info = self.config, self.info
        precision, device = resolve_precision(config.train.precision), device_name()
        tags = {"image": Path(info.path).stem, "scale": format_scale(config.scale.scale_factors[-1]),
                "config": "default", "precision": precision, "device": device,
                "kernel": ", ".join(Path(k).name for k in self.kernel_paths) or config.scale.downscale_method,
                "has_gt": str(self.gt_path is not None).lower(), **self.tags}
        self.client, self.experiment_id, self.run_id = start_run(
            self.tracking_uri, config.run.experiment_name, output_stem(info, config), tags)
        self.folder = self.out_dir / "mlflow_runs" / self.run_id
        self.buffer = MetricBuffer(self.client, self.run_id, self.folder.parent / f"{self.run_id}_unsent_metrics.jsonl")
        self._safely("log params and inputs", self._log_start, precision, device)

    def log_outcome(self, outcome, gt: np.ndarray | None = None) -> None:
        """Queue the final metrics of a `pipeline.Outcome`, draw the crop comparison (with `gt`,
        (H, W, C) float in [0, 1], when given) and copy the SR and bicubic images to `folder`
        (they are uploaded when the run ends)."""
        result = outcome.result
        drops = [d for step in result.steps for d in step.learning_rate_drops]
        final = {"iterations": result.iterations, "train_seconds": result.train_seconds,
                 "test_seconds": result.test_seconds, "learning_rate_drops": len(drops),
                 "iterations_per_second": result.iterations / max(result.train_seconds, 1e-9)}
        titles = {}
        if outcome.metrics:
            z, b = outcome.metrics["zssr"], outcome.metrics["bicubic"]
            final.update({f"final_{k}": v for k, v in z.items()})
            final.update({f"final_bicubic_{k}": v for k, v in b.items()})
            final.update(final_psnr_gain=z["psnr"] - b["psnr"], final_ssim_gain=z["ssim"] - b["ssim"])
            titles = {"zssr": f"{z['psnr']:.2f} dB", "bicubic": f"{b['psnr']:.2f} dB"}
        for key, value in final.items():
            self.buffer.add(key, value, 0)
        for number, iteration in enumerate(drops, 1):
            self.buffer.add("learning_rate_drop_iteration", iteration, number)
        self._safely("copy the outputs", self._copy_outputs, outcome.sr_path, outcome.bicubic_path)
        self._safely("draw the crop comparison", plot_crop_comparison, self.folder / "figures" / "crops.png",
                     result.bicubic, result.sr, gt, titles)

    def ui_hint(self) -> str:
        """Where to look at this run in the MLflow UI."""
        page = f"#/experiments/{self.experiment_id}/runs/{self.run_id}"
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/{page}"
        return (f"`make ui` (or `mlflow ui --backend-store-uri {self.tracking_uri} --host 127.0.0.1`), "
                f"then http://127.0.0.1:5000/{page}")

    def _log_start(self, precision: str, device: str) -> None:
        config, info = self.config, self.info
        params: dict[str, Any] = dict(config.flat())
        params.update(_file_params("image", info.path))
        params.update({"image.width": info.width, "image.height": info.height, "image.channels": info.channels,
                       "image.bit_depth": info.bit_depth})
        if self.gt_path is not None:
            params.update(_file_params("gt", self.gt_path))
        for i, kernel in enumerate(self.kernel_paths):
            params.update(_file_params(f"kernel.{i}", kernel))
        params.update({
            "scale_steps": " > ".join(f"x{sy:g}x{sx:g}" for sy, sx in config.scale.scale_factors),
            "precision": precision, "device": device, "version.zssr_tf": zssr_tf.__version__,
            "version.tensorflow": tf.__version__, "version.keras": keras.__version__,
            "version.mlflow": mlflow.__version__, "version.python": platform.python_version()})
        log_params(self.client, self.run_id, params)
        self.folder.mkdir(parents=True, exist_ok=True)
        save_config(config, self.folder / "config.yaml")
        self.client.log_artifact(self.run_id, str(self.folder / "config.yaml"))
        for path in [info.path, self.gt_path, *self.kernel_paths]:
            if path is not None:
                self.client.log_artifact(self.run_id, str(path), "inputs")

    def _end(self, status: str, error: str | None) -> None:
        if error:
            self._safely("record the error", self.client.set_tag, self.run_id, "error", error[:MAX_TAG_VAL_LENGTH])
        self.buffer.close()
        history = self.callback.history
        self._safely("draw the training curves", plot_training_curves, self.folder / "figures" / "training_curves.png",
                     history["loss"], history["learning_rate"], history["reconstruction_error"],
                     history["true_error"], self.callback.step_starts)
        uploaded = self._safely("upload the artifacts", self.client.log_artifacts, self.run_id, str(self.folder))
        ended = self._safely("end the run", self.client.set_terminated, self.run_id, status)
        self.status = status
        problems = []
        if self.buffer.spilled:
            problems.append(f"{self.buffer.spilled} metric values are in {self.buffer.spill_path} (upload: "
                            f"zssr upload-metrics {self.buffer.spill_path} --tracking-uri {self.tracking_uri})")
        if not uploaded:
            problems.append(f"artifacts were not uploaded (upload: mlflow artifacts log-artifacts "
                            f"-l {self.folder} -r {self.run_id})")
        if not ended:
            problems.append("the run could not be ended and may still show RUNNING")
        if status != "FINISHED" or problems:
            print(f"zssr: MLflow run {self.run_id} ({status}): " + "; ".join(problems + [
                f"config, curves and finished outputs are kept in {self.folder}"]), file=sys.stderr)

    def _copy_outputs(self, *paths: Path) -> None:
        (self.folder / "outputs").mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, self.folder / "outputs")

    def _safely(self, what: str, function, *args) -> bool:
        """Run a tracking step; on failure warn (training results stay on disk) and return False."""
        try:
            function(*args)
            return True
        except Exception as err:
            warnings.warn(f"MLflow: could not {what} for run {self.run_id} at {self.tracking_uri} "
                          f"({type(err).__name__}: {err}); the files stay in {self.folder}", stacklevel=3)
            return False


@contextmanager
def tracked_run(config: Config, info: ImageInfo, out_dir: str | Path, gt_path: str | Path | None = None,
                kernel_paths: Sequence[str | Path] = (), tags: dict[str, str] | None = None) -> Iterator[TrackedRun]:
    """One MLflow run around the training of the image `info` describes (see `TrackedRun`).

    Fails at once with ZSSRError naming the store when it is a server that does not answer.
    The run starts when training does. On exit a started run ends FINISHED, KILLED
    (KeyboardInterrupt) or FAILED (any other exception; tag `error`, traceback in `error.txt`);
    in every case the queued metrics are sent, and the curves and whatever else exists are
    logged and kept in `<out_dir>/mlflow_runs/<run_id>/`. Tracking failures after the start
    only warn. `tags` add to the run's tags (e.g. {"config": "gradual_x2"}).
    """
    run = TrackedRun(config, info, out_dir, gt_path, kernel_paths, tags)
    check_reachable(run.tracking_uri)
    with http_retries_for_tracking():
        status, error = "FAILED", None
        try:
            yield run
            status = "FINISHED"
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                status, error = "KILLED", "KeyboardInterrupt: interrupted by the user"
            else:
                error = f"{type(exc).__name__}: {exc}"
                if run.folder is not None:
                    run.folder.mkdir(parents=True, exist_ok=True)
                    (run.folder / "error.txt").write_text(traceback.format_exc())
            raise
        finally:
            if run.buffer is not None:  # the run was started
                run._end(status, error)


def _file_params(prefix: str, path: str | Path) -> dict[str, str]:
    return {f"{prefix}.name": Path(path).name, f"{prefix}.sha256": file_sha256(path)}
