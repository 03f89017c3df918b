"""Kernel-only benchmark of the FKP estimator: how far its kernel is from the true one after
100, 200, ... 1500 iterations, on every image of a blind set, next to two fixed kernels.

    python experiments/bench_fkp_checkpoints.py [--sets krk14 g2direct5] [--images N | names]
                                                [--seeds 3] [--crop 320] [key=value ...]

No ZSSR runs, so a whole set costs minutes (14 krk14 images x 3 runs of 1500 iterations: about
15 min on 2 CPU cores), and an estimator change can be judged on every image before the
ZSSR comparison of `bench_blind.py` and `bench_kernel_psnr.py` (three ZSSR runs per image: from
minutes on a CPU with AMX to an hour on 2 AVX2 cores). Per image and seed one FKP run
(`kernel_estimation.fkp.KernelPriorGAN`, the settings of the `blind` preset with `method=fkp`
and the overrides; seed s draws what run s of `estimate_kernel` draws) is trained for
`estimation_iters` (1500 unless overridden) and its raw kernel kept at each checkpoint. At each
checkpoint the runs are combined as `estimate_kernel` combines them (finished, runs outside the
prior left out, `postprocess.average_kernels`); reported is the L2 distance to the true kernel
(`kernels.kernel_distance`) of that mean and, for reference, of the bicubic kernel and of the
isotropic Gaussians of variance 1.5, 2, 2.5 and 3 px^2: fixed kernels that know nothing of the
image. The sets are `bench_blind.py`'s (same images, crops and true kernels).

Raw kernels are cached per image in experiments/results/blind/fkp_checkpoints/<set>/ (delete
them to rerun); the summary goes to experiments/results/fkp_checkpoints_crop<crop>.{md,json}.
Runs with config overrides are cached and summarised under names that end in the overrides.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench_blind import DATA, SETS, make_case  # noqa: E402
from common import RESULTS, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.kernel_estimation import fkp  # noqa: E402
from zssr_tf.kernel_estimation.crops import training_inputs  # noqa: E402
from zssr_tf.kernel_estimation.inputs import prepare_image  # noqa: E402
from zssr_tf.kernel_estimation.postprocess import average_kernels  # noqa: E402
from zssr_tf.kernel_estimation.prior import load_prior  # noqa: E402
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, kernel_distance  # noqa: E402

CHECKPOINTS = (100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500)
ISOTROPIC_VARIANCES = (1.5, 2.0, 2.5, 3.0)


def cache_tag(overrides: list[str]) -> str:
    """The suffix of cache and summary names for a run with config `overrides`: "" without any,
    else "_" and the sorted overrides, so results of other settings never share a file."""
    return "".join(f"_{o.replace('/', '-')}" for o in sorted(overrides))


def raw_kernels_at_checkpoints(lr: np.ndarray, config, seed: int, prior) -> dict[int, np.ndarray]:
    """One FKP run of `estimate_kernel` on `lr` (float (h, w, C) in [0, 1]) with run seed `seed`
    (`run.seed + r` for run r, as `estimate_kernel` draws): {iteration: float64 (K, K) raw kernel,
    K the prior's size (11 for x2)} for the CHECKPOINTS within `estimation_iters` (the kernel that
    iteration trained with, before post-processing)."""
    c = config.kernel_estimation
    image = prepare_image(lr, c.estimation_shave, c.generator_crop_size)
    rng = np.random.default_rng((seed, 10))  # as estimator._estimate_once_fkp draws
    gan = fkp.KernelPriorGAN(config, prior, image.shape[2], seed)
    kept = {}
    for iteration, inputs in enumerate(training_inputs(image, c, gan.d_crop_size, rng), start=1):
        _, raw = gan.train_step(*inputs)
        if iteration in CHECKPOINTS:
            kept[iteration] = raw.numpy().astype(np.float64)
    return kept


def combined(raw_kernels: list[np.ndarray], variance_high: float) -> tuple[np.ndarray, int]:
    """The runs' raw (K, K) kernels combined as `estimate_kernel` does for FKP: finished
    (`fkp.finish`, which pads them), those past `variance_high` px^2 left out (all outside: the
    closest), averaged. Returns (float64 finished kernel summing to 1, runs kept)."""
    excess = [fkp.off_prior_excess(raw, variance_high) for raw in raw_kernels]
    kept = [fkp.finish(raw) for raw, e in zip(raw_kernels, excess) if e <= 1]
    kept = kept or [fkp.finish(raw_kernels[int(np.argmin(excess))])]
    return (kept[0] if len(kept) == 1 else average_kernels(kept)), len(kept)


def checkpoint_cache(set_name: str, name: str, crop: int, overrides: list[str]) -> Path:
    """Where one image's raw checkpoint kernels are cached."""
    return RESULTS / "blind" / "fkp_checkpoints" / set_name / f"{name}_crop{crop}{cache_tag(overrides)}.npz"


