"""The summary of a set of images (`sequence.run_set`): one row per image as `summary.csv` and
`summary.md` (scores, seconds, iterations, where the image started and its kernel came from, a
link to its run; the means; with carry-over, the later images' mean time against the first's;
the failed images and the inputs left out), and `contact_sheet.png`: a few inputs beside their
outputs. The parent run logs them as artifacts and the means as `mean/<column>` metrics."""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from zssr_tf.sweeps.engines import PointResult
from zssr_tf.sweeps.parent_run import child_runs, run_records
from zssr_tf.sweeps.spec import Point
from zssr_tf.sweeps.summary import COLUMNS, Failure

# Images the contact sheet shows at most, spread evenly over the set.
CONTACT_SHEET_IMAGES = 4


@dataclass(frozen=True)
class ImageRow:
    """One image of a set: its place (from 1), name, status, the run's final metrics (as in
    `summary.COLUMNS`) and seconds, where it started and its kernel came from (the run's tags
    `sequence.start`, `sequence.kernel`), its run id, and its input and output files."""

    number: int
    image: str
    status: str
    values: dict[str, float]
    start: str
    kernel: str
    run_id: str | None
    input_path: str
    output_path: Path | None


def set_rows(opened, points: Sequence[Point], results: list[PointResult], out_dir: Path
             ) -> tuple[list[ImageRow], list[Failure]]:
    """The rows of `points` in order, from the children of `opened`'s parent run (a FINISHED run
    wins over failed attempts) and this session's `results`, and the images that did not finish;
    their outputs are in `out_dir`."""
    records = run_records(opened.client, opened.experiment_id, opened.parent_id, results)
    tags = {run.info.run_id: run.data.tags for run in child_runs(opened.client, opened.experiment_id,
                                                                 opened.parent_id)}
    rows, failures = [], []
    for number, point in enumerate(points, 1):
        record = records.get(point.key)
        status = record.status if record else "never ran"
        values = {}
        if record and record.status == "FINISHED":
            values = {column: record.metrics[metric] for column, metric, _ in COLUMNS
                      if metric and metric in record.metrics}
            if record.seconds is not None:
                values["seconds"] = record.seconds
        else:
            error = (record.error if record else None) or (f"run ended {record.status}" if record else "never ran")
            failures.append(Failure(0, point.image_name, "", error, record.run_id if record else None))
        run_tags = tags.get(record.run_id, {}) if record and record.run_id else {}
        rows.append(ImageRow(number, point.image_name, status, values, run_tags.get("sequence.start", ""),
                             run_tags.get("sequence.kernel", ""), record.run_id if record else None, point.image,
                             _output_path(point, out_dir) if status == "FINISHED" else None))
    return rows, failures


def means(rows: Sequence[ImageRow]) -> dict[str, float]:
    """The mean of each column over the finished rows that have it."""
    found: dict[str, list[float]] = {}
    for row in rows:
        for column, value in row.values.items():
            if math.isfinite(value):
                found.setdefault(column, []).append(value)
    return {column: sum(values) / len(values) for column, values in found.items()}


def write_set_summary(out_dir: Path, name: str, rows: Sequence[ImageRow], failures: Sequence[Failure],
                      skipped: Sequence[tuple[str, str]], carry_over: str,
                      run_url: Callable[[str], str] | None = None) -> tuple[list[Path], str]:
    """Write summary.csv, summary.md and (when an image finished) contact_sheet.png to `out_dir`;
    returns their paths and the Markdown (`run_url`: run id -> its address, for links)."""
    columns = [c for c, _, _ in COLUMNS if any(c in row.values for row in rows)]
    csv_path = out_dir / "summary.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "image", "status", *columns, "start", "kernel", "run_id"])
        for row in rows:
            writer.writerow([row.number, row.image, row.status, *(row.values.get(c, "") for c in columns),
                             row.start, row.kernel, row.run_id or ""])
    text = markdown(name, rows, failures, skipped, carry_over, run_url)
    md_path = out_dir / "summary.md"
    md_path.write_text(text)
    sheet = contact_sheet(out_dir / "contact_sheet.png", rows)
    return [csv_path, md_path, *([sheet] if sheet else [])], text


