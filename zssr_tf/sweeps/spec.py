"""Parameter sweeps: a YAML file names a base config, the images and the values to try; every
(image, point) is one `zssr train`-like run nested under one parent MLflow run. The full
reference, with engines, resume and the summary: docs/sweeps.md.

Sweep file (every key is optional but `images`, which `zssr sweep --image` may replace):

    name: noise_crop                  # parent run name and output folder (default: the file's stem)
    base: default                     # config the points start from: a YAML path (relative to the
                                      # sweep file, else to the working directory) or a preset name
    overrides: {max_iters: 3000}      # fixed settings for every point
    images: [data/lr/*.png]           # image paths or globs, relative to the working directory
    ground_truth: "{dir}/../hr/{name}"  # pattern per image; where the file is missing, no PSNR/SSIM
    kernels: ["{dir}/{stem}_k.mat"]   # one pattern per scale step; the files must exist
    grid: {noise_std: [0, 0.025], crop_size: [64, 128]}  # cartesian product
    zip: {seed: [0, 1], learning_rate: [1e-3, 1e-4]}    # equal-length lists varied together
    resources: {num_cpus: 1, num_gpus: 0}                # per run, for --engine ray

Paths in `images`, `ground_truth` and `kernels` are relative to the working directory, as on the
command line (a sweep file may be a shipped preset far from the data). Patterns fill in {dir}
(the image's folder), {stem} (its file name without suffix) and {name} (its file name).

Points are the grid's product times the zip rows (one point when both are empty); every point
runs on every image. Settings apply in this order, later ones winning: base config, `overrides`,
`key=value` on the command line, the point's values (a swept key may not also be set in
`overrides` or on the command line, so no setting is silently ignored). Every point's config is
validated when the file is loaded, before anything runs, and so is every (image, point)'s input:
the image and ground truth are read and checked against the point's scale steps (GT size and
channels), and the kernels against its steps (`checks.check_inputs`). Running points is `engines`'
job; resume and progress are `runner`'s; the parent run `parent_run`'s; the summary `summary`'s.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


from zssr_tf.checks import check_inputs
from zssr_tf.config import KEY_TO_SECTION, PRESETS_DIR, Config, load_config, parse_overrides, read_yaml_mapping, suggest
from zssr_tf.errors import ZSSRError
from zssr_tf.hashing import file_sha256
from zssr_tf.sweeps.inputs import clashing_stems

SWEEPS_DIR = PRESETS_DIR / "sweeps"
SWEEP_KEYS = ("name", "base", "overrides", "images", "ground_truth", "kernels", "grid", "zip", "resources")
RESOURCE_KEYS = {"num_cpus": 1.0, "num_gpus": 0.0}
PLACEHOLDERS = ("dir", "stem", "name")
# Where and under which name runs are tracked is the sweep's, not a point's, so these cannot be
# swept; with the display setting they also do not change a run's result, so the point key
# leaves them out (a rerun with another output folder still skips finished points).
NOT_SWEPT = ("run.output_dir", "run.tracking_uri", "run.experiment_name")
NOT_IN_KEY = NOT_SWEPT + ("run.progress_every",)


@dataclass(frozen=True)
class Point:
    """One run of a sweep: point `index` (shared by all images) on one image.

    `values`: the swept keys as written in the sweep file -> their resolved config values.
    `key`: hash of the image's name, the input files' contents and the resolved config (but for
    NOT_IN_KEY); identifies the run on resume.
    """

    index: int
    values: dict[str, Any]
    image: str
    ground_truth: str | None
    kernels: tuple[str, ...]
    config: Config
    key: str

    @property
    def number(self) -> int:
        """The point's number as users see it: index + 1 (`--dry-run`, progress lines, output
        folders, the summary's `point` column, front.png)."""
        return self.index + 1

    @property
    def label(self) -> str:
        """`noise_std=0.025 crop_size=96` (empty for a sweep without axes)."""
        return format_values(self.values)

    @property
    def image_name(self) -> str:
        return Path(self.image).stem


@dataclass(frozen=True)
class Sweep:
    """A loaded, validated sweep: its points in run order (point by point, images inside)."""

    path: Path
    name: str
    base: str
    axes: tuple[str, ...]
    points: tuple[Point, ...]
    resources: dict[str, float]
    base_config: Config  # base + fixed settings: where runs are tracked and written
    settings: tuple[str, ...]  # the fixed settings (file's overrides, then command line) as key=value
    sweep_id: str

    @property
    def n_images(self) -> int:
        return len({p.image for p in self.points})

    @property
    def n_points(self) -> int:
        return len({p.index for p in self.points})


