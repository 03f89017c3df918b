"""Running a loaded sweep: one parent MLflow run, one nested child run per (image, point),
resume, progress lines and the summary.

Parent: its name, tags, params, artifacts, metrics and how it ends are described in `parent_run`.

Children: what `zssr train` logs, named `<image>_x<scale> [preset] key=value ...` after the
swept values, plus tags `mlflow.parentRunId`, `zssr.sweep_key` (the point key) and
`sweep.<key>` = each swept value, for filtering in the UI.

Resume: a point whose key has a FINISHED child under the parent is skipped; FAILED, KILLED and
RUNNING ones (a crashed sweep leaves RUNNING) run again.

Outputs: `<out>/<point number>_<swept values>/` holds each run's images, its `mlflow_runs/`
folder and `<image stem>.log` (the run's own output); `<out>` defaults to
`<run.output_dir>/sweeps/<name>`.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from zssr_tf.errors import ZSSRError
from zssr_tf.sweeps.engines import PointResult, PointTask, import_ray, run_local, run_ray
from zssr_tf.sweeps.parent_run import (abort_parent_run, child_runs, finish_parent_run, log_best_point,
                                       open_parent_run, run_records)
from zssr_tf.sweeps.spec import Point, Sweep, format_value
from zssr_tf.sweeps.summary import Failure, markdown, summarize, write_summary

ENGINES = ("local", "ray")
BAR_WIDTH = 30


@dataclass(frozen=True)
class SweepReport:
    """How a sweep call ended: `skipped` runs had finished before, `ran` ran now."""

    parent_run_id: str
    out_dir: Path
    skipped: int
    ran: int
    failures: list[Failure]
    seconds: float


def check_engine(engine: str, workers: int, address: str | None) -> None:
    """Raise ZSSRError for an engine setup that cannot work, before anything starts."""
    if engine not in ENGINES:
        raise ZSSRError(f"unknown engine {engine!r}; use one of {ENGINES}")
    if workers < 1:
        raise ZSSRError(f"--workers must be at least 1, got {workers}")
    if engine == "local":
        if address:
            raise ZSSRError("--address is for --engine ray (the address of a Ray cluster)")
        return
    if workers != 1:
        raise ZSSRError("--workers is for --engine local; with Ray each run takes the sweep file's "
                        "resources (num_cpus, num_gpus) and the cluster runs as many at once as fit")
    import_ray()


def check_store_for_workers(address: str | None, tracking_uri: str) -> None:
    """Raise ZSSRError when runs on other machines (a Ray `address`) would track into a store
    only this machine can write: a SQLite file or a local folder."""
    if address and urlparse(tracking_uri).scheme in ("", "file", "sqlite"):
        raise ZSSRError(
            f"--engine ray --address {address} runs points on other machines, which cannot write to the local "
            f"MLflow store {tracking_uri}: start a tracking server they can reach (mlflow server --host 0.0.0.0 "
            f"--port 5000) and set run.tracking_uri or MLFLOW_TRACKING_URI to it (http://<host>:5000)")


def run_sweep(sweep: Sweep, engine: str = "local", workers: int = 1, address: str | None = None,
              out_dir: str | Path | None = None) -> SweepReport:
    """Run every point of `sweep` not finished before (see the module docstring): `engine`
    "local" runs them here one after another, or `workers` at a time in worker processes;
    "ray" runs them as Ray tasks on the cluster at `address` (default: a local one)."""
    start = time.monotonic()
    check_engine(engine, workers, address)

    from mlflow import MlflowClient

    # Loads TensorFlow: after the checks.
    from zssr_tf.tracking.store import check_reachable, experiment_id_for, resolve_tracking_uri, ui_url

    uri = resolve_tracking_uri(sweep.base_config.run.tracking_uri)
    check_store_for_workers(address, uri)
    check_reachable(uri)
    out = Path(out_dir or Path(sweep.base_config.run.output_dir) / "sweeps" / sweep.name).resolve()
    client = MlflowClient(uri)
    try:
        experiment_id = experiment_id_for(client, sweep.base_config.run.experiment_name)
        parent_id = open_parent_run(client, experiment_id, sweep)
        finished = {run.data.tags.get("zssr.sweep_key") for run in child_runs(client, experiment_id, parent_id)
                    if run.info.status == "FINISHED"}
    except ZSSRError:
        raise
    except Exception as err:
        raise ZSSRError(f"cannot use the MLflow store {uri}: {type(err).__name__}: {err}") from None
    todo = [p for p in sweep.points if p.key not in finished]
    where = f"on Ray ({address or 'local cluster'})" if engine == "ray" else f"here, {workers} at a time"
    print(f"sweep {sweep.name}: {sweep.n_points} point(s) x {sweep.n_images} image(s) = {len(sweep.points)} runs; "
          f"{len(sweep.points) - len(todo)} finished before, {len(todo)} to run {where}\n"
          f"MLflow parent run {parent_id} in {uri}; outputs and logs in {out}", flush=True)

    by_key = {p.key: p for p in todo}
    tasks = [_task(p, sweep, uri, out, parent_id) for p in todo]
    results: list[PointResult] = []
    progress = Progress(len(tasks))
    if not tasks:
        engine_runs = iter(())
    elif engine == "ray":
        engine_runs = run_ray(tasks, sweep.resources, address)
    else:
        engine_runs = run_local(tasks, workers)
    try:
        with _remembering_interrupts() as interrupted:
            for result in engine_runs:
                results.append(result)
                progress.update(by_key[result.key], result)
                if interrupted():  # a Ctrl-C whose KeyboardInterrupt something swallowed
                    raise KeyboardInterrupt
    except BaseException as err:
        _safely(f"end the parent run {parent_id}", abort_parent_run, client, parent_id, err)
        raise

    records = run_records(client, experiment_id, parent_id, results)
    rows, failures = summarize(sweep.points, records)
    paths = write_summary(out, sweep.name, sweep.axes, rows, failures,
                          run_url=lambda run_id: ui_url(uri, f"#/experiments/{experiment_id}/runs/{run_id}"))
    print("\n" + markdown(sweep.name, sweep.axes, rows, failures), end="")
    _safely(f"log the best point to the parent run {parent_id}", log_best_point, client, parent_id, sweep, rows,
            records)
    _safely(f"log the summary to the parent run {parent_id}", finish_parent_run, client, parent_id, paths,
            len(sweep.points) - len(failures), len(failures))
    print(f"summary: {out / 'summary.md'}; parent run {parent_id} "
          f"({'FAILED: ' + str(len(failures)) + ' failed' if failures else 'FINISHED'})")
    return SweepReport(parent_id, out, len(sweep.points) - len(todo), len(todo), failures, time.monotonic() - start)


class Progress:
    """Prints a line as each run ends and an overall bar whose ETA assumes the remaining runs
    take as long, on average, as those done so far (wall time, so parallel runs count)."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.start = time.monotonic()

    def update(self, point: Point, result: PointResult) -> None:
        self.done += 1
        metrics = result.metrics
        if result.status != "FINISHED":
            score = f"FAILED ({(result.error or 'no error').splitlines()[0][:200]})"
        elif "final/psnr" in metrics:
            score = f"{metrics['final/psnr']:.2f} dB"
        else:
            score = f"reconstruction error {metrics.get('final/reconstruction_error', float('nan')):.3g}"
        label = f"point {point.number}, {point.image_name} {point.label}".strip()
        print(f"[{self.done}/{self.total}] {label}: {score}, {result.seconds:.0f} s")
        eta = (time.monotonic() - self.start) / self.done * (self.total - self.done)
        filled = round(BAR_WIDTH * self.done / self.total)
        print(f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.done}/{self.total}, ETA {_duration(eta)}",
              flush=True)


