"""Real-photo benchmark: unknown blur, sensor noise and JPEG together, scored per degradation cell.

    python experiments/bench_photo.py [--data experiments/data/photo_x2]
                                      [--methods bicubic estimate blind_real photo blind default real]
                                      [--images N | --only STEM ...] [--figure STEM]
                                      [--photo-variant KEY=VALUE[,KEY=VALUE] ...]

The set (made once, if --data does not exist, by experiments/make_degraded_set.py; seeded, so the
same files every time): the 19 HR images of Set5 and Set14 -> a random DIV2KRK-style 11x11 blur
-> x2 subsampling (block centre) -> Gaussian noise sigma in {0, 2, 5, 10}/255 -> JPEG quality in
{none (PNG), 90, 70, 50} (Pillow, 4:2:0), one image per cell (16 images), the manifest recording
each image's kernel, noise and quality:

    python experiments/make_degraded_set.py HR_DIR experiments/data/photo_x2 --random-anisotropic \\
        --noise-levels 0 2 5 10 --jpeg-qualities none 90 70 50 --per-cell 1

Methods per image, each preset as shipped: bicubic upscaling; `default` and `real` (the bicubic
kernel); `blind_real` and `photo` with one kernel estimate made by their shared
kernel_estimation settings (the estimation is identical for both, so it runs once: `estimate`,
its seconds counted in both); `blind` (its own estimate: it shaves the border) on the clean cells
(no noise, no JPEG) only, where `photo` must match it. `photo` resolves its `auto` settings from
the file as `zssr train` does (`pipeline.resolve_for_image`). Scores by DESIGN §2 (PSNR-Y/SSIM-Y,
shave 2), plus the output's 8x8 JPEG blockiness on the x2 grid (`metrics.blockiness`, about 1
without blocking). Every (image, method) result is cached in experiments/results/photo/<stem>.json
under the digest of the settings it was made with, so an interrupted run resumes and a changed
preset runs again. `--photo-variant` adds `photo` with overrides (a lever to measure, e.g.
max_iters=800), scored in a table of its own. The summary goes to
experiments/results/photo_x2.{md,json}; `--figure STEM`
(default: the noise 5, quality 50 image) writes the crops figure bicubic | blind_real | photo | HR
to experiments/results/figures/photo_crops.png from the outputs saved for that image.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import make_degraded_set  # noqa: E402
from bench_blind import bicubic_upscale, estimation_digest, training_digest  # noqa: E402
from common import RESULTS, benchmark_data_dir, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.errors import ZSSRError  # noqa: E402
from zssr_tf.image_io import read_image, write_image  # noqa: E402
from zssr_tf.kernel_estimation import KernelEstimationError, estimate_kernel  # noqa: E402
from zssr_tf.metrics import blockiness, evaluate  # noqa: E402
from zssr_tf.pipeline import resolve_for_image  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "photo_x2"
METHODS = ("bicubic", "estimate", "blind_real", "photo", "blind", "default", "real")
PRESETS = ("default", "real", "blind_real", "photo", "blind")  # the scored ZSSR columns
GRID = ["--noise-levels", "0", "2", "5", "10", "--jpeg-qualities", "none", "90", "70", "50", "--per-cell", "1"]
FIGURE_CELL = (5.0, "50")


def make_set(out: Path) -> None:
    """Write the benchmark set to `out` (see the module docstring) from Set5 + Set14 HR."""
    data = benchmark_data_dir()
    with tempfile.TemporaryDirectory() as hr_dir:
        for set_name in ("set5", "set14"):
            for path in sorted((data / set_name / "hr").glob("*.png")):
                os.symlink(path, Path(hr_dir) / path.name)
        if make_degraded_set.main([hr_dir, str(out), "--random-anisotropic", *GRID]) != 0:
            sys.exit("could not make the benchmark set")


def hr_path(name: str) -> Path:
    data = benchmark_data_dir()
    return next(p for p in (data / "set5" / "hr" / name, data / "set14" / "hr" / name) if p.is_file())


def is_clean(row: dict) -> bool:
    return float(row["noise_level"]) == 0 and row["jpeg_quality"] == "none"


def run_image(data: Path, row: dict, methods, save_outputs: bool) -> dict:
    """Every method of `methods` on one manifest row, cached; returns the row's results."""
    lr_path = data / row["lr"]
    stem = lr_path.stem
    cache = RESULTS / "photo" / f"{stem}.json"
    result = json.loads(cache.read_text()) if cache.is_file() else {}
    image, _, info = read_image(lr_path)
    gt = read_image(hr_path(row["image"]))[0]
    configs = {name: load_config(name) for name in PRESETS}
    # Its notes are printed where photo runs, not on every visit to the image.
    notes = None if any(m.startswith("photo") for m in methods) else io.StringIO()
    configs["photo"], photo_estimate = resolve_for_image(configs["photo"], image, info, notes)
    for variant in (m for m in methods if m.startswith("photo+")):  # photo with overrides, e.g. photo+max_iters=800
        configs[variant] = resolve_for_image(load_config("photo", variant[len("photo+"):].split(",")), image, info,
                                             io.StringIO())[0]
    shared = estimation_digest(configs["blind_real"])
    assert estimation_digest(configs["photo"]) == shared, "photo and blind_real must estimate the same way"
    estimates = {"estimate": (configs["blind_real"], cache.with_name(f"{stem}_kernel.npy")),
                 "blind_estimate": (configs["blind"], cache.with_name(f"{stem}_kernel_blind.npy"))}
    cache.parent.mkdir(parents=True, exist_ok=True)
    todo = [m for m in methods if m != "blind" or is_clean(row)]
    if "blind" in todo:
        todo.insert(todo.index("blind"), "blind_estimate")
    for method in todo:
        if method in estimates:
            config, kernel_path = estimates[method]
            digest = {"estimation_digest": estimation_digest(config)}
        elif method == "bicubic":
            digest = {}
        else:
            config = configs[method]
            digest = {"training_digest": training_digest(config)}
        if method in result and all(result[method].get(k) == v for k, v in digest.items()):
            continue
        start = time.perf_counter()
        entry: dict = dict(digest)
        sr = None
        if method == "bicubic":
            sr = bicubic_upscale(image, (2 * image.shape[0], 2 * image.shape[1]), "block_centre")
        elif method in estimates:
            try:
                kernel, history = estimate_kernel(image, config)
                np.save(kernel_path, kernel)
                entry["runs"] = history.describe_runs()
            except KernelEstimationError as err:  # recorded: a failed estimate is a result too
                entry["error"] = str(err)
        else:
            kernels = None
            if config.kernel_estimation.kernel == "estimate":
                source = "blind_estimate" if method == "blind" else "estimate"
                kernel_path = estimates[source][1]
                if "error" in result.get(source, {"error": "not run"}) or not kernel_path.is_file():
                    continue
                kernels = [np.load(kernel_path)]
            run = ZSSR(config, verbose=False).run(image, kernels=kernels)
            sr = run.sr
            entry.update(iterations=run.iterations, zssr_seconds=run.train_seconds + run.test_seconds)
            if method.startswith("photo"):
                entry.update(noise_std=config.augment.noise_std, jpeg_quality=config.augment.jpeg_quality,
                             **photo_estimate.params())
        entry["seconds"] = time.perf_counter() - start
        if sr is not None:
            entry.update(evaluate(sr, gt, 2), blockiness=blockiness(sr, scale=2))
            if save_outputs:
                write_image(cache.with_name(f"{stem}_{method}.png"), sr, info)
        result[method] = entry
        cache.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{stem} {method}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in entry.items() if not k.endswith("digest")), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the set (manifest.json, lr_x2/); made there when missing. Results are cached by "
                             "image name in results/photo/, so another set needs the results moved aside")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--images", type=int, default=0,
                        help="run only the first N images of the manifest (0: all); the summary covers all")
    parser.add_argument("--only", nargs="+", metavar="STEM", help="run only these images (LR file stems)")
    parser.add_argument("--photo-variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="also run `photo` with these overrides (e.g. max_iters=800, or init_weights=FILE); "
                             "repeatable; scored in a table of their own")
    parser.add_argument("--figure", default=None, help="the image (LR stem) of the crops figure "
                                                      "(default: the noise 5, quality 50 one)")
    args = parser.parse_args()
    if not (args.data / "manifest.json").is_file():
        print(f"making the benchmark set in {args.data} (no manifest.json there)", flush=True)
        make_set(args.data)
    every_row = json.loads((args.data / "manifest.json").read_text())
    rows = [r for r in every_row[:args.images or None] if args.only is None or Path(r["lr"]).stem in args.only]
    if args.only and len(rows) < len(set(args.only)):
        known = {Path(r["lr"]).stem for r in every_row}
        parser.error(f"--only: no image {', '.join(sorted(set(args.only) - known))} in {args.data}/manifest.json; "
                     f"the images are {', '.join(sorted(known))}")
    for variant in args.photo_variant:  # a bad override stops here, before any work
        try:
            init_weights = load_config("photo", variant.split(",")).model.init_weights
        except ZSSRError as err:
            parser.error(f"--photo-variant {variant}: {err}")
        if init_weights.endswith(".npz") and not Path(init_weights).is_file():
            # Results are cached by the setting's text: a missing file would pass as its old result.
            parser.error(f"--photo-variant {variant}: no file {init_weights} (experiments/pretrain_warm_start.py "
                         "--out writes one)")
    variants = [f"photo+{v}" for v in args.photo_variant]
    figure_stem = args.figure or next((Path(r["lr"]).stem for r in every_row
                                       if (float(r["noise_level"]), str(r["jpeg_quality"])) == FIGURE_CELL), None)
    # The columns the targets need first, image by image; then the other presets.
    for group in (("bicubic", "estimate", "blind_real", "photo"), ("blind",), tuple(variants), ("default",), ("real",)):
        for row in rows:
            run_image(args.data, row, [m for m in group if m in args.methods or m in variants],
                      save_outputs=Path(row["lr"]).stem == figure_stem)
    # The summary covers every image of the set (cached results), whichever were run now.
    report = {"data": str(args.data), "images": {Path(r["lr"]).stem: {
        "manifest": r, **run_image(args.data, r, [], False)} for r in every_row}}
    write_json("photo_x2", report)
    table = summary_table(report) + variants_table(report)
    (RESULTS / "photo_x2.md").write_text(table)
    print(table)
    if figure_stem is not None:
        crops_figure(figure_stem, args.data, every_row)
    return 0


