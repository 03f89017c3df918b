"""Where a sweep's runs execute: one after another in this process, N at a time in worker
processes, or as Ray tasks on a cluster. Every engine yields a `PointResult` as each run ends.

A run never raises into the sweep: a failure comes back as a FAILED result (its MLflow run is
marked FAILED by `tracked_run`), so one bad point does not stop the others. Each run's own
output (training progress, warnings, the traceback of a failure) goes to
`<out_dir>/<image stem>.log` instead of interleaving with the sweep's progress lines.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from zssr_tf.config import Config
from zssr_tf.errors import Terminated, ZSSRError, raise_terminated
from zssr_tf.backend import select_backend
from zssr_tf.startup import load_backend

RAY_MISSING = "Ray is not installed: pip install 'zssr-tf[ray]'"


@dataclass(frozen=True)
class PointTask:
    """One run as a worker gets it (picklable). `config.run.tracking_uri` is the driver's store;
    `tags` nest the run under the sweep's parent and carry the point's key and values."""

    key: str
    image: str
    ground_truth: str | None
    kernels: tuple[str, ...]
    config: Config
    out_dir: str
    tags: dict[str, str]


@dataclass(frozen=True)
class PointResult:
    """How one run ended. `status`: FINISHED or FAILED; `seconds`: wall time; `metrics`:
    `final/reconstruction_error` (MSE of the last test) and, with a ground truth, `final/psnr` (dB),
    `final/ssim`, `final/psnr_gain` (dB over bicubic), as the run logs them; `run_id` is None when
    no run was recorded."""

    key: str
    status: str
    run_id: str | None
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def import_ray():
    """The `ray` module, or ZSSRError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ZSSRError(RAY_MISSING) from None
    return ray


def run_local(tasks: Sequence[PointTask], workers: int = 1) -> Iterator[PointResult]:
    """Run `tasks` here one after another, or `workers` at a time in fresh worker processes."""
    if workers <= 1:
        for task in tasks:
            yield run_point(task)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # "spawn": TensorFlow is not fork-safe, a forked child of a process that has used it can hang.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker, initargs=(threads,))
    try:
        futures = {pool.submit(_run_point_in_worker, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # the worker process died (e.g. out of memory)
                yield _lost(futures[future], err)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_ray(tasks: Sequence[PointTask], resources: dict[str, float], address: str | None = None
            ) -> Iterator[PointResult]:
    """Run `tasks` as Ray tasks with `resources` (num_cpus, num_gpus) each, on the cluster at
    `address`, on the one already connected, or on a local one started here. With an address the
    input files travel through Ray's object store (once per image), so workers need no shared
    filesystem; every node needs zssr-tf installed (and the same Ray and Python versions)."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address)
    remote_point = ray.remote(num_cpus=resources["num_cpus"], num_gpus=resources["num_gpus"])(_ray_point)
    threads = max(1, int(resources["num_cpus"]))
    shipped: dict[str, object] = {}
    refs = {}
    for task in tasks:
        files = None
        if address:
            if task.image not in shipped:
                paths = [p for p in (task.image, task.ground_truth, *task.kernels) if p]
                shipped[task.image] = ray.put({p: Path(p).read_bytes() for p in paths})
            files = shipped[task.image]
        refs[remote_point.remote(task, files, threads)] = task
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as err:  # the worker or its node died
                yield _lost(refs[done[0]], err)
    finally:
        for ref in pending:
            ray.cancel(ref)
        if started:
            ray.shutdown()


def run_point(task: PointTask) -> PointResult:
    """Run one point as a tracked run; see the module docstring."""
    start = time.perf_counter()
    out_dir = Path(task.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, str] = {}
    with open(out_dir / f"{Path(task.image).stem}.log", "w") as log, _output_to(log):
        try:
            metrics = _tracked(task, recorded)
            status, error = "FINISHED", None
        except Exception as err:
            traceback.print_exc()
            metrics, status, error = {}, "FAILED", f"{type(err).__name__}: {err}"
        finally:
            import keras

            keras.backend.clear_session()  # a worker runs many points: free each one's graphs
    return PointResult(task.key, status, recorded.get("run_id"), time.perf_counter() - start, metrics, error)


@contextmanager
def _output_to(log) -> Iterator[None]:
    """Send prints, warnings and log records to `log`. Logging handlers (TensorFlow's, MLflow's)
    hold the console stream they were made with, out of redirect_stdout's reach: swap it."""
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for logger in loggers for h in getattr(logger, "handlers", ())
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
                and any(h.stream is console for console in consoles)]
    streams = [h.setStream(log) for h in handlers]
    try:
        with redirect_stdout(log), redirect_stderr(log):
            yield
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)


