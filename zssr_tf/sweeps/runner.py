"""Running a loaded sweep: one parent MLflow run, one nested child run per (image, point),
resume, progress lines and the summary.

Parent: run name = the sweep's name; tag `zssr.sweep_id` = a hash of the name and every point's
key, so running the same sweep on the same inputs again finds it (the latest one, when several
match). Params `sweep.*`: the base, fixed settings, swept values, counts. Artifacts: the sweep
file, and at the end `summary.csv`, `summary.md` (with links to every run in the MLflow UI),
`summary.png` and `front.png` (also written to the output folder). Metrics: `runs/finished`, `runs/failed`, and
the best point's means (`summary.best_row`) as `best/psnr`, `best/ssim`,
`best/psnr_gain`, `best/reconstruction_error`, `best/iterations`, `best/seconds`; tags `zssr.best_point` (its
values) and `zssr.best_run_id` (its best run). It ends FINISHED when every run of the sweep has
finished, else FAILED with tag `zssr.failed_runs` (how many); KILLED when interrupted.

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
import json
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
from zssr_tf.sweeps.spec import Point, Sweep, format_value, format_values
from zssr_tf.sweeps.summary import (COLUMNS, Failure, RunRecord, best_row, best_run_id, markdown, record_from_run,
                                   summarize, write_summary)

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
        parent_id = _parent_run(client, experiment_id, sweep)
        finished = {run.data.tags.get("zssr.sweep_key") for run in _children(client, experiment_id, parent_id)
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
        _safely(f"end the parent run {parent_id}", _abort_parent, client, parent_id, err)
        raise

    records = _records(client, experiment_id, parent_id, results)
    rows, failures = summarize(sweep.points, records)
    paths = write_summary(out, sweep.name, sweep.axes, rows, failures,
                          run_url=lambda run_id: ui_url(uri, f"#/experiments/{experiment_id}/runs/{run_id}"))
    print("\n" + markdown(sweep.name, sweep.axes, rows, failures), end="")
    _safely(f"log the best point to the parent run {parent_id}", _log_best, client, parent_id, sweep, rows, records)
    _safely(f"log the summary to the parent run {parent_id}", _finish_parent, client, parent_id, paths,
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


def _parent_run(client, experiment_id: str, sweep: Sweep) -> str:
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    from zssr_tf.tracking import log_params

    found = client.search_runs([experiment_id], f"tags.`zssr.sweep_id` = '{sweep.sweep_id}'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        if "error" in found[0].data.tags:  # left by an interrupted session
            client.delete_tag(run_id, "error")
        return run_id
    run_id = client.create_run(experiment_id, tags=resolve_tags({
        MLFLOW_RUN_NAME: sweep.name, "zssr.sweep_id": sweep.sweep_id, "zssr.sweep": sweep.name,
        "zssr.sweep_axes": ", ".join(sweep.axes)})).info.run_id
    axes = {f"sweep.axis.{key}": json.dumps(list(dict.fromkeys(format_value(p.values[key]) for p in sweep.points)))
            for key in sweep.axes}
    log_params(client, run_id, {"sweep.name": sweep.name, "sweep.file": str(sweep.path), "sweep.base": sweep.base,
                                "sweep.settings": " ".join(sweep.settings), "sweep.images": sweep.n_images,
                                "sweep.points": sweep.n_points, "sweep.runs": len(sweep.points),
                                "sweep.resources": json.dumps(sweep.resources), **axes})
    client.log_artifact(run_id, str(sweep.path))
    return run_id


def _children(client, experiment_id: str, parent_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                  max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def _records(client, experiment_id: str, parent_id: str, results: list[PointResult]) -> dict[str, RunRecord]:
    """Per point key, what MLflow holds (a FINISHED child wins over failed attempts, else the
    latest), overridden by this session's failures: their errors are the engine's own words and
    a lost worker leaves no run to read."""
    records: dict[str, RunRecord] = {}
    for run in sorted(_children(client, experiment_id, parent_id), key=lambda r: r.info.start_time or 0):
        key = run.data.tags.get("zssr.sweep_key")
        if key not in records or records[key].status != "FINISHED":
            records[key] = record_from_run(run)
    for result in results:
        if result.status != "FINISHED" or result.key not in records:
            records[result.key] = RunRecord(result.status, result.metrics, result.seconds, result.error,
                                            result.run_id)
    return records


def _log_best(client, parent_id: str, sweep: Sweep, rows, records: dict[str, RunRecord]) -> None:
    """The best point's means as `best/<column>` metrics of the parent, its values as tag
    `zssr.best_point` and its best run as tag `zssr.best_run_id` (see summary.best_row)."""
    from mlflow.entities import Metric, RunTag

    best = best_row(rows)
    if best is None:
        return
    now = int(time.time() * 1000)
    metrics = [Metric(f"best/{column}", best.means[column], now, 0) for column, _, _ in COLUMNS if column in best.means]
    tags = [RunTag("zssr.best_point", format_values({a: best.values[a] for a in sweep.axes}) or "base")]
    if (run_id := best_run_id(best, records)) is not None:
        tags.append(RunTag("zssr.best_run_id", run_id))
    client.log_batch(parent_id, metrics=metrics, tags=tags)


def _finish_parent(client, parent_id: str, paths: list[Path], finished: int, failed: int) -> None:
    for path in paths:
        client.log_artifact(parent_id, str(path))
    client.log_metric(parent_id, "runs/finished", finished)
    client.log_metric(parent_id, "runs/failed", failed)
    client.set_tag(parent_id, "zssr.failed_runs", str(failed))
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")


def _abort_parent(client, parent_id: str, err: BaseException) -> None:
    interrupted = isinstance(err, KeyboardInterrupt)
    client.set_tag(parent_id, "error", "interrupted" if interrupted else f"{type(err).__name__}: {err}")
    client.set_terminated(parent_id, "KILLED" if interrupted else "FAILED")


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