def markdown(name: str, rows: Sequence[ImageRow], failures: Sequence[Failure], skipped: Sequence[tuple[str, str]],
             carry_over: str, run_url: Callable[[str], str] | None = None) -> str:
    """The set's summary in Markdown (see the module docstring)."""
    columns = [(c, fmt) for c, _, fmt in COLUMNS if any(c in row.values for row in rows)]
    link = (lambda row: f"[run]({run_url(row.run_id)})") if run_url else (lambda row: row.run_id)
    header = ["#", "image", "status", *(c for c, _ in columns), "start", "kernel", *(["run"] if run_url else [])]
    lines = [f"# Set {name}", "", f"Carry-over: {carry_over}. PSNR-Y/SSIM-Y in dB against the ground truth where "
             "one was given; seconds: wall time of each run.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row.number), row.image, row.status, *(fmt.format(row.values[c]) if c in row.values else ""
                                                          for c, fmt in columns), row.start, row.kernel,
                 *([link(row) if row.run_id else ""] if run_url else [])]
        lines.append("| " + " | ".join(cells) + " |")
    averaged = means(rows)
    if averaged:
        cells = ["", "mean", "", *(fmt.format(averaged[c]) if c in averaged else "" for c, fmt in columns), "", "",
                 *([""] if run_url else [])]
        lines.append("| " + " | ".join(cells) + " |")
    ratio = later_time_ratio(rows)
    if ratio is not None:
        lines += ["", f"Images after the first took {ratio:.1%} of the first one's time on average."]
    if failures:
        lines += ["", f"## Failed images ({len(failures)})", ""]
        lines += [f"- {f.image}: {f.error}" for f in failures]
    if skipped:
        lines += ["", f"## Skipped inputs ({len(skipped)})", ""]
        lines += [f"- {path}: {why}" for path, why in skipped]
    return "\n".join(lines) + "\n"


def later_time_ratio(rows: Sequence[ImageRow]) -> float | None:
    """Mean seconds of the finished images that started from another, over the seconds of the
    first cold-started one; None without both."""
    cold = [r.values["seconds"] for r in rows if r.start == "cold" and "seconds" in r.values]
    carried = [r.values["seconds"] for r in rows if r.start not in ("", "cold") and "seconds" in r.values]
    return sum(carried) / len(carried) / cold[0] if cold and carried and cold[0] > 0 else None


def contact_sheet(path: Path, rows: Sequence[ImageRow], count: int = CONTACT_SHEET_IMAGES) -> Path | None:
    """Up to `count` finished images, spread over the set, each input beside its output at the
    same displayed size (the input's pixels drawn as blocks), titled with the image's name and
    PSNR where known. None when no image finished."""
    from zssr_tf.image_io import read_image

    shown = [r for r in rows if r.output_path is not None and r.output_path.is_file()]
    if not shown:
        return None
    shown = [shown[i] for i in sorted({round(k) for k in np.linspace(0, len(shown) - 1, min(count, len(shown)))})]
    fig = Figure(figsize=(6.4, 3.2 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for (left, right), row in zip(axes, shown):
        lr, sr = read_image(row.input_path)[0], read_image(row.output_path)[0]
        extent = (0, sr.shape[1], sr.shape[0], 0)
        gray = {"cmap": "gray", "vmin": 0, "vmax": 1} if lr.shape[2] == 1 else {}
        left.imshow(np.squeeze(lr), interpolation="nearest", extent=extent, **gray)
        right.imshow(np.squeeze(sr), interpolation="nearest", extent=extent, **gray)
        score = f", {row.values['psnr']:.2f} dB" if "psnr" in row.values else ""
        left.set_title(f"{row.number}. {row.image}: input", fontsize=9)
        right.set_title(f"output{score}", fontsize=9)
        for ax in (left, right):
            ax.axis("off")
    fig.savefig(path, dpi=100)
    return path


def log_summary(opened, rows: Sequence[ImageRow]) -> None:
    """The means over the finished images as `mean/<column>` metrics of the parent run, and the
    later images' time ratio as `mean/later_time_ratio` when there is one."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {f"mean/{column}": value for column, value in means(rows).items()}
    ratio = later_time_ratio(rows)
    if ratio is not None:
        values["mean/later_time_ratio"] = ratio
    if values:
        opened.client.log_batch(opened.parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def _output_path(point: Point, out_dir: Path) -> Path:
    """Where the run of `point` wrote its SR image: `<out_dir>/<stem>_x<scale>_zssr.png`."""
    from zssr_tf.config import format_scale

    return out_dir / f"{Path(point.image).stem}_{format_scale(point.config.scale.scale_factors[-1])}_zssr.png"
