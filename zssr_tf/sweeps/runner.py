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
from typing import Any, Callable, Iterator, Sequence
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


@dataclass(frozen=True)
class OpenSweep:
    """A sweep's parent run, open in the store `uri` (`open_sweep`): `client` is an
    `mlflow.MlflowClient`, `finished` the point keys with a FINISHED child run."""

    client: Any
    uri: str
    experiment_id: str
    parent_id: str
    finished: frozenset[str]


def run_sweep(sweep: Sweep, engine: str = "local", workers: int = 1, address: str | None = None,
              out_dir: str | Path | None = None) -> SweepReport:
    """Run every point of `sweep` not finished before (see the module docstring): `engine`
    "local" runs them here one after another, or `workers` at a time in worker processes;
    "ray" runs them as Ray tasks on the cluster at `address` (default: a local one)."""
    start = time.monotonic()
    check_engine(engine, workers, address)
    opened = open_sweep(sweep, address)
    out = Path(out_dir or Path(sweep.base_config.run.output_dir) / "sweeps" / sweep.name).resolve()
    todo = [p for p in sweep.points if p.key not in opened.finished]
    where = f"on Ray ({address or 'local cluster'})" if engine == "ray" else f"here, {workers} at a time"
    print(f"sweep {sweep.name}: {sweep.n_points} point(s) x {sweep.n_images} image(s) = {len(sweep.points)} runs; "
          f"{len(sweep.points) - len(todo)} finished before, {len(todo)} to run {where}\n"
          f"MLflow parent run {opened.parent_id} in {opened.uri}; outputs and logs in {out}", flush=True)

    by_key = {p.key: p for p in todo}
    tasks = [point_task(p, sweep, opened, out / point_dir(p)) for p in todo]
    progress = Progress(len(tasks))
    results = collect(opened, run_engine(tasks, engine, workers, address, sweep.resources),
                      lambda result: progress.update(by_key[result.key], result))

    client, parent_id, uri = opened.client, opened.parent_id, opened.uri
    records = run_records(client, opened.experiment_id, parent_id, results)
    rows, failures = summarize(sweep.points, records)
    paths = write_summary(out, sweep.name, sweep.axes, rows, failures, run_url=run_url_for(opened))
    print("\n" + markdown(sweep.name, sweep.axes, rows, failures), end="")
    safely(f"log the best point to the parent run {parent_id}", log_best_point, client, parent_id, sweep, rows,
           records)
    safely(f"log the summary to the parent run {parent_id}", finish_parent_run, client, parent_id, paths,
           len(sweep.points) - len(failures), len(failures))
    print(f"summary: {out / 'summary.md'}; parent run {parent_id} "
          f"({'FAILED: ' + str(len(failures)) + ' failed' if failures else 'FINISHED'})")
    return SweepReport(parent_id, out, len(sweep.points) - len(todo), len(todo), failures, time.monotonic() - start)


def open_sweep(sweep: Sweep, address: str | None = None) -> OpenSweep:
    """Check the store (reachable; one that other machines can write when runs go to the Ray
    cluster at `address`) and open `sweep`'s parent run there, a new one or the one to resume
    (`parent_run.open_parent_run`). Raises ZSSRError naming the store when it cannot be used."""
    from mlflow import MlflowClient

    # Loads TensorFlow: after the caller's cheap checks.
    from zssr_tf.tracking.store import check_reachable, experiment_id_for, resolve_tracking_uri

    uri = resolve_tracking_uri(sweep.base_config.run.tracking_uri)
    check_store_for_workers(address, uri)
    check_reachable(uri)
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
    return OpenSweep(client, uri, experiment_id, parent_id, frozenset(finished))


def run_engine(tasks: Sequence[PointTask], engine: str, workers: int, address: str | None,
               resources: dict[str, float]) -> Iterator[PointResult]:
    """The results of `tasks` as `engine` ("local" with `workers`, or "ray" at `address` with
    `resources` per run) finishes them."""
    if not tasks:
        return iter(())
    return run_ray(tasks, resources, address) if engine == "ray" else run_local(tasks, workers)


def collect(opened: OpenSweep, results: Iterator[PointResult],
            on_result: Callable[[PointResult], None]) -> list[PointResult]:
    """Every result of `results` (an engine's), each handed to `on_result` as it comes (progress
    lines). When they stop early (Ctrl-C, SIGTERM, an error) the parent run ends KILLED or FAILED
    (`parent_run.abort_parent_run`) and the exception propagates."""
    collected: list[PointResult] = []
    try:
        with _remembering_interrupts() as interrupted:
            for result in results:
                collected.append(result)
                on_result(result)
                if interrupted():  # a Ctrl-C whose KeyboardInterrupt something swallowed
                    raise KeyboardInterrupt
    except BaseException as err:
        safely(f"end the parent run {opened.parent_id}", abort_parent_run, opened.client, opened.parent_id, err)
        raise
    return collected


def run_url_for(opened: OpenSweep) -> Callable[[str], str]:
    """Run id -> the run's address in the MLflow UI of `opened`'s store."""
    from zssr_tf.tracking.store import ui_url

    return lambda run_id: ui_url(opened.uri, f"#/experiments/{opened.experiment_id}/runs/{run_id}")


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
        print(f"[{self.done}/{self.total}] {self.describe(point)}: {score}, {result.seconds:.0f} s")
        eta = self.eta()
        filled = round(BAR_WIDTH * self.done / self.total)
        print(f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.done}/{self.total}, ETA {_duration(eta)}",
              flush=True)

    def describe(self, point: Point) -> str:
        """How a progress line names `point`."""
        return f"point {point.number}, {point.image_name} {point.label}".strip()

    def eta(self) -> float:
        """Seconds the remaining runs will take at the mean wall time per run so far."""
        return (time.monotonic() - self.start) / self.done * (self.total - self.done)


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


def point_task(point: Point, sweep: Sweep, opened: OpenSweep, out_dir: Path,
               tags: dict[str, str] | None = None) -> PointTask:
    """The engine's task for `point`: its run writes to `out_dir`, tracks into `opened`'s store
    nested under its parent run, tagged with the point's key, the base config, the swept values
    and `tags`."""
    # Workers (other processes or machines) must track into the driver's store, whatever their
    # environment or working directory says.
    config = dataclasses.replace(point.config, run=dataclasses.replace(point.config.run, tracking_uri=opened.uri))
    tags = {"mlflow.parentRunId": opened.parent_id, "zssr.sweep_key": point.key,
            "config": Path(sweep.base).stem, **{f"sweep.{k}": format_value(v) for k, v in point.values.items()},
            **(tags or {})}
    return PointTask(point.key, point.image, point.ground_truth, point.kernels, config, str(out_dir), tags)


def safely(what: str, function, *args) -> None:
    """Call `function(*args)`; an exception only prints a `zssr: could not <what>` line."""
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
