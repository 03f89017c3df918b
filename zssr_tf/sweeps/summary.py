"""A sweep's summary: per point, the mean over its images of the final scores and run time, as
`summary.csv`, `summary.md` (the best point first, links to every run, the failed runs and why),
`summary.png` (the score against the first swept key, one line per value of the others) and
`front.png` (mean PSNR against mean seconds per point, the Pareto front of quality against run
time drawn through them).

The best point (`best_row`) has the highest mean PSNR-Y when some image has a ground truth, else
the lowest mean reconstruction error, among the points that finished on every image (all points
when none did); the parent run logs its means as `best/<column>`."""

from __future__ import annotations

import csv
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from matplotlib.figure import Figure

from zssr_tf.sweeps.spec import Point, format_value, format_values

# Characters per line of front.png's key (7-point monospace across the 6.4-inch figure).
KEY_WIDTH = 85
# (column, MLflow metric of a child run, Markdown format). Seconds come from the run's start and
# end times.
COLUMNS = (("psnr", "final/psnr", "{:.2f}"), ("ssim", "final/ssim", "{:.4f}"),
           ("psnr_gain", "final/psnr_gain", "{:+.2f}"),
           ("reconstruction_error", "final/reconstruction_error", "{:.3e}"),
           ("iterations", "final/iterations", "{:.0f}"), ("seconds", None, "{:.1f}"))


@dataclass(frozen=True)
class RunRecord:
    """What MLflow (or the engine, for a run that left no record) says about one (image, point)."""

    status: str
    metrics: dict[str, float]
    seconds: float | None
    error: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Row:
    """One point: its swept values, how many of its images finished, the column means (over the
    finished runs that have the metric; PSNR/SSIM/gain only exist with ground truth), and
    (image name, run id) of its finished runs."""

    index: int
    values: dict[str, Any]
    images: int
    finished: int
    means: dict[str, float]
    runs: tuple[tuple[str, str], ...] = ()

    @property
    def number(self) -> int:
        """The point's number as users see it (`Point.number`)."""
        return self.index + 1


@dataclass(frozen=True)
class Failure:
    index: int
    image: str
    label: str
    error: str
    run_id: str | None


def record_from_run(run) -> RunRecord:
    """A RunRecord from an `mlflow.entities.Run` (a child of the sweep)."""
    info = run.info
    seconds = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
    return RunRecord(info.status, dict(run.data.metrics), seconds, run.data.tags.get("error"), info.run_id)


def summarize(points: Sequence[Point], records: dict[str, RunRecord]) -> tuple[list[Row], list[Failure]]:
    """Rows per point (in sweep order) and the failed runs; `records` maps point keys to their
    latest record (a missing key is a run that never started)."""
    rows, failures = [], []
    for index in dict.fromkeys(p.index for p in points):
        mine = [p for p in points if p.index == index]
        finished, run_ids = [], []
        for point in mine:
            record = records.get(point.key)
            if record is not None and record.status == "FINISHED":
                finished.append(record)
                if record.run_id:
                    run_ids.append((point.image_name, record.run_id))
                continue
            error = (record.error if record else None) or (f"run ended {record.status}" if record else "never ran")
            failures.append(Failure(index, point.image_name, point.label, error, record.run_id if record else None))
        means = {}
        for column, metric, _ in COLUMNS:
            found = [r.seconds if metric is None else r.metrics.get(metric) for r in finished]
            found = [v for v in found if v is not None and math.isfinite(v)]
            if found:
                means[column] = sum(found) / len(found)
        rows.append(Row(index, mine[0].values, len(mine), len(finished), means, tuple(run_ids)))
    return rows, failures


def best_row(rows: Sequence[Row]) -> Row | None:
    """The point with the highest mean PSNR when some point has one, else the lowest mean
    reconstruction error; None when no point has either. Points that finished on every image come
    first: a point whose means leave out the images it failed on competes only when no point
    finished them all."""
    complete = [r for r in rows if r.finished == r.images]
    return _best_scored(complete) or _best_scored(rows)


