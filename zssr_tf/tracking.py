"""MLflow tracking: every `zssr train` is one MLflow run, logged without slowing training.

Store: `run.tracking_uri` from the config, else `$MLFLOW_TRACKING_URI`, else the SQLite file
`./mlflow.db` in the working directory (MLflow 3's own default). Experiment: `run.experiment_name`.

What a run holds
- Params: the resolved config flattened (`model.depth`, `augment.noise_std`, ...), `image.*` and
  `gt.*` (name, sha256 of the file; for the image also its size as displayed, channels in the file
  alpha included, bit depth and `image.exif_orientation`, the EXIF orientation applied, 1..8), `kernel.<i>.*` (file name, sha256),
  `scale_steps`, `precision` (resolved), `device`, `version.*` (zssr_tf, tensorflow, keras, mlflow,
  python). Tags: `image`, `scale`, `config`, `kernel`, `precision`, `device`, `has_gt`; `error` on
  failed or killed runs.
- Metrics whose step is the global iteration (counted from 0 across scale steps):
  `loss` (per-iteration L1) and `learning_rate` every iteration; `reconstruction_error` (MSE) every
  `run_test_every` iterations; with a ground truth, at the same iterations, `psnr`, `ssim` (dB /
  unitless, Y channel, shaved: DESIGN §2) and `true_error` (MSE, all channels) of the current
  network's output without ensemble or back-projection, and `bicubic_psnr`, `bicubic_ssim` of the
  bicubic upscale as a reference line (earlier steps of a gradual run score against the ground
  truth resized to that step). `scale_step`: the scale-step index, logged at each step's first
  iteration, so iteration k belongs to the last value logged at or before k.
- Metrics whose step is the scale-step index (0, 1, ...): `step_iterations`,
  `step_train_seconds`, `step_test_seconds`, and with a ground truth `step_psnr`, `step_ssim` of
  the step's ensembled output.
- Final metrics (step 0): `final_psnr`, `final_ssim`, `final_psnr_rgb` (after self-ensemble and
  back-projection), `final_bicubic_psnr`, `final_bicubic_ssim`, `final_bicubic_psnr_rgb`, for
  16-bit images also `final_psnr_16bit`, `final_ssim_16bit` and their `final_bicubic_` pair (at
  16-bit levels, see `metrics.evaluate`), `final_psnr_gain` (dB), `final_ssim_gain`, `iterations`, `train_seconds`, `test_seconds`,
  `iterations_per_second`, `learning_rate_drops` (count), and `learning_rate_drop_iteration`
  whose step is the drop number (1, 2, ...) and value the global iteration of that drop.
- Artifacts: `config.yaml` (resolved), `inputs/` (image, ground truth, kernel files),
  `outputs/` (SR and bicubic images, outputs of earlier scale steps; for images that use little
  of their range, e.g. 12-bit data in 16-bit files, also 8-bit previews stretched for display in
  `outputs/display/<stem>_<zssr|bicubic>_display_<low>-<high>.png`, low..high the levels shown
  as black..white), `figures/` (`training_curves.png`, `crops.png`, stretched the same way and
  saying so in its title), `model/step_<i>.keras` per scale step (plus
  `step_<i>_kernel.npy`, the re-centred kernel, when one was given): `zssr predict --run-id`
  re-applies them. `error.txt` holds the traceback of a failed run. Everything but the inputs is
  first written to `<output_dir>/mlflow_runs/<run_id>/`, uploaded when the run ends, and kept.

The run is created when the first scale step begins, so input errors the trainer reports leave
no run behind; an http(s) server is checked for reachability before that (`tracked_run`).

Speed: the training thread only appends metric values to a list; a background thread sends them
with `log_batch` (see `MetricBuffer`). The scores against a ground truth are real work: each
test runs the network on the full output size and SSIM on it. Nothing below `trainer.py`
imports this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.utils.validation import (MAX_METRICS_PER_BATCH, MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH,
                                     MAX_TAG_VAL_LENGTH)

import zssr_tf
from zssr_tf.callbacks import ScaleStepCallback
from zssr_tf.config import Config, save_config
from zssr_tf.errors import ZSSRError
from zssr_tf.hashing import file_sha256
from zssr_tf.image_io import ImageInfo, write_image
from zssr_tf.metrics import evaluate
from zssr_tf.pipeline import output_stem
from zssr_tf.plots import plot_crop_comparison, plot_training_curves, write_previews
from zssr_tf.precision import device_name, resolve_precision
from zssr_tf.resize import imresize
from zssr_tf.trainer import format_scale, tiled_predict_for

DEFAULT_DB = "mlflow.db"
FLUSH_EVERY_S = 2.0
FLUSH_AT_VALUES = 500
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)  # waits between tries before values are spilled to disk
REACHABILITY_TIMEOUT_S = 5.0
# MLflow's own HTTP policy (7 retries, up to ~4 minutes per request) would hold the end of a run
# for minutes once the server is gone; the MetricBuffer retries on its own schedule instead.
# Applied during a tracked run only where the user has not set these variables.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
CURVES = ("loss", "learning_rate", "reconstruction_error", "true_error")


def default_tracking_uri() -> str:
    """MLflow 3's default store: the SQLite file `mlflow.db` in the working directory."""
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`configured` (run.tracking_uri), else $MLFLOW_TRACKING_URI, else `default_tracking_uri()`."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def check_reachable(uri: str, timeout: float = REACHABILITY_TIMEOUT_S) -> None:
    """Raise ZSSRError naming `uri` when it is an http(s) tracking server that does not answer
    within `timeout` seconds. Any HTTP answer counts (a proxy may not expose `/health`); other
    stores are local and pass."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:
        raise ZSSRError(f"MLflow tracking server {uri} is unreachable ({getattr(err, 'reason', err)}): start it or "
                        "fix run.tracking_uri / MLFLOW_TRACKING_URI (unset both to track into ./mlflow.db)") from None


class MetricBuffer:
    """Collects metric values from the training thread and sends them to the run from a
    background thread, in `log_batch` calls of at most 1,000 values, so training never waits
    on the network or the database.

    `add` only appends to a list. Every `flush_every_s` seconds (sooner once `flush_at` values
    wait) the thread sends what is pending. A failed send is retried after each delay of
    `retry_delays_s` (seconds); if the store still fails, the values are appended to
    `spill_path` (JSON lines) with one warning naming the command that uploads them
    (`zssr upload-metrics`), and later sends are tried once each until one succeeds. `close()`
    sends the rest and stops the thread. `sent` and `spilled` count values. Defaults are the
    module's FLUSH_EVERY_S, FLUSH_AT_VALUES and RETRY_DELAYS_S.
    """

    def __init__(self, client: MlflowClient, run_id: str, spill_path: str | Path,
                 flush_every_s: float | None = None, flush_at: int | None = None,
                 retry_delays_s: Sequence[float] | None = None):
        self.client = client
        self.run_id = run_id
        self.spill_path = Path(spill_path)
        self.flush_every_s = FLUSH_EVERY_S if flush_every_s is None else flush_every_s
        self.flush_at = FLUSH_AT_VALUES if flush_at is None else flush_at
        self.retry_delays_s = tuple(RETRY_DELAYS_S if retry_delays_s is None else retry_delays_s)
        self.sent = 0
        self.spilled = 0
        self._pending: list[tuple[str, float, int, int]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._failing = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"mlflow-metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    def add(self, key: str, value: float, step: int, timestamp_ms: int | None = None) -> None:
        """Queue one value; returns at once."""
        item = (key, float(value), timestamp_ms or int(time.time() * 1000), int(step))
        with self._lock:
            self._pending.append(item)
            full = len(self._pending) >= self.flush_at
        if full:
            self._wake.set()

    def close(self) -> None:
        """Send (or spill) everything queued and stop the thread. Blocks for at most the retry
        schedule when the store is failing."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_every_s)
            self._wake.clear()
            closing = self._closing  # read before flushing so nothing added before close() is left
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        for start in range(0, len(items), MAX_METRICS_PER_BATCH):
            if not self._send(items[start:start + MAX_METRICS_PER_BATCH]):
                self._spill(items[start:])
                return

    def _send(self, chunk) -> bool:
        metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in chunk]
        delays = () if self._failing else self.retry_delays_s
        for delay in (*delays, None):
            try:
                self.client.log_batch(self.run_id, metrics=metrics)
            except Exception as err:  # any store failure: network, HTTP 5xx, database locked
                self._error = err
                if delay is not None:
                    time.sleep(delay)
                continue
            self._failing = False
            self.sent += len(chunk)
            return True
        self._failing = True
        return False

    def _spill(self, items) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spill_path, "a") as f:
            for key, value, timestamp, step in items:
                f.write(json.dumps({"run_id": self.run_id, "key": key, "value": value, "timestamp": timestamp,
                                    "step": step}) + "\n")
        if not self.spilled:
            warnings.warn(f"MLflow tracking store {self.client.tracking_uri} is failing ({self._error}); metrics of "
                          f"run {self.run_id} are saved to {self.spill_path}. Once the store is back, upload them "
                          f"with: zssr upload-metrics {self.spill_path} --tracking-uri {self.client.tracking_uri}",
                          stacklevel=2)
        self.spilled += len(items)


