"""What a kernel is worth to ZSSR: PSNR of the `blind` preset's ZSSR with kernels from several
sources on the same LR images, next to each kernel's distance to the true one.

    python experiments/bench_kernel_psnr.py [--sets krk14] [--images N | names] [--crop 320]
                                            [--sources interpolation bicubic true isotropic_2.5 fkp_1500 estimate]
                                            [--estimation key=value ...] [key=value ...]

Kernel sources (every one but `interpolation` is a ZSSR run with that kernel):
- `interpolation`: no ZSSR, the LR image upscaled x2 with MATLAB's bicubic interpolation on the
  set's grid (`kernel_alignment`, as ZSSR's own bicubic output): the floor every method has to
  beat; its "kernel distance" is the bicubic kernel's;
- `bicubic`: MATLAB's bicubic kernel (what ZSSR assumes without an estimate);
- `true`: the kernel the LR image was made with (the bound);
- `isotropic_<v>`: a round Gaussian of variance v px^2 (11x11): a fixed guess that knows
  nothing of the image; an estimator has to beat it to be worth its time;
- `fkp_<iteration>`: FKP's estimate after that many latent iterations, the 3 runs combined as
  `estimate_kernel` combines them, read from `bench_fkp_checkpoints.py`'s cache (run that first,
  with the same --crop); `fkp_1500` is what `method=fkp estimation_iters=1500
  estimate_variance_scale=1` returns, up to
  the crops drawn (a run's crop positions are drawn for its whole length);
- `estimate`: what `zssr train --config blind` estimates, end to end (`estimate_kernel` with the
  `blind` preset and the `--estimation` overrides). Its kernel and timing are cached per image
  under a hash of the resolved `kernel_estimation` settings and seed, so a change of the
  package's defaults is estimated again, never read from an older cache (the hash covers the
  settings, not the prior file's content or the code: after retraining the shipped prior or
  changing the estimator, delete the cached `*_estimate_*.npz` files).

The images, crops and true kernels are `bench_blind.py`'s. ZSSR: the `blind` preset with
`kernel=given`, the set's `kernel_alignment`, 1,500 iterations unless overridden; scores by
DESIGN §2 (Y, shave 2). Every (image, source) result is cached in
experiments/results/blind/kernel_psnr/<set>/<image>_crop<crop>.json (names end in the overrides
when there are any), with the training precision it ran in: `train.precision=auto` picks bf16 on
CPUs with AMX or AVX-512 BF16, and a result of another precision is run again, so one table
never mixes them. The summary goes to experiments/results/kernel_psnr_crop<crop>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench_blind import SETS, bicubic_upscale, estimation_digest, make_case  # noqa: E402
from bench_fkp_checkpoints import CHECKPOINTS, cache_tag, checkpoint_cache, combined, image_names  # noqa: E402
from common import RESULTS, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.kernel_estimation import estimate_kernel  # noqa: E402
from zssr_tf.kernel_estimation.prior import load_prior  # noqa: E402
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, kernel_distance  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.precision import resolve_precision  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

DEFAULT_SOURCES = ("bicubic", "true", "isotropic_2.5", "fkp_1500")


def source_kernel(source: str, set_name: str, name: str, crop: int, true: np.ndarray, variance_high: float,
                  seeds: int = 3) -> np.ndarray:
    """The float64 (K, K) kernel (summing to 1) of `source` for one image; `true` is the image's
    true kernel, `variance_high` (px^2) the FKP prior's widest variance, `seeds` the FKP runs to
    combine (the first `seeds` of `bench_fkp_checkpoints.py`'s default-settings cache).

    Raises:
        FileNotFoundError: `fkp_*` without `bench_fkp_checkpoints.py`'s cache for the image, or
            with fewer than `seeds` runs in it.
        ValueError: an unknown source name, or `fkp_<iteration>` at an iteration that is not one
            of `bench_fkp_checkpoints.CHECKPOINTS`.
    """
    if source == "bicubic":
        return bicubic_kernel(2)
    if source == "true":
        return true
    if source.startswith("isotropic_"):
        return gaussian_kernel(11, np.sqrt(float(source.split("_", 1)[1])))
    if source.startswith("fkp_") and source.split("_", 1)[1] in {str(it) for it in CHECKPOINTS}:
        cache = checkpoint_cache(set_name, name, crop, [])
        stored = np.load(cache) if cache.is_file() else {}
        keys = [f"seed{seed}_it{source.split('_', 1)[1]}" for seed in range(seeds)]
        if any(k not in stored for k in keys):
            raise FileNotFoundError(f"{cache} lacks {seeds} FKP runs: run bench_fkp_checkpoints.py --sets "
                                    f"{set_name} --images {name} --crop {crop} --seeds {seeds} first")
        return combined([stored[k] for k in keys], variance_high)[0]
    raise ValueError(f"unknown kernel source {source!r}: use interpolation, bicubic, true, estimate, "
                     f"isotropic_<variance> or fkp_<iteration> with an iteration in {CHECKPOINTS}")


def run_image(set_name: str, name: str, crop: int, sources, overrides, estimation, variance_high: float) -> dict:
    """{source: scores (DESIGN §2), kernel distance, iterations, seconds, precision (and for
    `estimate`, the estimation's overrides, seconds and ms per iteration)} for one image, cached
    per source in a file named by `crop` and the ZSSR `overrides`; a cached result of another
    training precision (another CPU) is run again. `estimation`: the `estimate` source's
    overrides of the `blind` preset."""
    cache = RESULTS / "blind" / "kernel_psnr" / set_name / f"{name}_crop{crop}{cache_tag(overrides)}.json"
    result = json.loads(cache.read_text()) if cache.is_file() else {}
    lr, gt, true = make_case(set_name, name, crop)
    config = load_config("blind", ["kernel=given", f"kernel_alignment={SETS[set_name][1]}", "max_iters=1500",
                                   *overrides])
    precision = resolve_precision(config.train.precision)
    keys = {source: estimate_key(estimation) if source == "estimate" else source for source in sources}
    for source in sources:
        if source == "interpolation":  # no training: scored anew every time
            sr = bicubic_upscale(lr, gt.shape[:2], SETS[set_name][1])
            result[source] = {**evaluate(sr, gt, 2), "kernel_distance": kernel_distance(bicubic_kernel(2), true)}
            continue
        if result.get(keys[source], {}).get("precision") == precision:
            continue
        estimation_info = {}
        if source == "estimate":
            kernel, estimation_info = estimated_kernel(cache.with_name(f"{cache.stem}_{keys[source]}.npz"), lr,
                                                       estimation)
        else:
            kernel = source_kernel(source, set_name, name, crop, true, variance_high)
        start = time.perf_counter()
        run = ZSSR(config, verbose=False).run(lr, kernels=[kernel])
        entry = result[keys[source]] = {
            **evaluate(run.sr, gt, 2), "kernel_distance": kernel_distance(kernel, true), "iterations": run.iterations,
            "seconds": time.perf_counter() - start, "precision": precision, **estimation_info}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{set_name}/{name} {source}: PSNR {entry['psnr']:.2f} dB, kernel distance "
              f"{entry['kernel_distance']:.3f}, {entry['seconds']:.0f} s", flush=True)
    return {s: result[keys[s]] for s in sources}


def estimate_key(estimation: list[str]) -> str:
    """The cache key of the `estimate` source: "estimate_" and `bench_blind.estimation_digest`
    of the `blind` preset with the `estimation` overrides."""
    return "estimate_" + estimation_digest(load_config("blind", estimation))


def estimated_kernel(path: Path, lr: np.ndarray, estimation: list[str]) -> tuple[np.ndarray, dict]:
    """The `blind` preset's estimate (with the `estimation` overrides) of `lr`'s kernel, cached
    in `path` (.npz, named by `estimate_key`): (float64 kernel summing to 1, {"estimation":
    overrides, seconds, ms per iteration, runs averaged})."""
    if not path.is_file():
        kernel, history = estimate_kernel(lr, load_config("blind", estimation))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, kernel=kernel, seconds=history.seconds, ms_per_iteration=history.ms_per_iteration,
                 runs_averaged=history.runs_averaged)
    stored = np.load(path)
    return stored["kernel"], {"estimation": estimation, "estimation_seconds": float(stored["seconds"]),
                              "estimation_ms_per_iteration": float(stored["ms_per_iteration"]),
                              "runs_averaged": int(stored["runs_averaged"])}


def summary_table(report: dict) -> str:
    """Per set: PSNR-Y (kernel distance) per image and source, the mean, and each source's mean
    gain over the bicubic kernel."""
    lines = []
    for set_name, images in report["sets"].items():
        sources = report["sources"]
        estimation = f"; estimate: `blind` preset {' '.join(report['estimation'])}" if "estimate" in sources else ""
        lines += [f"### {set_name} x2, HR crop {report['crop']}: ZSSR PSNR-Y dB (kernel distance to the true kernel)"
                  f"{estimation}", "",
                  "| image | " + " | ".join(sources) + " |", "|---" * (1 + len(sources)) + "|"]
        for name, r in images.items():
            lines.append(f"| {name} | " + " | ".join(f"{r[s]['psnr']:.2f} ({r[s]['kernel_distance']:.3f})"
                                                     for s in sources) + " |")
        means = {s: np.mean([r[s]["psnr"] for r in images.values()]) for s in sources}
        lines.append("| mean | " + " | ".join(f"{means[s]:.2f} ({np.mean([r[s]['kernel_distance'] for r in images.values()]):.3f})"
                                              for s in sources) + " |")
        lines.append("| mean SSIM-Y | " + " | ".join(f"{np.mean([r[s]['ssim'] for r in images.values()]):.4f}"
                                                     for s in sources) + " |")
        if "bicubic" in means:
            lines.append("| gain over bicubic kernel | " + " | ".join(f"{means[s] - means['bicubic']:+.2f}"
                                                                       for s in sources) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["krk14"], choices=list(SETS))
    parser.add_argument("--images", nargs="+", default=["0"],
                        help="image names, or one number N: the first N images of each set (0: all)")
    parser.add_argument("--crop", type=int, default=320, help="centre-crop the HR images to this side (0: whole)")
    parser.add_argument("--sources", nargs="+", default=list(DEFAULT_SOURCES),
                        help="interpolation, bicubic, true, isotropic_<variance px^2>, fkp_<iteration>, estimate")
    parser.add_argument("--estimation", nargs="*", default=[], metavar="key=value",
                        help="overrides of the `blind` preset for the estimate source, e.g. method=fkp")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every ZSSR run")
    args = parser.parse_args()
    variance_high = load_prior(load_config("blind", ["method=fkp"]).kernel_estimation.prior_weights).variance_range[1]
    report = {"crop": args.crop, "sources": args.sources, "overrides": args.overrides,
              "estimation": args.estimation, "sets": {}}
    for set_name in args.sets:
        report["sets"][set_name] = {n: run_image(set_name, n, args.crop, args.sources, args.overrides, args.estimation,
                                                                variance_high)
                                    for n in image_names(set_name, args.images)}
    stem = f"kernel_psnr_crop{args.crop}{cache_tag(args.overrides)}"
    if "estimate" in args.sources and args.estimation:
        stem += "_estimation" + cache_tag(args.estimation)
    write_json(stem, report)
    (RESULTS / f"{stem}.md").write_text(summary_table(report))
    print(summary_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
