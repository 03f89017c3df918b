"""The lifecycle of one tracked training: `tracked_run` creates the MLflow run when training
starts, logs params, inputs and final results, and ends it FINISHED, KILLED or FAILED."""

from __future__ import annotations

import dataclasses
import platform
import shutil
import sys
import tempfile
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import keras
import mlflow
from mlflow.data.numpy_dataset import from_numpy
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

import zssr_tf
from zssr_tf.backend import backend_name, library_version
from zssr_tf.config import KEY_TO_SECTION, Config, describe_schedule, format_scale, output_stem, save_config
from zssr_tf.errors import Terminated
from zssr_tf.hashing import file_sha256
from zssr_tf.image_io import ImageInfo, read_image
from zssr_tf.precision import device_name, resolve_precision
from zssr_tf.tracking.buffer import MetricBuffer, log_params
from zssr_tf.tracking.callback import LOSS_TERMS, MLflowLogger
from zssr_tf.tracking.model import log_zssr_model
from zssr_tf.tracking.plots import plot_crop_comparison, plot_training_curves, write_previews
from zssr_tf.tracking.store import (check_reachable, http_retries_for_tracking, resolve_tracking_uri, start_run,
                                    ui_command, ui_url, use_tracking_uri)
from zssr_tf.warm_start import describe_init_weights

if TYPE_CHECKING:
    from zssr_tf.time_budget import BudgetPlan