def upload_metrics(path: str | Path, tracking_uri: str | None = None, run_id: str | None = None) -> int:
    """Send the metric values a `MetricBuffer` spilled to `path` (JSON lines) to their run, or to
    `run_id` when given. Returns the number of values sent; sending twice adds no duplicates."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    try:
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise ZSSRError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ZSSRError(f"{path} is not a metrics file written by zssr (JSON lines): {err}") from None
    by_run: dict[str, list[Metric]] = {}
    for r in records:
        by_run.setdefault(run_id or r["run_id"], []).append(Metric(r["key"], r["value"], r["timestamp"], r["step"]))
    client = MlflowClient(uri)
    try:
        for rid, metrics in by_run.items():
            for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                client.log_batch(rid, metrics=metrics[start:start + MAX_METRICS_PER_BATCH])
    except Exception as err:
        raise ZSSRError(f"uploading {path} to {uri} failed: {err}") from None
    return len(records)


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Log `params` in `log_batch` calls of at most 100, values as text cut to 6,000 characters
    (MLflow's limits)."""
    items = [Param(key, str(value)[:MAX_PARAM_VAL_LENGTH]) for key, value in params.items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS_TAGS_PER_BATCH])


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
            if "reconstruction_error" in logs and self._interpolated is not None:
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
        self.client, self.experiment_id, self.run_id = _start_run(
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
                     result.bicubic, result.sr, gt, titles, None, self.info.bit_depth)
        self._safely("write display previews", write_previews, self.folder / "outputs" / "display",
                     {f"{output_stem(self.info, self.config)}_{name}": image
                      for name, image in (("zssr", result.sr), ("bicubic", result.bicubic))}, self.info.bit_depth)

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
                       "image.bit_depth": info.bit_depth, "image.exif_orientation": info.exif_orientation})
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
    with _http_retries_for_tracking():
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


