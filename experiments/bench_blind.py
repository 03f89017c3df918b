"""Blind SR benchmark: ZSSR with a kernel estimated from the image (KernelGAN) against ZSSR with the
bicubic kernel and with the true kernel, on LR images made with known non-bicubic kernels.

    python experiments/bench_blind.py [--sets krk14 g2direct5] [--images 3] [--crop 0]
                                      [--methods bicubic kernel zssr_bicubic zssr_estimated zssr_true] [key=value ...]

Sets (x2, generated here from ../shared/data, seeded):
- krk14: a DIV2KRK-like set from Set14 `hr` (`zssr_tf.degradation.random_anisotropic_kernel`,
  DIV2KRK's recipe): per image an 11x11 anisotropic Gaussian whose covariance eigenvalues
  (variances) are U(0.6, 5) px^2, a random angle, each tap times U(0.75, 1.25), renormalised;
  seeded by the image name; correlated with the HR image after re-centring to the block centre
  and subsampled x2 (the block-centre convention of DIV2KRK and MATLAB's imresize: LR pixel i
  sits at the centre of HR block i).
- g2direct5: Set5 blurred with an isotropic Gaussian of variance 2.0 (21x21) and subsampled
  "directly" (keep every 2nd pixel from 0, LR pixel i on HR pixel 2i), MZSR's g2.0 test set as
  experiments/make_degraded_set.py makes it (without its 8-bit rounding).

Methods per image: bicubic upscaling; the estimate (KernelGAN; `method=fkp` for the kernel prior,
whose results are kept under "kernel_fkp" / "zssr_estimated_fkp") ("kernel": its distance to the true
kernel and its time, the kernel saved next to the results); ZSSR (the `blind` preset's training: no augmentation,
gradient-weighted L1, 2 back-projections) with the bicubic kernel, with the KernelGAN estimate,
with the true kernel. Scores by DESIGN §2 (Y, shave 2). The distance between the estimated and
the true kernel is the L2 norm of their difference after moving both centres of mass to the same
point; and how well the estimate explains the LR image (the HR image degraded with it, PSNR
and shift against the LR) next to the covariance eigenvalues of both kernels. Every (image,
method) result is cached in experiments/results/blind/<set>/<image>.json, so an interrupted run
resumes (the estimate's entries under the `estimation_digest` of the settings they were made
with: other settings are estimated again); the summary goes to experiments/results/blind_x2_crop<crop>.{md,json} (blind_x2_whole.{md,json} without a crop).
Bicubic upscaling samples on the set's grid (`kernel_alignment`), as ZSSR's own bicubic output does.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from common import RESULTS, write_json  # noqa: E402
from zssr_tf.config import KEY_TO_SECTION, load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernel_estimation import KernelEstimationError, estimate_kernel  # noqa: E402
from zssr_tf.degradation import degrade, random_anisotropic_kernel  # noqa: E402
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, kernel_distance, kernel_variances, upscale_offset  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.resize import imresize  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("bicubic", "kernel", "zssr_bicubic", "zssr_estimated", "zssr_true")
SETS = {"krk14": ("set14", "block_centre"), "g2direct5": ("set5", "direct")}
SEED = 2019


def make_case(set_name: str, name: str, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lr, gt, true kernel) of one image of a set; the kernel depends only on the set's seed
    and the image's name."""
    folder, convention = SETS[set_name]
    hr = read_image(DATA / folder / "hr" / f"{name}.png")[0]
    if crop:
        top, left = max(0, (hr.shape[0] - crop) // 2), max(0, (hr.shape[1] - crop) // 2)
        hr = hr[top:top + crop, left:left + crop]
    hr = hr[:hr.shape[0] - hr.shape[0] % 2, :hr.shape[1] - hr.shape[1] % 2]
    if set_name == "krk14":
        kernel = random_anisotropic_kernel(np.random.default_rng([SEED, *name.encode()]))[0]
    else:
        kernel = gaussian_kernel(21, np.sqrt(2.0))  # MZSR's "g2.0": variance 2 (experiments/make_degraded_set.py)
    return degrade(hr, kernel, 2, convention), hr, kernel


def bicubic_upscale(lr: np.ndarray, shape: tuple[int, int], convention: str) -> np.ndarray:
    """`lr` upscaled x2 to `shape` with MATLAB's bicubic interpolation on the set's grid
    (`convention`: its kernel_alignment), as ZSSR's own bicubic output is, clipped to [0, 1]."""
    return np.clip(imresize(lr, scale_factor=2, output_shape=shape, offset=upscale_offset((2, 2), convention)), 0, 1)


def kernel_fit(lr: np.ndarray, hr: np.ndarray, kernel: np.ndarray, convention: str) -> dict:
    """How well `kernel` explains the LR image: PSNR (dB, all channels) of the HR image degraded
    with it against the LR image, and their shift (px, y/x, phase correlation of the means over
    channels); plus its covariance eigenvalues."""
    redegraded = degrade(hr, kernel, 2, convention)
    shift = cv2.phaseCorrelate(lr.mean(axis=2).astype(np.float64), redegraded.mean(axis=2).astype(np.float64))[0]
    return {"redegraded_psnr": float(peak_signal_noise_ratio(lr, redegraded, data_range=1.0)),
            "shift_px": [float(shift[1]), float(shift[0])], "variances": kernel_variances(kernel)}


def estimation_digest(config) -> str:
    """10 hex digits naming what an estimate depends on: the resolved `kernel_estimation`
    settings and the seed of `config` (`estimate_variance_scale` left out at 1, so estimates
    cached before that setting existed keep their name). Cached estimates of other settings
    (e.g. from before a default changed) are made again, never reused."""
    settings = dataclasses.asdict(config.kernel_estimation)
    if settings["estimate_variance_scale"] == 1:
        del settings["estimate_variance_scale"]
    settings = json.dumps([settings, config.run.seed], sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:10]


def training_digest(config) -> str:
    """10 hex digits naming the ZSSR settings of `config` (every section but `kernel_estimation`
    and `run`, and the seed): cached ZSSR results of other settings (e.g. a preset as shipped
    before) are run again, never reused."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("kernel_estimation", "run")}
    return hashlib.sha256(json.dumps([settings, config.run.seed], sort_keys=True, default=str).encode()).hexdigest()[:10]


def estimator_tag(method: str) -> str:
    """The suffix of an estimator's result keys and files: "" for KernelGAN, "_fkp" for FKP."""
    return "" if method == "kernelgan" else f"_{method}"


def alignment_overrides(convention: str) -> list[str]:
    """The setting that tells ZSSR how the image was subsampled, where the package has it."""
    return [f"kernel_alignment={convention}"] if "kernel_alignment" in KEY_TO_SECTION else []


def run_case(set_name: str, name: str, crop: int, methods, overrides) -> dict:
    cache = RESULTS / "blind" / set_name / f"{name}{f'_crop{crop}' if crop else ''}.json"
    result = json.loads(cache.read_text()) if cache.is_file() else {}
    lr, gt, true_kernel = make_case(set_name, name, crop)
    convention = SETS[set_name][1]
    base = load_config("blind", [*alignment_overrides(convention), *overrides])
    given = load_config("blind", ["kernel=given", *alignment_overrides(convention), *overrides])
    # The estimator's results are kept apart per estimator: "kernel" and "zssr_estimated" for
    # KernelGAN, "kernel_fkp" and "zssr_estimated_fkp" for method=fkp.
    tag = estimator_tag(base.kernel_estimation.method)
    estimate_path = cache.with_name(f"{cache.stem}_estimated_kernel{tag}.npy")
    cache.parent.mkdir(parents=True, exist_ok=True)
    digest = estimation_digest(base)
    zssr_digest = training_digest(given)
    for method in methods:
        estimated = method in ("kernel", "zssr_estimated")
        key = method + tag if estimated else method
        if key in result and (not estimated or result[key].get("estimation_digest") == digest) and (
                not method.startswith("zssr") or result[key].get("training_digest") == zssr_digest):
            continue
        start = time.perf_counter()
        entry: dict = {}
        if method == "bicubic":
            sr = bicubic_upscale(lr, gt.shape[:2], convention)
        elif method == "kernel":
            try:
                estimate, history = estimate_kernel(lr, base)
            except KernelEstimationError as err:  # recorded: a collapse is a result too
                estimate, history, entry = None, None, {"error": str(err)}
            if estimate is not None:
                np.save(estimate_path, estimate)
                entry.update(kernel_distance=kernel_distance(estimate, true_kernel),
                             bicubic_kernel_distance=kernel_distance(bicubic_kernel(2), true_kernel),
                             estimation_seconds=history.seconds, estimation_ms_per_iteration=history.ms_per_iteration,
                             similar_to_bicubic_at=history.similar_to_bicubic_at,
                             constraints_on_at=history.constraints_on_at, raw_kernel_sum=float(history.raw_kernel.sum()))
        else:
            kernels = [bicubic_kernel(2)]  # numeric, so that it is aligned on the set's grid as the others
            if method == "zssr_true":
                kernels = [true_kernel]
            elif method == "zssr_estimated":
                if not estimate_path.is_file():
                    continue  # needs an estimate: the "kernel" method (first in METHODS) makes it
                kernels = [np.load(estimate_path)]
            zssr = ZSSR(given if method != "zssr_estimated" else base, verbose=False)
            run = zssr.run(lr, kernels=kernels)
            sr = run.sr
            entry.update(iterations=run.iterations, zssr_seconds=run.train_seconds + run.test_seconds,
                         training_digest=zssr_digest)
        if method != "kernel":
            entry.update(evaluate(sr, gt, 2))
        if estimated:
            entry["estimation_digest"] = digest
        entry["seconds"] = time.perf_counter() - start
        result[key] = entry
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{set_name}/{name} {key}: " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()), flush=True)
    estimated = result.get("kernel" + tag)
    if estimated is not None and estimate_path.is_file() and "estimate_fit" not in estimated:
        # Cheap, so also added to results cached before it was recorded.
        estimated.update(estimate_fit=kernel_fit(lr, gt, np.load(estimate_path), convention),
                         true_kernel_variances=kernel_variances(true_kernel),
                         bicubic_fit=kernel_fit(lr, gt, bicubic_kernel(2), convention))
        cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--images", nargs="+", default=["3"],
                        help="image names, or one number N: the first N images of each set (alphabetical; 0: all)")
    parser.add_argument("--crop", type=int, default=0, help="centre-crop the HR images to this side (0: whole)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every ZSSR run")
    args = parser.parse_args()
    report = {"crop": args.crop, "overrides": args.overrides, "sets": {}}
    for set_name in args.sets:
        names = sorted(p.stem for p in (DATA / SETS[set_name][0] / "hr").glob("*.png"))
        names = names[:int(args.images[0]) or None] if args.images[0].isdigit() else [n for n in args.images if n in names]
        report["sets"][set_name] = {n: run_case(set_name, n, args.crop, args.methods, args.overrides) for n in names}
    stem = f"blind_x2_crop{args.crop}" if args.crop else "blind_x2_whole"
    write_json(stem, report)
    (RESULTS / f"{stem}.md").write_text(summary_table(report))
    print(summary_table(report))
    return 0