def point_dir(point: Point) -> str:
    """`003_noise_std=0.025,crop_size=96`: the point's number (`Point.number`), then its values as
    a file name."""
    values = re.sub(r"[^\w.,=+-]+", "", point.label.replace(" ", ","))[:80]
    return f"{point.number:03d}" + (f"_{values}" if values else "")


@contextmanager
def _remembering_interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C does what the SIGINT handler in place does (Python's: raise KeyboardInterrupt) and
    is also remembered (the yielded function says whether one came). Python drops an exception
    raised inside a finaliser, e.g. while TensorFlow frees a traced function between two runs; a
    Ctrl-C landing there would be lost and the sweep would go on. Only in the main thread, and
    only over a Python handler (an ignored or default-action SIGINT is left alone)."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield lambda: False
        return
    seen: list[int] = []

    def handler(signum, frame):
        seen.append(signum)
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


def _task(point: Point, sweep: Sweep, uri: str, out: Path, parent_id: str) -> PointTask:
    # Workers (other processes or machines) must track into the driver's store, whatever their
    # environment or working directory says.
    config = dataclasses.replace(point.config, run=dataclasses.replace(point.config.run, tracking_uri=uri))
    tags = {"mlflow.parentRunId": parent_id, "zssr.sweep_key": point.key,
            "config": Path(sweep.base).stem, **{f"sweep.{k}": format_value(v) for k, v in point.values.items()}}
    return PointTask(point.key, point.image, point.ground_truth, point.kernels, config,
                     str(out / point_dir(point)), tags)


def _safely(what: str, function, *args) -> None:
    # The runs and the summary files exist already: a tracking failure now only warns.
    try:
        function(*args)
    except Exception as err:
        print(f"zssr: could not {what}: {type(err).__name__}: {err}", file=sys.stderr)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
