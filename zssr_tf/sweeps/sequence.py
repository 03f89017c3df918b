"""`zssr train` on many images (a folder, glob patterns, several files, a TIFF stack, a video):
one run per image, nested under one parent MLflow run, as a sweep of one point over the images.

Planning (`plan_set`): the inputs are expanded (`inputs`), every image, ground truth and kernel is
read and checked against the config before anything trains. An image that cannot be used (an
unreadable file, one too small for the scale, a ground truth of the wrong size) is left out with
one warning for all of them; the parent run lists them (tag `zssr.skipped_inputs`, summary.md).
With carry-over, images of different sizes are fine but of different channel counts are refused
(one network cannot run on both).

Running (`run_set`): the sweep machinery (`runner.open_sweep`, `collect`, the engines) with
- `sequence.carry_over: none`: every image alone, on the local engine (`workers` at a time) or Ray;
- `weights` / `weights_and_kernel`: one chain, in order, here; each image starts from the
  last finished one (`carry_over`). A chain is sequential, so `--workers` > 1 and Ray are refused.
Resume: images whose run FINISHED under the parent are skipped (the chain picks up the carry
their files left). Outputs: `<out>/<stem>_x<scale>_zssr.png` (and `_bicubic`), `<stem>.log`,
`mlflow_runs/`, `frames/` (pages of stacks, frames of videos), `carry/`, `set.yaml` (the inputs
and settings, logged to the parent), `summary.{csv,md}` and `contact_sheet.png`
(`sequence_summary`). `<out>` defaults to `<run.output_dir>/sets/<name>`.

Parent-run metrics while it runs: `images/done`, `images/failed`, `images/remaining` and
`images/eta_seconds` (stepped by images done); children are tagged `sequence.index`,
`sequence.start` (cold, or the image they start from) and, in blind runs, `sequence.kernel`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import yaml

from zssr_tf.checks import check_inputs, check_output_dir
from zssr_tf.config import Config, load_config
from zssr_tf.errors import ZSSRError, ZSSRWarning
from zssr_tf.sweeps.engines import PointResult, run_point
from zssr_tf.sweeps.inputs import expand_inputs, set_name
from zssr_tf.sweeps.parent_run import finish_parent_run
from zssr_tf.sweeps.runner import (OpenSweep, Progress, check_engine, collect, open_sweep, point_task, run_engine,
                                   run_url_for, safely)
from zssr_tf.sweeps.spec import (RESOURCE_KEYS, Point, Sweep, file_digest, ground_truth_for, kernel_for, point_key,
                                 short_hash)
from zssr_tf.sweeps.summary import Failure


@dataclass(frozen=True)
class ImageSet:
    """A planned set: `sweep` has one point per usable image, in run order (all point index 0);
    `skipped` lists (path, why) of the inputs left out; outputs go to `out_dir`."""

    sweep: Sweep
    out_dir: Path
    skipped: tuple[tuple[str, str], ...]

    @property
    def config(self) -> Config:
        return self.sweep.base_config


@dataclass(frozen=True)
class SetReport:
    """How `run_set` ended: `skipped` images had finished before, `ran` ran now, `failures` did
    not finish; `summary` is summary.md."""

    parent_run_id: str
    out_dir: Path
    skipped: int
    ran: int
    failures: list[Failure]
    summary: Path
    seconds: float


def plan_set(inputs: Sequence[str], config: str | Path | None = None, overrides: Sequence[str] = (),
             gt: str | None = None, kernels: Sequence[str] = (), out_dir: str | Path | None = None,
             order: str = "name") -> ImageSet:
    """Expand `inputs` and check every image (see the module docstring). `config`: a YAML file or
    preset; `overrides`: key=value settings; `gt`: a folder holding ground truths under the
    inputs' file names, or a pattern with {dir}, {stem}, {name} (an image without one gets no
    PSNR); `kernels`: a file or pattern per scale step; `order`: "name" or "given". Raises
    ZSSRError for a bad setting, input or kernel, a channel mismatch in a carry-over chain, or
    when no input can be used; warns (ZSSRWarning) once for the inputs left out."""
    loaded = load_config(config, list(overrides))
    name = set_name(inputs)
    out = check_output_dir(out_dir or Path(loaded.run.output_dir) / "sets" / name,
                           "--out" if out_dir else "run.output_dir").resolve()
    images = expand_inputs(inputs, out / "frames", order)
    where = "zssr train"
    if kernels and loaded.kernel_estimation.kernel == "estimate":
        raise ZSSRError("--kernel gives the kernels and kernel=estimate estimates them: use one of them")
    gt_pattern = str(Path(gt) / "{name}") if gt and Path(gt).is_dir() else gt
    if gt_pattern and "{" not in gt_pattern:
        raise ZSSRError(f"--gt {gt} with several inputs: give the folder of the ground truths (named as the inputs) "
                        "or a pattern such as '{dir}/../hr/{name}'")
    points, skipped, channels, digests = [], [], {}, {}
    for image in images:
        gt_path = ground_truth_for(image, gt_pattern, where)
        kernel_paths = tuple(kernel_for(image, pattern, where) for pattern in kernels)
        try:
            channels[image] = _check_image(loaded, image, gt_path, kernel_paths)
        except ZSSRError as err:
            skipped.append((image, str(err)))
            continue
        files = [image, gt_path, *kernel_paths]
        key = point_key(Path(image).name, [file_digest(f, digests) if f else None for f in files], loaded.flat())
        points.append(Point(0, {}, image, gt_path, kernel_paths, loaded, key))
    if skipped:
        warnings.warn(f"skipping {len(skipped)} of {len(images)} inputs that cannot be used: "
                      + "; ".join(f"{Path(path).name}: {why}" for path, why in skipped), ZSSRWarning, stacklevel=2)
    if not points:
        raise ZSSRError(f"none of the {len(images)} inputs can be used; the first, {Path(skipped[0][0]).name}: "
                        f"{skipped[0][1]}")
    if loaded.sequence.carry_over != "none" and len(set(channels.values())) > 1:
        counts = {}
        for image, count in channels.items():
            counts.setdefault(count, Path(image).name)
        raise ZSSRError(f"sequence.carry_over={loaded.sequence.carry_over} hands one network from image to image, but "
                        f"the images have different channel counts ("
                        + ", ".join(f"{n} in {image}" for n, image in sorted(counts.items()))
                        + "): convert them to one (all gray or all RGB) or use sequence.carry_over=none")
    keys = [p.key for p in points]
    sweep = Sweep(path=out / "set.yaml", name=name, base=str(config or "default"), axes=(), points=tuple(points),
                  resources=dict(RESOURCE_KEYS), base_config=loaded, settings=tuple(overrides),
                  sweep_id=short_hash([name, *keys]))
    return ImageSet(sweep, out, tuple(skipped))


def run_set(image_set: ImageSet, engine: str = "local", workers: int = 1, address: str | None = None) -> SetReport:
    """Run every image of `image_set` not finished before (see the module docstring) and write
    and log the summary and contact sheet. Raises ZSSRError for an engine setup that cannot work
    (a carry-over chain with `workers` > 1 or on Ray) or a store that cannot be used."""
    from zssr_tf.sweeps.sequence_summary import log_summary, set_rows, write_set_summary

    start = time.monotonic()
    sweep, out, carry_over = image_set.sweep, image_set.out_dir, image_set.config.sequence.carry_over
    check_engine(engine, workers, address)
    if carry_over != "none" and (workers > 1 or engine == "ray"):
        raise ZSSRError(f"sequence.carry_over={carry_over} runs the images as one chain, each starting from the one "
                        "before, so one at a time: leave out --workers and --engine ray, or use "
                        "sequence.carry_over=none to run the images independently in parallel")
    out.mkdir(parents=True, exist_ok=True)
    _warn_when_replacing_another_set(sweep.path, sweep.sweep_id)
    sweep.path.write_text(yaml.safe_dump(_description(image_set), sort_keys=False))
    opened = open_sweep(sweep, address)
    safely("tag the parent run", _tag_parent, opened, image_set)
    todo = [p for p in sweep.points if p.key not in opened.finished]
    where = (f"on Ray ({address or 'local cluster'})" if engine == "ray" else
             f"here, {workers} at a time" if carry_over == "none" else f"here, in order, carrying {carry_over} over")
    print(f"{sweep.name}: {len(sweep.points)} image(s)"
          + (f" ({len(image_set.skipped)} input(s) skipped)" if image_set.skipped else "")
          + f"; {len(sweep.points) - len(todo)} finished before, {len(todo)} to run {where}\n"
          f"MLflow parent run {opened.parent_id} in {opened.uri}; outputs and logs in {out}", flush=True)

    by_key = {p.key: p for p in todo}
    progress = SetProgress(len(todo), opened, chain=carry_over != "none")
    if carry_over == "none":
        numbers = {p.key: str(n) for n, p in enumerate(sweep.points, 1)}
        tasks = [_task(p, sweep, opened, out, {"sequence.index": numbers[p.key], "sequence.start": "cold"})
                 for p in todo]
        results = run_engine(tasks, engine, workers, address, sweep.resources)
    else:
        results = run_chain(sweep, opened, out)
    collected = collect(opened, results, lambda result: progress.update(by_key[result.key], result))

    rows, failures = set_rows(opened, sweep.points, collected, out)
    paths, text = write_set_summary(out, sweep.name, rows, failures, image_set.skipped, carry_over,
                                    run_url_for(opened))
    print("\n" + text, end="")
    parent_id = opened.parent_id
    safely(f"log the summary to the parent run {parent_id}", log_summary, opened, rows)
    safely(f"log the summary to the parent run {parent_id}", finish_parent_run, opened.client, parent_id, paths,
           len(sweep.points) - len(failures), len(failures))
    print(f"summary: {out / 'summary.md'}; parent run {parent_id} "
          f"({'FAILED: ' + str(len(failures)) + ' failed' if failures else 'FINISHED'})")
    return SetReport(parent_id, out, len(sweep.points) - len(todo), len(todo), failures, out / "summary.md",
                     time.monotonic() - start)


def run_chain(sweep: Sweep, opened: OpenSweep, out: Path) -> Iterator[PointResult]:
    """Run the unfinished points of `sweep` in order, here, each starting from what the last
    finished image carried over (`carry_over`); yields each result as it ends. A finished image
    skipped on a rerun hands over the carry its files left; where they are missing (or an
    image's carry cannot be exported) the next image starts as the first one did."""
    from zssr_tf.image_io import read_image
    from zssr_tf.sweeps.carry_over import carried_config, export_carry, kernel_fit, load_carry

    carry = None
    for index, point in enumerate(sweep.points):
        stem = Path(point.image).stem
        if point.key in opened.finished:
            carry = load_carry(out, stem)
            continue
        config, kernels, tags = point.config, point.kernels, {"sequence.index": str(index + 1),
                                                              "sequence.start": "cold"}
        image = read_image(point.image)[0]
        if carry is not None:
            sequence = config.sequence
            take_kernels = False
            if sequence.carry_over == "weights_and_kernel" and carry.kernels and not point.kernels:
                fit = kernel_fit(carry, config, image)
                take_kernels = fit <= sequence.reestimate_ratio
                tags["sequence.kernel"] = (f"carried from {carry.source} (fit {fit:.2f})" if take_kernels else
                                           f"re-estimated (fit {fit:.2f} > {sequence.reestimate_ratio:g})")
                kernels = carry.kernels if take_kernels else kernels
            config = carried_config(config, carry, take_kernels)
            tags["sequence.start"] = carry.source
        elif config.kernel_estimation.kernel == "estimate":
            tags["sequence.kernel"] = "estimated"
        task = _task(point, sweep, opened, out, tags, config=config, kernels=kernels)
        result = run_point(task)
        if result.status == "FINISHED":
            try:
                carry = export_carry(task, result, image)
            except (OSError, ValueError) as err:
                warnings.warn(f"cannot carry {stem}'s network over ({type(err).__name__}: {err}); the next image "
                              "starts as the first one did", ZSSRWarning, stacklevel=2)
                carry = None
        yield result


class SetProgress(Progress):
    """The sweep's progress lines named by image, with the set's progress also logged to the
    parent run; in a `chain` the ETA assumes the images still to run take as long as those
    after the first did (the first trains in full, the others only for the short schedule)."""

    def __init__(self, total: int, opened: OpenSweep, chain: bool):
        super().__init__(total)
        self.opened = opened
        self.chain = chain
        self.seconds: list[float] = []
        self.failed = 0

    def update(self, point: Point, result: PointResult) -> None:
        self.seconds.append(result.seconds)
        self.failed += result.status != "FINISHED"
        super().update(point, result)
        values = {"images/done": self.done, "images/failed": self.failed,
                  "images/remaining": self.total - self.done, "images/eta_seconds": self.eta()}
        safely("log the progress to the parent run", _log_metrics, self.opened, values, self.done)

    def describe(self, point: Point) -> str:
        return point.image_name

    def eta(self) -> float:
        if self.chain and len(self.seconds) > 1:
            later = self.seconds[1:]
            return sum(later) / len(later) * (self.total - self.done)
        return super().eta()


def _check_image(config: Config, image: str, gt: str | None, kernels: Sequence[str]) -> int:
    """Read and check one image (with its ground truth and kernels) against `config`; its channel
    count. Raises ZSSRError for the first problem."""
    from zssr_tf.image_io import read_image
    from zssr_tf.kernels import load_kernel

    pixels = read_image(image)[0]
    gt_pixels = read_image(gt)[0] if gt else None
    check_inputs(config, pixels, gt_pixels, [load_kernel(k) for k in kernels] or None,
                 names={"image": f"the image {image}", "gt": f"the ground truth {gt}"})
    return pixels.shape[2]


def _task(point: Point, sweep: Sweep, opened: OpenSweep, out: Path, tags: dict[str, str],
          config: Config | None = None, kernels: Sequence[str] | None = None):
    import dataclasses

    carried = dataclasses.replace(point, config=config or point.config,
                                  kernels=tuple(point.kernels if kernels is None else kernels))
    return point_task(carried, sweep, opened, out, {"zssr.set": sweep.name, **tags})


def _warn_when_replacing_another_set(description: Path, set_id: str) -> None:
    """Warn (ZSSRWarning) when the output folder's `set.yaml` describes another set (other images
    or settings that share the folder's name): its summary, set.yaml and contact sheet are about to
    be replaced."""
    try:
        earlier = yaml.safe_load(description.read_text()) if description.is_file() else None
    except (OSError, yaml.YAMLError):
        earlier = None
    if isinstance(earlier, dict) and earlier.get("set_id") not in (None, set_id):
        warnings.warn(f"{description.parent} holds the outputs of another set of the same name (other images or "
                      "settings): its summary, set.yaml and contact sheet are replaced by this one's (its runs stay "
                      "in MLflow); give --out DIR to keep sets apart", ZSSRWarning, stacklevel=3)


def _description(image_set: ImageSet) -> dict:
    """set.yaml: the inputs in run order, those skipped and why, and the settings."""
    sweep = image_set.sweep
    return {"name": sweep.name, "set_id": sweep.sweep_id, "config": sweep.base, "settings": list(sweep.settings),
            "carry_over": image_set.config.sequence.carry_over,
            "images": [p.image for p in sweep.points],
            "skipped": [{"input": path, "why": why} for path, why in image_set.skipped]}


def _tag_parent(opened: OpenSweep, image_set: ImageSet) -> None:
    names = ", ".join(Path(path).name for path, _ in image_set.skipped)
    tags = {"zssr.set": image_set.sweep.name, "zssr.carry_over": image_set.config.sequence.carry_over,
            "zssr.skipped_inputs": (names[:4000] if names else "none")}
    for key, value in tags.items():
        opened.client.set_tag(opened.parent_id, key, value)


def _log_metrics(opened: OpenSweep, values: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    opened.client.log_batch(opened.parent_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])