def summary_table(report: dict) -> str:
    lines = []
    for set_name, cases in report["sets"].items():
        tags = sorted({key[len("kernel"):] for r in cases.values() for key in r if key.startswith("kernel")})
        scored = ["bicubic", "zssr_bicubic", *(f"zssr_estimated{t}" for t in tags), "zssr_true"]
        lines += [f"### {set_name} x2 (PSNR-Y dB / SSIM-Y)", "",
                  "| image | " + " | ".join(scored) + "".join(
                      f" | kernel distance{t or ' (KernelGAN)'}: estimate / bicubic" for t in tags) + " |",
                  "|---|" + "---|" * (len(scored) + len(tags))]
        for name, result in cases.items():
            cells = [f"{result[m]['psnr']:.2f} / {result[m]['ssim']:.4f}" if "psnr" in result.get(m, {})
                     else result.get(m, {}).get("error", "—")[:40] for m in scored]
            for t in tags:
                est = result.get("kernel" + t, {})
                cells.append(f"{est['kernel_distance']:.4f} / {est['bicubic_kernel_distance']:.4f}"
                             if "kernel_distance" in est else est.get("error", "—")[:40])
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        means = []
        for m in scored:
            scores = [r[m]["psnr"] for r in cases.values() if "psnr" in r.get(m, {})]
            means.append(f"{np.mean(scores):.2f} (n={len(scores)})" if scores else "—")
        lines += ["| mean | " + " | ".join(means) + " |" + " |" * len(tags), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