def run_image(set_name: str, name: str, crop: int, seeds: int, overrides: list[str], prior) -> dict:
    """Distances to the true kernel of one image: per checkpoint the combined runs' and their
    individual ones; of the fixed kernels. The raw kernels of run r are cached as
    "seed<r>_it<iteration>" in the image's .npz (named by `crop` and `cache_tag(overrides)`)."""
    lr, _, true = make_case(set_name, name, crop)
    config = load_config("blind", ["method=fkp", "estimation_iters=1500", *overrides])
    cache = checkpoint_cache(set_name, name, crop, overrides)
    stored = dict(np.load(cache)) if cache.is_file() else {}
    wanted = [it for it in CHECKPOINTS if it <= config.kernel_estimation.estimation_iters]
    for seed in range(seeds):
        if any(f"seed{seed}_it{it}" not in stored for it in wanted):
            run_seed = config.run.seed + seed
            for iteration, raw in raw_kernels_at_checkpoints(lr, config, run_seed, prior).items():
                stored[f"seed{seed}_it{iteration}"] = raw
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **stored)
    result = {"fixed": {"bicubic": kernel_distance(bicubic_kernel(2), true),
                        **{f"isotropic_{v:g}": kernel_distance(gaussian_kernel(11, np.sqrt(v)), true)
                           for v in ISOTROPIC_VARIANCES}}, "checkpoints": {}}
    for iteration in CHECKPOINTS:
        if iteration > config.kernel_estimation.estimation_iters:
            break
        raws = [stored[f"seed{seed}_it{iteration}"] for seed in range(seeds)]
        kernel, kept = combined(raws, prior.variance_range[1])
        result["checkpoints"][str(iteration)] = {
            "mean_of_runs": kernel_distance(kernel, true), "runs_kept": kept,
            "runs": [kernel_distance(fkp.finish(raw), true) for raw in raws]}
    print(f"{set_name}/{name}: " + " ".join(f"{it}:{r['mean_of_runs']:.3f}" for it, r in result["checkpoints"].items())
          + f" | isotropic 2.5: {result['fixed']['isotropic_2.5']:.3f}", flush=True)
    return result


def image_names(set_name: str, images: list[str]) -> list[str]:
    """The set's image names (alphabetical) that `--images` selects: names, or one number N for
    the first N (0: all)."""
    names = sorted(p.stem for p in (DATA / SETS[set_name][0] / "hr").glob("*.png"))
    if images[0].isdigit():
        return names[:int(images[0]) or None]
    return [n for n in images if n in names]


def summary_table(report: dict) -> str:
    """A Markdown table per set: rows the images and the mean, columns the checkpoints and the
    fixed kernels."""
    lines = []
    for set_name, images in report["sets"].items():
        first = next(iter(images.values()))
        iterations, fixed = list(first["checkpoints"]), list(first["fixed"])
        lines += [f"### {set_name} (HR crop {report['crop']}, {report['seeds']} runs; L2 to the true kernel)", "",
                  "| image | " + " | ".join(f"FKP {it}" for it in iterations) + " | " + " | ".join(fixed) + " |",
                  "|---" * (1 + len(iterations) + len(fixed)) + "|"]
        for name, r in [*images.items(), ("mean", None)]:
            cells = ([np.mean([i["checkpoints"][it]["mean_of_runs"] for i in images.values()]) for it in iterations]
                     + [np.mean([i["fixed"][f] for i in images.values()]) for f in fixed]) if r is None else (
                [r["checkpoints"][it]["mean_of_runs"] for it in iterations] + [r["fixed"][f] for f in fixed])
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--images", nargs="+", default=["0"],
                        help="image names, or one number N: the first N images of each set (0: all)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per image (runs 0..N-1, seeded run.seed + r as estimate_kernel seeds them)")
    parser.add_argument("--crop", type=int, default=320, help="centre-crop the HR images to this side (0: the whole image)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for the estimation")
    args = parser.parse_args()
    prior = load_prior(load_config("blind", ["method=fkp", *args.overrides]).kernel_estimation.prior_weights)
    report = {"crop": args.crop, "seeds": args.seeds, "overrides": args.overrides, "sets": {}}
    for set_name in args.sets:
        report["sets"][set_name] = {n: run_image(set_name, n, args.crop, args.seeds, args.overrides, prior)
                                    for n in image_names(set_name, args.images)}
    stem = f"fkp_checkpoints_crop{args.crop}{cache_tag(args.overrides)}"
    write_json(stem, report)
    (RESULTS / f"{stem}.md").write_text(summary_table(report))
    print(summary_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