def _start_run(uri: str, experiment_name: str, run_name: str, tags: dict[str, str]) -> tuple[MlflowClient, str, str]:
    try:
        with _store_lock(uri):
            client = MlflowClient(uri)
            experiment_id = experiment_id_for(client, experiment_name)
            run = client.create_run(experiment_id, tags=resolve_tags({**tags, MLFLOW_RUN_NAME: run_name}))
    except ZSSRError:
        raise
    except Exception as err:
        raise ZSSRError(f"cannot start an MLflow run in {uri}: {type(err).__name__}: {err}") from None
    return client, experiment_id, run.info.run_id


def experiment_id_for(client: MlflowClient, name: str) -> str:
    """The id of the experiment `name`, created when missing; ZSSRError when it is deleted."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return _create_experiment(client, name)
    if experiment.lifecycle_stage == "deleted":
        raise ZSSRError(f"experiment {name!r} in {client.tracking_uri} is deleted: restore it "
                        "(mlflow experiments restore) or choose another run.experiment_name")
    return experiment.experiment_id


def _create_experiment(client: MlflowClient, name: str) -> str:
    try:
        return client.create_experiment(name)
    except Exception:
        # Another process may have created it since we looked (a server has no lock of ours).
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextmanager
def _store_lock(uri: str):
    """Serialise run creation across processes on a SQLite store. MLflow creates the tables on
    first use, and two processes doing that at once corrupt the store (seen with MLflow 3.17:
    failed migrations, leftover `_alembic_tmp_*` tables). Other stores need no lock."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = uri[len("sqlite:///"):].split("?")[0]
    if not path or path == ":memory:":
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _http_retries_for_tracking():
    added = [key for key in HTTP_DEFAULTS if key not in os.environ]
    os.environ.update({key: HTTP_DEFAULTS[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _file_params(prefix: str, path: str | Path) -> dict[str, str]:
    return {f"{prefix}.name": Path(path).name, f"{prefix}.sha256": file_sha256(path)}
