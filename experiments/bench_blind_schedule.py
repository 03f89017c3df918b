"""Where blind ZSSR's quality stops: the plain network's PSNR-vs-iteration curve against the
ground truth, from three starts, and the final PSNR and seconds of cosine schedules of several
lengths, on the blind benchmark sets with their true kernels.

    python experiments/bench_blind_schedule.py [--sets krk14 g2direct5] [--images N | names]
        [--crop 0] [--preset blind] [--starts none warm_start warm_start_blind]
        [--lengths 200 400 800] [--curve-length 800] [--gt-every 50] [--curve-only START ...]
        [key=value ...]

Per image and start (`model.init_weights`: `none` random, `warm_start` the bicubic x2 warm start,
`warm_start_blind` the kernel-aware one, or a .npz path) the `--preset`'s ZSSR runs with the
image's true kernel (`bench_blind.make_case`: so the estimate's error is left out) and a cosine
decay over each of `--lengths` iterations; the `--curve-length` run also records the
ground-truth test every `--gt-every` iterations (`callbacks.GroundTruthTest`: the plain network,
no self-ensemble or back-projection). Scores by DESIGN §2 (Y, shave 2). `--crop 0` (default):
whole images. Every (image, start, length) result is cached in
experiments/results/blind/schedule/<set>/<image>_crop<crop>_<start>_<length>[_overrides].json,
so an interrupted run resumes; the summary goes to
experiments/results/blind_schedule_crop<crop>[_overrides].{md,json} and the curves to
experiments/results/figures/blind_schedule_crop<crop>[_overrides].png (mean PSNR-Y gain over
bicubic upscaling per iteration, one panel per set).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench_blind import SETS, bicubic_upscale, make_case  # noqa: E402
from bench_fkp_checkpoints import image_names  # noqa: E402
from common import RESULTS, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.precision import resolve_precision  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

STARTS = ("none", "warm_start", "warm_start_blind")


def run_case(set_name: str, name: str, crop: int, preset: str, start: str, length: int, gt_every: int,
             overrides: list[str]) -> dict:
    """One (image, start, length): ZSSR with the true kernel; cached (see the module docstring)."""
    tag = Path(start).stem if start.endswith(".npz") else start
    suffix = "".join(f"_{o}" for o in overrides)
    cache = RESULTS / "blind" / "schedule" / set_name / f"{name}_crop{crop}_{preset}_{tag}_{length}{suffix}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    lr, gt, kernel = make_case(set_name, name, crop)
    config = load_config(preset, [f"kernel_alignment={SETS[set_name][1]}", "kernel=given", f"init_weights={start}",
                                  "learning_rate_schedule=cosine", f"max_iters={length}", f"gt_test_every={gt_every}",
                                  *overrides])
    started = time.perf_counter()
    run = ZSSR(config, verbose=False).run(lr, gt=gt, kernels=[kernel])
    step = run.steps[0]
    result = {**evaluate(run.sr, gt, 2), "iterations": run.iterations, "seconds": time.perf_counter() - started,
              "train_seconds": run.train_seconds, "precision": resolve_precision(config.train.precision),
              "bicubic_upscale": evaluate(bicubic_upscale(lr, gt.shape[:2], SETS[set_name][1]), gt, 2)["psnr"],
              "curve": [[i, s["psnr"]] for i, s in step.gt_tests]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{set_name}/{name} start {tag} cosine {length}: PSNR {result['psnr']:.2f} dB "
          f"({result['psnr'] - result['bicubic_upscale']:+.2f} vs bicubic upscaling), {result['iterations']} "
          f"iterations, {result['seconds']:.0f} s", flush=True)
    return result


def plot_curves(summary: dict, path: Path) -> None:
    """Mean PSNR-Y gain over bicubic upscaling against iteration, per start, one panel per set."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(summary["curves"])
    figure, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for axis, set_name in zip(axes[0], sets):
        for start, points in summary["curves"][set_name].items():
            axis.plot(*zip(*points), marker=".", label=start)
        axis.set(title=f"{set_name} (true kernel, cosine {summary['curve_length']})", xlabel="iteration",
                 ylabel="mean PSNR-Y gain over bicubic upscaling (dB)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["krk14", "g2direct5"], choices=sorted(SETS))
    parser.add_argument("--images", nargs="+", default=["3"], help="how many images per set, or their names")
    parser.add_argument("--crop", type=int, default=0, help="HR crop side (0: whole images)")
    parser.add_argument("--preset", default="blind", help="the ZSSR settings (with kernel=given, the true kernel)")
    parser.add_argument("--starts", nargs="+", default=list(STARTS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[200, 400, 800], help="cosine lengths (max_iters)")
    parser.add_argument("--curve-length", type=int, default=800, help="the length whose curve is recorded")
    parser.add_argument("--gt-every", type=int, default=50)
    parser.add_argument("--curve-only", nargs="*", default=[], metavar="START",
                        help="starts that run only the --curve-length run (not --lengths)")
    parser.add_argument("overrides", nargs="*", help="key=value settings for every run")
    args = parser.parse_args()

    rows, curves = [], {}
    for set_name in args.sets:
        names = image_names(set_name, args.images)
        curves[set_name] = {}
        for start in args.starts:
            tag = Path(start).stem if start.endswith(".npz") else start
            per_length = {}
            lengths = set() if start in args.curve_only else set(args.lengths)
            for length in sorted(lengths | {args.curve_length}):
                gt_every = args.gt_every if length == args.curve_length else 0
                results = [run_case(set_name, name, args.crop, args.preset, start, length, gt_every, args.overrides)
                           for name in names]
                per_length[length] = results
                rows.append({"set": set_name, "start": tag, "length": length,
                             "psnr": float(np.mean([r["psnr"] for r in results])),
                             "ssim": float(np.mean([r["ssim"] for r in results])),
                             "bicubic_upscale": float(np.mean([r["bicubic_upscale"] for r in results])),
                             "iterations": float(np.mean([r["iterations"] for r in results])),
                             "seconds": float(np.mean([r["seconds"] for r in results])), "images": names})
            curve_runs = per_length[args.curve_length]
            curves[set_name][tag] = [
                [int(i), float(np.mean([r["curve"][k][1] - r["bicubic_upscale"] for r in curve_runs]))]
                for k, (i, _) in enumerate(curve_runs[0]["curve"])]

    suffix = "".join(f"_{o}" for o in args.overrides)
    stem = f"blind_schedule_crop{args.crop}_{args.preset}{suffix}"
    summary = {"crop": args.crop, "preset": args.preset, "curve_length": args.curve_length, "overrides": args.overrides,
               "rows": rows, "curves": curves}
    write_json(stem, summary)
    lines = [f"# Blind ZSSR schedules (`{args.preset}` preset, true kernels, crop {args.crop or 'none'})", "",
             "| set | start | cosine length | iterations | mean PSNR-Y | gain over bicubic upscaling | SSIM-Y | s/image |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['start']} | {r['length']} | {r['iterations']:.0f} | {r['psnr']:.2f} | "
              f"{r['psnr'] - r['bicubic_upscale']:+.2f} | {r['ssim']:.4f} | {r['seconds']:.0f} |" for r in rows]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    plot_curves(summary, RESULTS / "figures" / f"{stem}.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