def summary_table(report: dict) -> str:
    """Markdown: per cell (noise x quality) and overall, PSNR-Y / SSIM-Y / blockiness per method,
    seconds per image, and the issue's targets checked."""
    images = report["images"].values()
    cells: dict[tuple[float, str], list[dict]] = {}
    for result in images:
        m = result["manifest"]
        cells.setdefault((float(m["noise_level"]), str(m["jpeg_quality"])), []).append(result)
    columns = ["bicubic", *PRESETS]
    lines = ["| noise /255 | JPEG q | n | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]

    def cell_text(results, method):
        scored = [r[method] for r in results if "psnr" in r.get(method, {})]
        if not scored:
            return "—"
        return (f"{np.mean([s['psnr'] for s in scored]):.2f} / {np.mean([s['ssim'] for s in scored]):.4f} / "
                f"{np.mean([s['blockiness'] for s in scored]):.2f}" + (f" (n={len(scored)})"
                                                                       if len(scored) < len(results) else ""))

    for (noise, quality), results in sorted(cells.items(), key=lambda c: (c[0][0], c[0][1] != "none",
                                                                          -int(c[0][1]) if c[0][1] != "none" else 0)):
        lines.append(f"| {noise:g} | {quality} | {len(results)} | " + " | ".join(cell_text(results, m) for m in columns)
                     + " |")
    lines.append(f"| all | all | {len(images)} | " + " | ".join(cell_text(list(images), m) for m in columns) + " |")
    # `default` and `real` may have run on some images only: their means next to the others' on those.
    shared = [r for r in images if all("psnr" in r.get(m, {}) for m in columns if m != "blind")]
    if 0 < len(shared) < len(images):
        lines.append(f"| those with `default` and `real` | | {len(shared)} | "
                     + " | ".join(cell_text(shared, m) for m in columns) + " |")
    seconds = []
    for method in columns:
        per_image = [r[method]["seconds"] + (r.get("estimate" if method != "blind" else "blind_estimate", {})
                                             .get("seconds", 0) if method in ("blind_real", "photo", "blind") else 0)
                     for r in images if "seconds" in r.get(method, {})]
        seconds.append(f"{np.mean(per_image):.0f}" if per_image else "—")
    lines.append("| seconds per image | | | " + " | ".join(seconds) + " |")
    lines += ["", "Cells: PSNR-Y dB / SSIM-Y / 8x8 blockiness of the x2 output (about 1: no blocking). Seconds per "
              "image: the estimate (where there is one) + ZSSR, this machine.", "", "Targets:", ""]
    lines += target_lines(cells)
    return "\n".join(lines) + "\n"


def variants_table(report: dict) -> str:
    """Markdown: per image that has any `photo+...` result, PSNR-Y / blockiness of blind_real,
    photo and each variant (empty when there are none)."""
    variants = sorted({m for r in report["images"].values() for m in r if m.startswith("photo+")})
    if not variants:
        return ""
    columns = ["blind_real", "photo", *variants]
    lines = ["", "Variants of `photo` (PSNR-Y dB / blockiness):", "",
             "| image | " + " | ".join(f"`{c}`" for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for stem, result in report["images"].items():
        if any(v in result for v in variants):
            lines.append(f"| {stem} | " + " | ".join(
                f"{result[c]['psnr']:.2f} / {result[c]['blockiness']:.2f}" if "psnr" in result.get(c, {}) else "—"
                for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _jpeg_50_70(noise: float, quality: str) -> bool:
    return quality != "none" and int(quality) <= 70


# (what, which cells, the methods it needs, its value per image, the bound its mean must reach)
TARGETS = [
    ("JPEG q <= 70: photo - blind_real >= +1.0 dB", _jpeg_50_70, ("photo", "blind_real"),
     lambda r: r["photo"]["psnr"] - r["blind_real"]["psnr"], 1.0),
    ("JPEG q <= 70: bicubic's blockiness - photo's >= 0", _jpeg_50_70, ("photo", "bicubic"),
     lambda r: r["bicubic"]["blockiness"] - r["photo"]["blockiness"], 0.0),
    ("clean (no noise, no JPEG): photo - blind >= -0.1 dB", lambda n, q: n == 0 and q == "none", ("photo", "blind"),
     lambda r: r["photo"]["psnr"] - r["blind"]["psnr"], -0.1),
    ("noisy (noise > 0, no JPEG): photo - blind_real >= +0.5 dB", lambda n, q: n > 0 and q == "none",
     ("photo", "blind_real"), lambda r: r["photo"]["psnr"] - r["blind_real"]["psnr"], 0.5),
    ("noisy (noise > 0, any JPEG): photo - blind_real >= +0.5 dB", lambda n, q: n > 0, ("photo", "blind_real"),
     lambda r: r["photo"]["psnr"] - r["blind_real"]["psnr"], 0.5),
]


def target_lines(cells: dict) -> list[str]:
    """One line per target: the mean over the images of its cells that have every method it needs."""
    lines = []
    for name, keep, needed, value, bound in TARGETS:
        results = [r for (noise, quality), rs in cells.items() if keep(noise, quality) for r in rs
                   if all("psnr" in r.get(m, {}) for m in needed)]
        if not results:
            lines.append(f"- {name}: not measured yet")
            continue
        mean = float(np.mean([value(r) for r in results]))
        lines.append(f"- {name}: {mean:+.2f} ({'met' if mean >= bound else 'MISSED'}; n={len(results)})")
    return lines


def crops_figure(stem: str, data: Path, rows: list[dict]) -> None:
    """bicubic | blind_real | photo | HR, one 96x96 HR crop (the most textured of a 4x4 grid of
    candidates), enlarged, with each method's PSNR-Y, to results/figures/photo_crops.png."""
    outputs = {m: RESULTS / "photo" / f"{stem}_{m}.png" for m in ("bicubic", "blind_real", "photo")}
    if not all(p.is_file() for p in outputs.values()):
        print(f"no crops figure: the outputs of {stem} are not all saved ({', '.join(outputs)})")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = next(r for r in rows if Path(r["lr"]).stem == stem)
    result = json.loads((RESULTS / "photo" / f"{stem}.json").read_text())
    images = {m: read_image(p)[0] for m, p in outputs.items()}
    hr = read_image(hr_path(row["image"]))[0]
    height, width = min(i.shape[0] for i in images.values()), min(i.shape[1] for i in images.values())
    images["HR"] = hr[:height, :width]
    side = 96
    candidates = [(y, x) for y in np.linspace(0, height - side, 4).astype(int)
                  for x in np.linspace(0, width - side, 4).astype(int)]
    top, left = max(candidates, key=lambda c: np.std(images["HR"][c[0]:c[0] + side, c[1]:c[1] + side]))
    figure, axes = plt.subplots(1, 4, figsize=(12, 3.8))
    for axis, (name, image) in zip(axes, images.items()):
        crop = image[top:top + side, left:left + side]
        axis.imshow(crop[..., 0] if crop.shape[2] == 1 else crop, cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
        score = result.get(name, {})
        axis.set_title(name + (f"\n{score['psnr']:.2f} dB, blockiness {score['blockiness']:.2f}" if "psnr" in score
                               else "\nground truth"), fontsize=9)
        axis.axis("off")
    figure.suptitle(f"{stem}: noise {float(row['noise_level']):g}/255, JPEG quality {row['jpeg_quality']}, x2",
                    fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    path = RESULTS / "figures" / "photo_crops.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