class TrackedRun:
    """The MLflow run of one ZSSR training, as `tracked_run` yields it: pass `callback` to the
    training and `log_outcome` its result. The run starts when training does (or on `start()`);
    until then `run_id`, `client`, `folder` and `buffer` are None. `model_info` is MLflow's
    `ModelInfo` of the logged model once a FINISHED run has logged it. `plan`: the
    `time_budget.BudgetPlan` the config's lengths were chosen by, logged as `time_budget/*`
    params and the tag `time_budget` (its summary line), or None."""

    def __init__(self, config: Config, info: ImageInfo, out_dir: str | Path, gt_path: str | Path | None = None,
                 kernel_paths: Sequence[str | Path] = (), tags: dict[str, str] | None = None,
                 overrides: Sequence[str] = (), params: dict[str, Any] | None = None,
                 plan: BudgetPlan | None = None):
        # The saved config (and the MLflow model's) names the backend that ran, which the Python
        # API takes from KERAS_BACKEND whatever run.backend says.
        self.config = dataclasses.replace(config, run=dataclasses.replace(config.run, backend=backend_name()))
        self.info = info
        self.out_dir = Path(out_dir)
        self.gt_path = gt_path
        self.kernel_paths = list(kernel_paths)
        self.tags = dict(tags or {})
        self.overrides = list(overrides)
        self.params = dict(params or {})
        self.plan = plan
        if plan is not None:
            self.tags["time_budget"] = plan.summary()
        self.model_info = None
        self._system_metrics = None
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
                "config": "default", "precision": precision, "device": device, "backend": backend_name(),
                "kernel": ", ".join(Path(k).name for k in self.kernel_paths) or config.scale.downscale_method,
                "has_gt": str(self.gt_path is not None).lower(), **self.tags}
        tags.setdefault(MLFLOW_RUN_NOTE, self.description())
        self.client, self.experiment_id, self.run_id = start_run(
            self.tracking_uri, config.run.experiment_name, self.run_name(), tags)
        self.folder = self.out_dir / "mlflow_runs" / self.run_id
        self.buffer = MetricBuffer(self.client, self.run_id, self.folder.parent / f"{self.run_id}_unsent_metrics.jsonl")
        if config.run.system_metrics:
            self._safely("start the system metrics", self._start_system_metrics)
        self._safely("log params and inputs", self._log_start, precision, device)

    def distinguishing_values(self) -> list[str]:
        """`key=value` texts of what sets this run apart from its preset: a sweep's swept values
        (tags `sweep.<key>`), else the command line's overrides but those of the `run` section
        other than `seed` (where outputs go, tracking, display: they do not change the result)."""
        swept = [f"{key[len('sweep.'):]}={value}" for key, value in self.tags.items() if key.startswith("sweep.")]
        keys = [override.split("=", 1)[0] for override in self.overrides]
        return swept or [override for override, key in zip(self.overrides, keys)
                         if _section_of(key) != "run" or key.rsplit(".", 1)[-1] == "seed"]

    def run_name(self) -> str:
        """`<image>_x<scale>`, the preset unless it is `default`, then `distinguishing_values()`,
        e.g. `bird_x2 noise_std=0.02 crop_size=64`; a `mlflow.runName` tag wins."""
        if MLFLOW_RUN_NAME in self.tags:
            return self.tags[MLFLOW_RUN_NAME]
        preset = self.tags.get("config", "default")
        parts = [output_stem(self.info, self.config), *([preset] if preset != "default" else []),
                 *self.distinguishing_values()]
        return " ".join(parts)

    def description(self) -> str:
        """The run's description (MLflow's `mlflow.note.content`, Markdown): what was
        super-resolved, with which preset and settings, against which ground truth."""
        config, info = self.config, self.info
        steps = " > ".join(format_scale(sf) for sf in config.scale.scale_factors)
        lines = [f"{config.method_name} {steps} of `{Path(info.path).name}` ({info.width}x{info.height}, {info.channels} channel(s), "
                 f"{info.bit_depth}-bit), preset `{self.tags.get('config', 'default')}`."]
        values = self.distinguishing_values()
        if "zssr.sweep_key" in self.tags:
            lines.append(f"One point of a sweep (parent run `{self.tags.get('mlflow.parentRunId', '?')}`): "
                         + (", ".join(values) or "the base settings") + ".")
        elif values:
            lines.append("Overrides: " + ", ".join(values) + ".")
        lines.append(f"Network: {describe_init_weights(config.model.init_weights)}; learning rate: "
                     f"{describe_schedule(config.train)}.")
        lines.append(f"Ground truth: `{Path(self.gt_path).name}`." if self.gt_path is not None
                     else "No ground truth: the reconstruction error is the only score.")
        if self.kernel_paths:
            lines.append("Kernels: " + ", ".join(f"`{Path(k).name}`" for k in self.kernel_paths) + ".")
        return "\n\n".join(lines)

    def log_outcome(self, outcome, gt: np.ndarray | None = None) -> None:
        """Queue the final metrics of a `pipeline.Outcome`, draw the crop comparison (with `gt`,
        (H, W, C) float in [0, 1], when given) and copy the SR and bicubic images to `folder`
        (they are uploaded when the run ends)."""
        result = outcome.result
        drops = [d for step in result.steps for d in step.learning_rate_drops]
        final, titles = {}, {}
        if outcome.metrics:  # the headline numbers first
            z, b = outcome.metrics["zssr"], outcome.metrics["bicubic"]
            final.update({"final/psnr": z["psnr"], "final/ssim": z["ssim"], "final/psnr_gain": z["psnr"] - b["psnr"],
                          "final/ssim_gain": z["ssim"] - b["ssim"]})
            final.update({f"final/{k}": v for k, v in z.items()})  # psnr_rgb; psnr_16bit/ssim_16bit for 16-bit data; lpips_like when computed
            final.update({f"final/bicubic_{k}": v for k, v in b.items()})
            titles = {"zssr": f"{z['psnr']:.2f} dB", "bicubic": f"{b['psnr']:.2f} dB"}
        tests = result.steps[-1].reconstruction_errors
        if tests:
            final["final/reconstruction_error"] = tests[-1][1]
        final.update({"final/iterations": result.iterations, "run/train_seconds": result.train_seconds,
                      "run/test_seconds": result.test_seconds,
                      "run/iterations_per_second": result.iterations / max(result.train_seconds, 1e-9),
                      "run/learning_rate_drops": len(drops)})
        for key, value in final.items():
            self.buffer.add(key, value, 0)
        if outcome.budget is not None:  # what ran, next to the plan logged as params
            for key, value, step in outcome.budget.metrics():
                self.buffer.add(key, value, step)
        for number, iteration in enumerate(drops, 1):
            self.buffer.add("run/learning_rate_drop_iteration", iteration, number)
        self._safely("copy the outputs", self._copy_outputs, outcome.sr_path, outcome.bicubic_path)
        self._safely("draw the crop comparison", plot_crop_comparison, self.folder / "figures" / "crops.png",
                     result.bicubic, result.sr, gt, titles, None, self.config.method_name, None, self.info.bit_depth)
        self._safely("write display previews", write_previews, self.folder / "outputs" / "display",
                     {f"{output_stem(self.info, self.config)}_{name}": image
                      for name, image in (("zssr", result.sr), ("bicubic", result.bicubic))}, self.info.bit_depth)

    def ui_hint(self) -> str:
        """Where to look at this run in the MLflow UI: its address, after the exact command that
        serves the UI for this store when it is not a server."""
        url = ui_url(self.tracking_uri, f"#/experiments/{self.experiment_id}/runs/{self.run_id}")
        command = ui_command(self.tracking_uri)
        return f"{command}, then open {url}" if command else url

    def _log_start(self, precision: str, device: str) -> None:
        config, info = self.config, self.info
        params: dict[str, Any] = dict(config.flat())
        params.update(_file_params("image", info.path))
        params.update({"image.width": info.width, "image.height": info.height, "image.channels": info.channels,
                       "image.bit_depth": info.bit_depth, "image.exif_orientation": info.exif_orientation})
        if self.gt_path is not None:
            params.update(_file_params("gt", self.gt_path))
        for i, kernel in enumerate(self.kernel_paths):
            params.update(_file_params(f"kernel.{i}", kernel))
        params.update({
            "scale_steps": " > ".join(format_scale(sf) for sf in config.scale.scale_factors),
            "precision": precision, "device": device, "backend": backend_name(), "version.zssr_tf": zssr_tf.__version__,
            f"version.{backend_name()}": library_version(backend_name()), "version.keras": keras.__version__,
            "version.mlflow": mlflow.__version__, "version.python": platform.python_version(), **self.params})
        if self.plan is not None:
            params.update({f"time_budget/{name}": value for name, value in self.plan.values().items()})
        log_params(self.client, self.run_id, params)
        self.folder.mkdir(parents=True, exist_ok=True)
        save_config(config, self.folder / "config.yaml")
        self.client.log_artifact(self.run_id, str(self.folder / "config.yaml"))
        self._log_inputs()
        self._log_datasets()

    def _log_inputs(self) -> None:
        """Upload the input files to `inputs/` as `image_<name>`, `gt_<name>` and
        `kernel_<i>_<name>`: an input and its ground truth often share a file name. The copies
        are plain files (shutil.copyfile): a read-only source does not make read-only artifacts."""
        named = [(f"image_{Path(self.info.path).name}", self.info.path)]
        if self.gt_path is not None:
            named.append((f"gt_{Path(self.gt_path).name}", self.gt_path))
        named += [(f"kernel_{i}_{Path(k).name}", k) for i, k in enumerate(self.kernel_paths)]
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in named:
                shutil.copyfile(path, Path(tmp) / name)
            self.client.log_artifacts(self.run_id, tmp, "inputs")

    def _log_datasets(self) -> None:
        """The input image (context `training`) and the ground truth (context `evaluation`) as
        MLflow datasets of the run: name, source file, digest and shape, shown in the run's
        overview and searchable in the runs table."""
        datasets = [(self.info.path, "training")]
        if self.gt_path is not None:
            datasets.append((self.gt_path, "evaluation"))
        inputs = []
        for path, context in datasets:
            pixels = read_image(path)[0]
            with warnings.catch_warnings():
                # MLflow registers its local-file source for two URI schemes and warns that a file
                # URI matches both; they are the same class.
                warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
                dataset = from_numpy(pixels, source=Path(path).resolve().as_uri(), name=Path(path).name,
                                     digest=file_sha256(path)[:8])
            # The client API takes MLflow's entity; `mlflow.log_input` makes it the same way.
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, context)]))
        self.client.log_inputs(self.run_id, datasets=inputs)

    def _start_system_metrics(self) -> None:
        """MLflow's system metrics monitor (`system/cpu_utilization_percentage`,
        `system/system_memory_usage_megabytes`, GPU ones when `nvidia-ml-py` finds a GPU, ...)
        on this run, until it ends."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._system_metrics = SystemMetricsMonitor(self.run_id, tracking_uri=self.tracking_uri)
        self._system_metrics.start()

    def _log_model(self) -> None:
        image = read_image(self.info.path)[0]
        with use_tracking_uri(self.tracking_uri):
            self.model_info = log_zssr_model(self.run_id, self.experiment_id, self.folder, self.config, image,
                                             self.config.run.register_model)

    def _end(self, status: str, error: str | None) -> None:
        if error:
            self._safely("record the error", self.client.set_tag, self.run_id, "error", error[:MAX_TAG_VAL_LENGTH])
        self.buffer.close()
        history = self.callback.history
        self._safely("draw the training curves", plot_training_curves, self.folder / "figures" / "training_curves.png",
                     history["train/loss"], history["train/learning_rate"], history["test/reconstruction_error"],
                     history["gt/true_error"], self.callback.step_starts,
                     {key.removeprefix("train/"): history[key] for key in LOSS_TERMS if history[key]})
        uploaded = self._safely("upload the artifacts", self.client.log_artifacts, self.run_id, str(self.folder))
        if status == "FINISHED" and self.config.run.log_model:
            self._safely("log the MLflow model", self._log_model)
        if self._system_metrics is not None:
            self._safely("stop the system metrics", self._system_metrics.finish)
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
                kernel_paths: Sequence[str | Path] = (), tags: dict[str, str] | None = None,
                overrides: Sequence[str] = (), params: dict[str, Any] | None = None,
                plan: BudgetPlan | None = None) -> Iterator[TrackedRun]:
    """One MLflow run around the training of the image `info` describes (see `TrackedRun`).

    Fails at once with ZSSRError naming the store when it is a server that does not answer.
    The run starts when training does. On exit a started run ends FINISHED, KILLED
    (KeyboardInterrupt: Ctrl-C, or errors.Terminated: SIGTERM) or FAILED (any other exception; tag `error`, traceback in `error.txt`);
    in every case the queued metrics are sent, and the curves and whatever else exists are
    logged and kept in `<out_dir>/mlflow_runs/<run_id>/`. Tracking failures after the start
    only warn. `tags` add to the run's tags (e.g. {"config": "gradual_x2"}); `overrides` (the
    command line's `key=value` texts) go into the run's name and description; `params` add to its
    params (e.g. what was estimated from the image: `photo.PhotoEstimate.params`); `plan` (a
    `time_budget.BudgetPlan`) is logged with the params.
    """
    run = TrackedRun(config, info, out_dir, gt_path, kernel_paths, tags, overrides, params, plan)
    check_reachable(run.tracking_uri)
    with http_retries_for_tracking():
        status, error = "FAILED", None
        try:
            yield run
            status = "FINISHED"
        except BaseException as exc:
            if isinstance(exc, Terminated):
                status, error = "KILLED", "Terminated: the process received SIGTERM"
            elif isinstance(exc, KeyboardInterrupt):
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


def _section_of(key: str) -> str | None:
    """The config section of an override key (`train.max_iters` or `max_iters`)."""
    return key.split(".", 1)[0] if "." in key else KEY_TO_SECTION.get(key)


def _file_params(prefix: str, path: str | Path) -> dict[str, str]:
    return {f"{prefix}.name": Path(path).name, f"{prefix}.sha256": file_sha256(path)}
