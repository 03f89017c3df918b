"""A sweep's parent MLflow run: opening it (or finding it again to resume), reading its
children, logging the best point and the summary, and ending it.

Run name = the sweep's name; tag `zssr.sweep_id` = a hash of the name and every point's
key, so running the same sweep on the same inputs again finds it (the latest one, when several
match). Params `sweep.*`: the base, fixed settings, swept values, counts. Artifacts: the sweep
file, and at the end `summary.csv`, `summary.md` (with links to every run in the MLflow UI),
`summary.png` and `front.png` (also written to the output folder). Metrics: `runs/finished`, `runs/failed`, and
the best point's means (`summary.best_row`) as `best/psnr`, `best/ssim`,
`best/psnr_gain`, `best/reconstruction_error`, `best/iterations`, `best/seconds`; tags `zssr.best_point` (its
values) and `zssr.best_run_id` (its best run). It ends FINISHED when every run of the sweep has
finished, else FAILED with tag `zssr.failed_runs` (how many); KILLED when interrupted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from zssr_tf.sweeps.engines import PointResult
from zssr_tf.sweeps.spec import Sweep, format_value, format_values
from zssr_tf.sweeps.summary import COLUMNS, RunRecord, best_row, best_run_id, record_from_run


def open_parent_run(client, experiment_id: str, sweep: Sweep) -> str:
    """The id of `sweep`'s parent run in `experiment_id`: the latest run tagged with its
    `zssr.sweep_id`, set RUNNING again (resume), else a new run with the sweep's tags, params and
    file (see the module docstring). `client` is an `mlflow.MlflowClient`; its errors propagate."""
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


def child_runs(client, experiment_id: str, parent_id: str) -> list:
    """Every run of `experiment_id` nested under `parent_id` (tag `mlflow.parentRunId`), as
    `mlflow.entities.Run`s, all pages."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                  max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def run_records(client, experiment_id: str, parent_id: str, results: list[PointResult]) -> dict[str, RunRecord]:
    """Per point key, what MLflow holds (a FINISHED child wins over failed attempts, else the
    latest), overridden by this session's failures: their errors are the engine's own words and
    a lost worker leaves no run to read."""
    records: dict[str, RunRecord] = {}
    for run in sorted(child_runs(client, experiment_id, parent_id), key=lambda r: r.info.start_time or 0):
        key = run.data.tags.get("zssr.sweep_key")
        if key not in records or records[key].status != "FINISHED":
            records[key] = record_from_run(run)
    for result in results:
        if result.status != "FINISHED" or result.key not in records:
            records[result.key] = RunRecord(result.status, result.metrics, result.seconds, result.error,
                                            result.run_id)
    return records


def log_best_point(client, parent_id: str, sweep: Sweep, rows, records: dict[str, RunRecord]) -> None:
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


def finish_parent_run(client, parent_id: str, paths: list[Path], finished: int, failed: int) -> None:
    """Log the summary files `paths` and the run counts to the parent and end it: FINISHED when
    no run `failed`, else FAILED with tag `zssr.failed_runs`."""
    for path in paths:
        client.log_artifact(parent_id, str(path))
    client.log_metric(parent_id, "runs/finished", finished)
    client.log_metric(parent_id, "runs/failed", failed)
    client.set_tag(parent_id, "zssr.failed_runs", str(failed))
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")


def abort_parent_run(client, parent_id: str, err: BaseException) -> None:
    """End the parent when the sweep stops early on `err`: KILLED for a Ctrl-C (tag `error`
    "interrupted"), else FAILED with the error as tag `error`."""
    interrupted = isinstance(err, KeyboardInterrupt)
    client.set_tag(parent_id, "error", "interrupted" if interrupted else f"{type(err).__name__}: {err}")
    client.set_terminated(parent_id, "KILLED" if interrupted else "FAILED")