def describe(sweep: Sweep) -> str:
    """The runs a sweep expands to, one line each, as `zssr sweep --dry-run` prints them."""
    lines = [f"sweep {sweep.name} ({sweep.path}): base {sweep.base}"
             + (f" with {' '.join(sweep.settings)}" if sweep.settings else ""),
             f"{sweep.n_points} point(s) x {sweep.n_images} image(s) = {len(sweep.points)} runs"]
    for point in sweep.points:
        extras = [f"gt {Path(point.ground_truth).name}"] if point.ground_truth else ["no gt"]
        extras += [f"kernel {Path(k).name}" for k in point.kernels]
        lines.append(f"  [{point.number}] {point.image_name} {point.label}  ({', '.join(extras)}; key {point.key})")
    return "\n".join(lines) + "\n"


def format_values(values: dict[str, Any]) -> str:
    """`{"noise_std": 0.025, "crop_size": 96}` -> `noise_std=0.025 crop_size=96`."""
    return " ".join(f"{key}={format_value(value)}" for key, value in values.items())


def format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def resolve_sweep_path(path: str | Path) -> Path:
    """A sweep file as given, or the name of a shipped one (`noise_crop`)."""
    for candidate in (Path(path), SWEEPS_DIR / str(path), SWEEPS_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
    raise ZSSRError(f"sweep file {str(path)!r} not found; give a path to a YAML file or a shipped sweep: {shipped}")


def load_sweep(path: str | Path, overrides: Sequence[str] = (), images: Sequence[str] | None = None) -> Sweep:
    """Read, expand and validate a sweep file (see the module docstring).

    `overrides`: `key=value` settings for every point (the command line's). `images`: paths or
    globs that replace the file's `images`. Raises ZSSRError naming the file, key and fix.
    """
    path = resolve_sweep_path(path)
    spec = _read_spec(path)
    where = f"sweep {path}"
    name = str(spec.get("name", path.stem))
    base = str(spec.get("base", "default"))
    base_path = path.parent / base if (path.parent / base).is_file() else base
    fixed = _canonical(_mapping(spec, "overrides", where), f"{where}: overrides")
    command_line = _canonical(parse_overrides(list(overrides)), "command line")
    grid = _axes(spec, "grid", where)
    zipped = _axes(spec, "zip", where)
    _check_axes(grid, zipped, fixed, command_line, where)
    settings = [*_as_overrides(fixed), *_as_overrides(command_line)]
    base_config = _load(base_path, settings, f"{where}: base {base!r} with overrides")

    image_paths = _expand_images(spec.get("images") if images is None else images, where)
    ground_truths = {image: ground_truth_for(image, spec.get("ground_truth"), where) for image in image_paths}
    kernel_patterns = spec.get("kernels") or []
    if not isinstance(kernel_patterns, list):
        raise ZSSRError(f"{where}: kernels must be a list of patterns, one per scale step")
    kernels = {image: tuple(kernel_for(image, p, where) for p in kernel_patterns) for image in image_paths}

    digests: dict[str, str] = {}
    points = []
    for index, values in enumerate(_combinations(grid, zipped)):
        label = format_values({key: value for (key, _), value in values.items()})
        config = _load(base_path, [*settings, *_as_overrides({c: v for (_, c), v in values.items()})],
                       f"{where}: point {label}")
        if kernel_patterns and config.kernel_estimation.kernel == "estimate":
            raise ZSSRError(f"{where}: point {label} has kernel=estimate, which estimates the kernels the sweep's "
                            "kernels patterns give: remove the patterns or set kernel=given")
        if kernel_patterns and len(kernel_patterns) != len(config.scale.scale_factors):
            raise ZSSRError(f"{where}: {len(kernel_patterns)} kernel pattern(s) for the "
                            f"{len(config.scale.scale_factors)} scale step(s) of point {label}: give one per step")
        resolved = config.flat()
        swept = {key: resolved[canonical] for key, canonical in values}
        for image in image_paths:
            files = [image, ground_truths[image], *kernels[image]]
            key = point_key(Path(image).name, [file_digest(f, digests) if f else None for f in files], resolved)
            points.append(Point(index, swept, image, ground_truths[image], kernels[image], config, key))
    _check_point_inputs(points, where)
    keys = [p.key for p in points]
    if len(set(keys)) < len(keys):
        raise ZSSRError(f"{where}: some points are the same run (a value is listed twice in grid or zip); "
                        "list each value once")
    return Sweep(path=path, name=name, base=base,
                 axes=tuple(key for (key, _), _ in [*grid, *zipped]), points=tuple(points),
                 resources=_resources(spec, where), base_config=base_config, settings=tuple(settings),
                 sweep_id=short_hash([name, *sorted(keys)]))


def _check_point_inputs(points: Sequence[Point], where: str) -> None:
    """Read every image, ground truth and kernel once and check them against each point's config,
    so a bad (image, point) fails before any point trains. Raises ZSSRError naming both."""
    from zssr_tf.image_io import read_image
    from zssr_tf.kernels import load_kernel

    files: dict[str, Any] = {}

    def load(path: str, reader):
        if path not in files:
            try:
                files[path] = reader(path)
            except ZSSRError as err:
                raise ZSSRError(f"{where}: {err}") from None
        return files[path]

    for point in points:
        image = load(point.image, lambda p: read_image(p)[0])
        gt = load(point.ground_truth, lambda p: read_image(p)[0]) if point.ground_truth else None
        kernels = [load(k, load_kernel) for k in point.kernels] or None
        try:
            check_inputs(point.config, image, gt, kernels,
                         names={"image": f"the image {point.image}", "gt": f"the ground truth {point.ground_truth}"})
        except ZSSRError as err:
            label = f"point {point.label} on {Path(point.image).name}" if point.label else Path(point.image).name
            raise ZSSRError(f"{where}: {label}: {err}") from None


def _read_spec(path: Path) -> dict[str, Any]:
    spec = read_yaml_mapping(path, "sweep")
    for key in spec:
        if key not in SWEEP_KEYS:
            raise ZSSRError(f"sweep {path}: unknown key {key!r}{suggest(str(key), SWEEP_KEYS)}")
    return spec


def _mapping(spec: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = spec.get(name) or {}
    if not isinstance(value, dict):
        raise ZSSRError(f"{where}: {name} must be a mapping of config keys, e.g. {{noise_std: 0.0125}}")
    return value


def _canonical(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Keys as `section.key` so that `noise_std` and `augment.noise_std` are one setting."""
    return {_canonical_key(key, where): value for key, value in values.items()}


def _canonical_key(key: Any, where: str) -> str:
    section, _, name = str(key).rpartition(".")
    if name in KEY_TO_SECTION and section in ("", KEY_TO_SECTION[name]):
        return f"{KEY_TO_SECTION[name]}.{name}"
    valid = [*KEY_TO_SECTION, *(f"{s}.{k}" for k, s in KEY_TO_SECTION.items())]
    raise ZSSRError(f"{where}: unknown config key {str(key)!r}{suggest(str(key), valid)}")


def _axes(spec: dict[str, Any], name: str, where: str) -> list[tuple[tuple[str, str], list[Any]]]:
    """[((key as written, section.key), values), ...] of the `grid` or `zip` mapping."""
    axes = []
    for key, values in _mapping(spec, name, where).items():
        if not isinstance(values, list) or not values:
            raise ZSSRError(f"{where}: {name}.{key} must be a non-empty list of values, e.g. [0, 0.0125]")
        axes.append(((str(key), _canonical_key(key, f"{where}: {name}")), values))
    lengths = {key: len(values) for (key, _), values in axes}
    if name == "zip" and len(set(lengths.values())) > 1:
        raise ZSSRError(f"{where}: the zip lists must have equal lengths, got {lengths}")
    return axes


def _check_axes(grid, zipped, fixed: dict[str, Any], command_line: dict[str, Any], where: str) -> None:
    seen: dict[str, str] = {}
    for (key, canonical), _ in [*grid, *zipped]:
        if canonical in NOT_SWEPT:
            raise ZSSRError(f"{where}: {key} cannot be swept: it is the sweep's setting (set it in overrides)")
        if canonical in seen:
            raise ZSSRError(f"{where}: {canonical} is swept twice ({seen[canonical]} and {key}); sweep it once")
        seen[canonical] = key
        for layer, values in (("in overrides", fixed), ("on the command line", command_line)):
            if canonical in values:
                raise ZSSRError(f"{where}: {key} is swept and also set {layer}; remove one of them")


def _as_overrides(values: dict[str, Any]) -> list[str]:
    # JSON is valid YAML, so load_config parses each value back exactly (lists included).
    return [f"{key}={json.dumps(value, default=str)}" for key, value in values.items()]


def _load(base_path, overrides: list[str], where: str) -> Config:
    try:
        return load_config(base_path, overrides)
    except ZSSRError as err:
        raise ZSSRError(f"{where}: {str(err).removeprefix('command line: ')}") from None


def _combinations(grid, zipped) -> list[dict[tuple[str, str], Any]]:
    """Grid product times zip rows, keyed by (key as written, section.key)."""
    rows = [dict(zip([k for k, _ in zipped], row)) for row in zip(*[v for _, v in zipped])] or [{}]
    return [{**dict(zip([k for k, _ in grid], combo)), **row}
            for combo in itertools.product(*[v for _, v in grid]) for row in rows]


def _expand_images(patterns: Any, where: str) -> list[str]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns or not isinstance(patterns, (list, tuple)):
        raise ZSSRError(f"{where}: images must list image paths or globs, e.g. [data/lr/*.png]")
    found: list[str] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not [m for m in matches if Path(m).is_file()]:
            raise ZSSRError(f"{where}: no image file matches {pattern!r} (relative to the working directory "
                            f"{Path.cwd()}); run from the folder the paths are relative to, or give the images "
                            "with --image PATH_OR_GLOB")
        found += [str(Path(m).resolve()) for m in matches if Path(m).is_file()]
    images = list(dict.fromkeys(found))
    clashes = clashing_stems(images)
    if clashes:
        raise ZSSRError(f"{where}: several images are named {clashes}; runs and outputs are named after the "
                        "image, so rename or sweep them separately")
    return images


def _fill(pattern: str, image: str, what: str, where: str) -> str:
    path = Path(image)
    try:
        return os.path.normpath(str(pattern).format(dir=path.parent, stem=path.stem, name=path.name))
    except (KeyError, IndexError, ValueError) as err:
        raise ZSSRError(f"{where}: {what} pattern {pattern!r} is invalid ({err}); use the placeholders "
                        f"{{{'}, {'.join(PLACEHOLDERS)}}}") from None


def ground_truth_for(image: str, pattern: str | None, where: str) -> str | None:
    """The ground truth `pattern` ({dir}, {stem}, {name}) gives `image`, or None when there is no
    pattern or no such file. ZSSRError (prefixed `where`) for an invalid pattern."""
    if not pattern:
        return None
    path = _fill(pattern, image, "ground_truth", where)
    return path if Path(path).is_file() else None


def kernel_for(image: str, pattern: str, where: str) -> str:
    """The kernel file `pattern` ({dir}, {stem}, {name}) gives `image`. ZSSRError (prefixed
    `where`) for an invalid pattern or a file that does not exist."""
    path = _fill(pattern, image, "kernels", where)
    if not Path(path).is_file():
        raise ZSSRError(f"{where}: kernel pattern {pattern!r} gives {path} for {Path(image).name}, which does "
                        "not exist")
    return path


def _resources(spec: dict[str, Any], where: str) -> dict[str, float]:
    given = spec.get("resources") or {}
    if not isinstance(given, dict):
        raise ZSSRError(f"{where}: resources must be a mapping like {{num_cpus: 1, num_gpus: 0}}")
    resources = dict(RESOURCE_KEYS)
    for key, value in given.items():
        if key not in RESOURCE_KEYS:
            raise ZSSRError(f"{where}: unknown resource {key!r}{suggest(str(key), RESOURCE_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ZSSRError(f"{where}: resources.{key} must be a number >= 0, got {value!r}")
        resources[key] = float(value)
    return resources


def file_digest(path: str, cache: dict[str, str]) -> str:
    """The SHA-256 of the file `path`, computed once per path of `cache`."""
    if path not in cache:
        cache[path] = file_sha256(path)
    return cache[path]


def point_key(image_name: str, file_digests: list[str | None], flat_config: dict[str, Any]) -> str:
    """The key that identifies a run on resume (`Point.key`): a hash of the image's file name,
    its input files' digests and the flat resolved config but for NOT_IN_KEY."""
    # The name too: runs are named after the image, and two copies of one file are two runs.
    settings = {k: v for k, v in flat_config.items() if k not in NOT_IN_KEY}
    return short_hash([image_name, file_digests, settings])


def short_hash(value: Any) -> str:
    """The first 20 hex digits of the SHA-256 of `value` as sorted JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]
