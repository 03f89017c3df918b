"""Kernel estimation alone (no ZSSR): how many iterations each run makes, how long the estimation
takes and how far its kernel is from the true one, next to the cached numbers of the estimate
without early stopping (5 KernelGAN runs of 3,000 iterations, the `estimate` column of
bench_kernel_psnr.py's kernel_psnr_crop<crop>_estimation_estimation_runs=5_method=kernelgan.json).

    python experiments/bench_kernel_early_stop.py [key=value ...] [--sets krk14 g2direct5] [--images N | names]
                                                  [--crop 320] [--agree T ...]

(the key=value overrides first: the options take every word after them)

The images, crops and true kernels are bench_blind.py's; the estimation is the `blind` preset's with
the overrides (e.g. kernel_stop_tolerance=0 runs_agree_tolerance=0 for every run to the end). Each
image's result is cached in experiments/results/blind/early_stop/<set>/<image>_crop<crop>_<digest>.json
(`bench_blind.estimation_digest` of the settings; with each kept run's kernel, so `--agree T`
shows what runs_agree_tolerance=T would have given on runs made with it 0), so an interrupted run resumes; the summary goes to
experiments/results/kernel_early_stop_crop<crop><overrides>.{md,json}. Seconds depend on the CPU
and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench_blind import SETS, estimation_digest, make_case  # noqa: E402
from bench_fkp_checkpoints import cache_tag, image_names  # noqa: E402
from common import RESULTS, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.kernel_estimation import estimator  # noqa: E402
from zssr_tf.kernel_estimation.postprocess import average_kernels  # noqa: E402
from zssr_tf.kernels import kernel_distance  # noqa: E402

BEFORE = "kernel_psnr_crop{crop}_estimation_estimation_runs=5_method=kernelgan.json"


def run_image(set_name: str, name: str, crop: int, overrides: list[str]) -> dict:
    """{kernel_distance, seconds, iterations, runs: [[iterations, why stopped], ...],
    runs_averaged, runs_agreed} of the `blind` preset's estimate (with `overrides`) of one image, cached."""
    config = load_config("blind", overrides)
    cache = RESULTS / "blind" / "early_stop" / set_name / f"{name}_crop{crop}_{estimation_digest(config)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    lr, _, true = make_case(set_name, name, crop)
    kept = []  # every kept run's kernel, for what runs_agree_tolerance would have done (`agreement`)
    one_run = estimator._estimate_once

    def kept_run(*args):
        kernel, history = one_run(*args)
        kept.append(kernel)
        return kernel, history

    estimator._estimate_once = kept_run
    try:
        start = time.perf_counter()
        kernel, history = estimator.estimate_kernel(lr, config)
        seconds = time.perf_counter() - start
    finally:
        estimator._estimate_once = one_run
    result = {"kernel_distance": kernel_distance(kernel, true), "seconds": seconds,
              "iterations": history.iterations, "runs": [[r.iterations, r.stopped] for r in history.runs],
              "runs_averaged": history.runs_averaged, "runs_agreed": history.runs_agreed,
              "run_kernels": [k.tolist() for k in kept], "true_kernel": true.tolist()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


def agreement(result: dict, tolerance: float) -> dict:
    """What `runs_agree_tolerance=tolerance` would have given on a result made without it: the
    first 2 or more kept runs that agree (`estimator.runs_agree`; all when none do), their mean's
    kernel distance, the iterations of every run made until then (collapsed ones too) and the
    seconds in proportion."""
    kernels = [np.array(k) for k in result["run_kernels"]]
    n = next((m for m in range(2, len(kernels)) if estimator.runs_agree(kernels[:m], tolerance)), len(kernels))
    made, kept = 0, 0
    for made, (_, why) in enumerate(result["runs"], 1):
        kept += why in ("end", "kernel_still")
        if kept == n:
            break
    iterations = sum(its for its, _ in result["runs"][:made])
    mean = kernels[0] if n == 1 else average_kernels(kernels[:n])
    return {"kernel_distance": kernel_distance(mean, np.array(result["true_kernel"])), "iterations": iterations,
            "seconds": result["seconds"] * iterations / result["iterations"], "runs": result["runs"][:made]}


def summary_table(report: dict) -> str:
    """Per set: per image the runs' iterations (why each stopped), seconds and kernel distance
    next to the cached ones without early stopping; the means."""
    lines = []
    for set_name, images in report["sets"].items():
        lines += [f"### {set_name} x2, HR crop {report['crop']}: kernel estimation `blind` "
                  f"{' '.join(report['overrides']) or '(defaults)'}", "",
                  "| image | iterations per run (why stopped) | seconds | kernel distance | before: seconds | "
                  "before: kernel distance |", "|---|---|---|---|---|---|"]
        for name, r in images.items():
            runs = ", ".join(f"{n} ({why})" for n, why in r["runs"])
            lines.append(f"| {name} | {runs} | {r['seconds']:.0f} | {r['kernel_distance']:.3f} | "
                         f"{r['before_seconds']:.0f} | {r['before_kernel_distance']:.3f} |")
        mean = {k: np.mean([r[k] for r in images.values()]) for k in
                ("iterations", "seconds", "kernel_distance", "before_seconds", "before_kernel_distance")}
        lines += [f"| mean | {mean['iterations']:.0f} iterations in all | {mean['seconds']:.0f} | "
                  f"{mean['kernel_distance']:.4f} | {mean['before_seconds']:.0f} | {mean['before_kernel_distance']:.4f} |",
                  ""]
        for tolerance in report["agree"]:
            rows = {name: agreement(r, tolerance) for name, r in images.items()}
            lines += [f"With runs_agree_tolerance={tolerance:g} (from the runs above: the first that agree):", "",
                      "| image | runs made | iterations | seconds | kernel distance |", "|---|---|---|---|---|"]
            lines += [f"| {name} | {len(a['runs'])} | {a['iterations']} | {a['seconds']:.0f} | "
                      f"{a['kernel_distance']:.3f} |" for name, a in rows.items()]
            lines += [f"| mean | {np.mean([len(a['runs']) for a in rows.values()]):.1f} | "
                      f"{np.mean([a['iterations'] for a in rows.values()]):.0f} | "
                      f"{np.mean([a['seconds'] for a in rows.values()]):.0f} | "
                      f"{np.mean([a['kernel_distance'] for a in rows.values()]):.4f} |", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["krk14", "g2direct5"], choices=list(SETS))
    parser.add_argument("--images", nargs="+", default=["0"],
                        help="image names, or one number N: the first N images of each set (0: all)")
    parser.add_argument("--crop", type=int, default=320, help="centre-crop the HR images to this side")
    parser.add_argument("--agree", type=float, nargs="*", default=[],
                        help="runs_agree_tolerance values to evaluate on the runs made (run with runs_agree_tolerance=0)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the `blind` preset's estimation")
    args = parser.parse_args()
    before = json.loads((RESULTS / BEFORE.format(crop=args.crop)).read_text())["sets"]
    report = {"crop": args.crop, "overrides": args.overrides, "agree": args.agree, "sets": {}}
    for set_name in args.sets:
        images = report["sets"][set_name] = {}
        for name in image_names(set_name, args.images):
            old = before[set_name][name]["estimate"]
            r = images[name] = {**run_image(set_name, name, args.crop, args.overrides),
                                "before_kernel_distance": old["kernel_distance"],
                                "before_seconds": old["estimation_seconds"]}
            print(f"{set_name}/{name}: runs {r['runs']}, {r['seconds']:.0f} s, kernel distance "
                  f"{r['kernel_distance']:.3f} (before: {old['kernel_distance']:.3f}, {old['estimation_seconds']:.0f} s)",
                  flush=True)
    stem = f"kernel_early_stop_crop{args.crop}{cache_tag(args.overrides)}"
    write_json(stem, {**report, "sets": {s: {n: {k: v for k, v in r.items() if k not in ("run_kernels", "true_kernel")}
                                             for n, r in images.items()} for s, images in report["sets"].items()}})
    (RESULTS / f"{stem}.md").write_text(summary_table(report))
    print(summary_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