def start_worker(threads: int) -> None:
    """A local worker process's set-up: SIGTERM ends its current run KILLED as in the `zssr`
    command (errors.raise_terminated); the parent's Keras backend (KERAS_BACKEND, which the worker
    inherits) starts, TensorFlow as quietly as in the parent (whose quiet mode,
    `startup.quiet_tensorflow`, set TF_CPP_MIN_LOG_LEVEL=3, which the worker inherits too);
    `limit_threads(threads)`."""
    signal.signal(signal.SIGTERM, raise_terminated)
    load_backend(select_backend(None), quiet=os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3")
    limit_threads(threads)


def _run_point_in_worker(task: PointTask) -> PointResult:
    """`run_point` in a local worker process. On SIGTERM the run has ended KILLED (tracked_run)
    when Terminated gets here; the worker then exits at once, so it starts no further point."""
    try:
        return run_point(task)
    except Terminated:
        os._exit(128 + signal.SIGTERM)


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's thread pools: by default each process uses every core, and N
    concurrent runs would oversubscribe the machine. No effect once TF has started, nor on the
    other Keras backends (KERAS_BACKEND; their thread pools are left as they are)."""
    if select_backend(None) != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF already initialised in this (reused) worker: the earlier cap stands
        pass


def localise(task: PointTask, files: dict[str, bytes]) -> PointTask:
    """`task` with its input files written to a temporary folder when this machine lacks them
    (a remote Ray worker); the outputs then go to that folder too (MLflow keeps them)."""
    if all(Path(p).is_file() for p in files):
        return task
    folder = Path(tempfile.mkdtemp(prefix="zssr_sweep_"))
    local = {}
    for i, (path, data) in enumerate(files.items()):
        target = folder / "inputs" / str(i) / Path(path).name  # runs are named after the file
        target.parent.mkdir(parents=True)
        target.write_bytes(data)
        local[path] = str(target)
    return dataclasses.replace(task, image=local[task.image], ground_truth=local.get(task.ground_truth),
                               kernels=tuple(local[k] for k in task.kernels), out_dir=str(folder / "outputs"))


def _ray_point(task: PointTask, files: dict[str, bytes] | None, threads: int) -> PointResult:
    limit_threads(threads)
    return run_point(localise(task, files) if files else task)


def _tracked(task: PointTask, recorded: dict[str, str]) -> dict[str, float]:
    # TensorFlow and the tracking layer load here, in the worker: the driver stays light.
    from zssr_tf.image_io import read_image
    from zssr_tf.pipeline import tracked_super_resolve

    try:
        image, alpha, info = read_image(task.image)
    except ZSSRError as err:
        recorded["run_id"] = _record_failure(task, f"ZSSRError: {err}")
        raise
    # The run starts at once, not when training does: a point that fails before that is recorded
    # too. With kernel=estimate the kernels are estimated as zssr train does (load_sweep refuses
    # kernel files then).
    _, outcome = tracked_super_resolve(task.config, image, alpha, info, Path(task.out_dir),
                                       gt_path=task.ground_truth, kernel_paths=task.kernels, tags=task.tags,
                                       on_start=lambda run: recorded.update(run_id=run.run_id))
    tests = outcome.result.steps[-1].reconstruction_errors
    metrics = {"final/reconstruction_error": tests[-1][1]} if tests else {}
    if outcome.metrics:
        zssr, bicubic = outcome.metrics["zssr"], outcome.metrics["bicubic"]
        metrics.update({"final/psnr": zssr["psnr"], "final/ssim": zssr["ssim"],
                        "final/psnr_gain": zssr["psnr"] - bicubic["psnr"]})
    return metrics


def _record_failure(task: PointTask, error: str) -> str | None:
    """A FAILED child run for a point that failed before `tracked_run` could start (an unreadable
    image has no size to log), so the MLflow UI shows every point of the sweep."""
    from mlflow import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    from zssr_tf.tracking import resolve_tracking_uri

    try:
        client = MlflowClient(resolve_tracking_uri(task.config.run.tracking_uri))
        experiment = client.get_experiment_by_name(task.config.run.experiment_name)
        run = client.create_run(experiment.experiment_id, tags={
            **task.tags, MLFLOW_RUN_NAME: Path(task.image).stem, "image": Path(task.image).stem, "error": error})
        client.set_terminated(run.info.run_id, "FAILED")
        return run.info.run_id
    except Exception as err:  # tracking trouble must not hide the point's own error
        print(f"could not record the failed run in MLflow: {type(err).__name__}: {err}")
        return None


def _lost(task: PointTask, err: Exception) -> PointResult:
    return PointResult(task.key, "FAILED", None, 0.0, error=f"worker lost: {type(err).__name__}: {err}")