def _best_scored(rows: Sequence[Row]) -> Row | None:
    if any("psnr" in r.means for r in rows):
        return max((r for r in rows if "psnr" in r.means), key=lambda r: r.means["psnr"])
    scored = [r for r in rows if "reconstruction_error" in r.means]
    return min(scored, key=lambda r: r.means["reconstruction_error"]) if scored else None


def best_run_id(row: Row, records: dict[str, RunRecord]) -> str | None:
    """The run of `row`'s point with the best score of its images (PSNR, else reconstruction
    error), by the records of its runs."""
    scored = [(r.metrics, run_id) for _, run_id in row.runs
              for r in records.values() if r.run_id == run_id]
    with_psnr = [(m["final/psnr"], run_id) for m, run_id in scored if "final/psnr" in m]
    if with_psnr:
        return max(with_psnr)[1]
    with_error = [(m["final/reconstruction_error"], run_id) for m, run_id in scored if "final/reconstruction_error" in m]
    return min(with_error)[1] if with_error else (row.runs[0][1] if row.runs else None)


def write_summary(out_dir: str | Path, name: str, axes: Sequence[str], rows: Sequence[Row],
                  failures: Sequence[Failure], run_url: Callable[[str], str] | None = None) -> list[Path]:
    """Write summary.csv, summary.md and (when something was swept and scored) summary.png to
    `out_dir`; returns their paths. `run_url` maps a run id to its address in the MLflow UI (the
    Markdown links to the runs)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = _columns(rows)
    errors = {}
    for failure in failures:
        errors.setdefault(failure.index, []).append(f"{failure.image}: {failure.error}")
    csv_path = out_dir / "summary.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", *axes, "images", "finished", *(c[0] for c in columns), "run_ids", "errors"])
        for row in rows:
            writer.writerow([row.number, *(format_value(row.values[a]) for a in axes), row.images, row.finished,
                             *(row.means.get(c[0], "") for c in columns), " ".join(rid for _, rid in row.runs),
                             "; ".join(errors.get(row.index, []))])
    md_path = out_dir / "summary.md"
    md_path.write_text(markdown(name, axes, rows, failures, run_url))
    paths = [csv_path, md_path]
    plots = [plot_summary(out_dir / "summary.png", axes, rows), plot_front(out_dir / "front.png", rows)]
    return paths + [plot for plot in plots if plot]


def markdown(name: str, axes: Sequence[str], rows: Sequence[Row], failures: Sequence[Failure],
             run_url: Callable[[str], str] | None = None) -> str:
    """The summary in Markdown: the best point, a table of means over each point's finished
    images with links to its runs (`run_url(run_id)`; without it, no links column and plain run
    ids), then the failed runs with their errors."""
    columns = _columns(rows)
    link = (lambda text, run_id: f"[{text}]({run_url(run_id)})") if run_url else (lambda text, run_id: run_id)
    header = ["point", *axes, "images", *(c[0] for c in columns), *(["runs"] if run_url else [])]
    lines = [f"# Sweep {name}", ""]
    best = best_row(rows)
    if best is not None:
        metric = "psnr" if "psnr" in best.means else "reconstruction_error"
        score = f"{best.means['psnr']:.2f} dB" if metric == "psnr" else f"{best.means[metric]:.3e} reconstruction error"
        lines += [f"Best point: {format_values({a: best.values[a] for a in axes}) or 'the base settings'}, mean "
                  f"{score} (runs: {', '.join(link(image, rid) for image, rid in best.runs)}).", ""]
    lines += ["Means over each point's finished images (PSNR-Y in dB, SSIM-Y and the gain over "
              "bicubic: over those with a ground truth); seconds: wall time per run.", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row.number), *(format_value(row.values[a]) for a in axes), f"{row.finished}/{row.images}",
                 *(fmt.format(row.means[c]) if c in row.means else "" for c, _, fmt in columns),
                 *([", ".join(link(image, rid) for image, rid in row.runs)] if run_url else [])]
        lines.append("| " + " | ".join(cells) + " |")
    if failures:
        lines += ["", f"## Failed runs ({len(failures)})", ""]
        lines += [f"- {f.image} {f.label}: {f.error}" + (f" (run {link(f.run_id, f.run_id)})" if f.run_id else "")
                  for f in failures]
    return "\n".join(lines) + "\n"


def plot_summary(path: str | Path, axes: Sequence[str], rows: Sequence[Row]) -> Path | None:
    """Mean PSNR (or, without ground truth, reconstruction error) against the first swept key,
    one line per combination of the other keys' values. None when there is nothing to plot."""
    metric = "psnr" if any("psnr" in r.means for r in rows) else "reconstruction_error"
    if not axes or not any(metric in r.means for r in rows):
        return None
    x_key, others = axes[0], axes[1:]
    x_values = list(dict.fromkeys(format_value(r.values[x_key]) for r in rows))
    numeric = all(isinstance(r.values[x_key], (int, float)) and not isinstance(r.values[x_key], bool) for r in rows)
    lines: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if metric in row.means:
            x = row.values[x_key] if numeric else x_values.index(format_value(row.values[x_key]))
            lines.setdefault(format_values({k: row.values[k] for k in others}), []).append((x, row.means[metric]))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, points in lines.items():
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o", label=label or None)
    if not numeric:
        ax.set_xticks(range(len(x_values)), x_values)
    if metric == "reconstruction_error":
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel(x_key)
    ax.set_ylabel("mean PSNR-Y (dB)" if metric == "psnr" else "mean reconstruction error (MSE)")
    if others:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (seconds, psnr) points no other point beats on both axes (fewer or equal
    seconds and higher or equal PSNR, one of them strictly), ordered by seconds."""
    front = [i for i, (t, q) in enumerate(points)
             if not any(t2 <= t and q2 >= q and (t2, q2) != (t, q) for t2, q2 in points)]
    return sorted(front, key=lambda i: points[i])


def plot_front(path: str | Path, rows: Sequence[Row]) -> Path | None:
    """Mean PSNR-Y against mean seconds, one dot per point numbered as in summary.md's `point`
    column (and `--dry-run`'s list), the Pareto front as a line, and under the plot a key naming
    the settings of the points on the front. None when fewer than two points have both."""
    scored = [r for r in rows if "psnr" in r.means and "seconds" in r.means]
    if len(scored) < 2:
        return None
    points = [(r.means["seconds"], r.means["psnr"]) for r in scored]
    front = pareto_front(points)
    key_lines = [line for i in front for line in textwrap.wrap(
        f"{scored[i].number}: {format_values(scored[i].values) or 'the base settings'}", KEY_WIDTH,
        subsequent_indent="    ")]
    fig = Figure(figsize=(6.4, 4.2 + 0.13 * len(key_lines)), layout="constrained")
    ax, key = fig.subplots(2, 1, height_ratios=[4.2, 0.13 * len(key_lines) + 0.2])
    ax.scatter(*zip(*points), color="tab:gray")
    for row, (t, q) in zip(scored, points):
        ax.annotate(str(row.number), (t, q), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.plot(*zip(*(points[i] for i in front)), color="tab:blue", marker="o", label="Pareto front")
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("mean seconds per run")
    ax.set_ylabel("mean PSNR-Y (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    key.axis("off")
    key.text(0, 1, "\n".join(key_lines), fontsize=7, va="top", family="monospace")
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def _columns(rows: Sequence[Row]):
    """The COLUMNS some row has a value for (no PSNR columns when no image has a ground truth)."""
    return [c for c in COLUMNS if any(c[0] in row.means for row in rows)]
