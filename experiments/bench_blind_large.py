"""Wall time of a blind run on a large input, as a user runs it: `zssr train LR --config PRESET --gt HR`.

    python experiments/bench_blind_large.py [--presets blind] [--size 1000 700] [--image barbara]
                                            [key=value ...]

The input: a Set14 HR photo (`--image`, from ../shared/data) upscaled with MATLAB's bicubic to
twice `--size` (w h), then blurred with a seeded DIV2KRK-style anisotropic kernel
(`degradation.random_anisotropic_kernel`) and subsampled x2 on the block-centre grid: an LR
image of `--size` with a known HR and kernel (written to experiments/data/blind_large/). Each
preset runs once in a child process with its own MLflow store; printed and written to
experiments/results/blind_large.{md,json} per preset: the whole command's wall seconds, the
estimation's and ZSSR's seconds and iterations as the run logged them (`kernel_estimation/seconds`,
`kernel_estimation/ms_per_iteration`, `run/train_seconds`, `run/test_seconds`, `final/iterations`), PSNR-Y/SSIM-Y against the HR
(`final/psnr`, `final/ssim`, DESIGN §2) and the bicubic upscale's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS, write_json
from zssr_tf.degradation import degrade, random_anisotropic_kernel
from zssr_tf.image_io import read_image, write_image
from zssr_tf.resize import imresize

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "set14" / "hr"
OUT = Path(__file__).resolve().parent / "data" / "blind_large"
SEED = 2026
METRICS = ("kernel_estimation/seconds", "kernel_estimation/ms_per_iteration", "run/train_seconds", "run/test_seconds",
           "final/iterations", "final/psnr", "final/ssim", "final/bicubic_psnr", "final/bicubic_ssim")


def make_input(image: str, size: tuple[int, int]) -> tuple[Path, Path]:
    """(LR path, HR path) of the large blind input (see the module docstring); made once."""
    lr_path, hr_path = OUT / f"{image}_{size[0]}x{size[1]}_lr.png", OUT / f"{image}_{size[0]}x{size[1]}_hr.png"
    if not lr_path.exists():
        photo, _, info = read_image(DATA / f"{image}.png")
        hr = np.clip(imresize(photo, output_shape=(2 * size[1], 2 * size[0])), 0, 1)
        kernel = random_anisotropic_kernel(np.random.default_rng(SEED))[0]
        OUT.mkdir(parents=True, exist_ok=True)
        write_image(hr_path, hr, info)
        write_image(lr_path, degrade(hr, kernel, 2, "block_centre"), info)
        np.save(lr_path.with_name(f"{image}_{size[0]}x{size[1]}_kernel.npy"), kernel)
    return lr_path, hr_path


def run_preset(preset: str, lr: Path, hr: Path, overrides: list[str]) -> dict:
    """One `zssr train` in a child process; its wall seconds and the metrics it logged."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        command = [sys.executable, "-m", "zssr_tf.cli", "train", str(lr), "--gt", str(hr), "--config", preset,
                   "--out", f"{folder}/out", f"tracking_uri={uri}", *overrides]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - started
        run = mlflow.MlflowClient(uri).search_runs(mlflow.MlflowClient(uri).search_experiments()[0].experiment_id)[0]
        return {"wall_seconds": wall, **{key: run.data.metrics.get(key) for key in METRICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["blind"])
    parser.add_argument("--size", nargs=2, type=int, default=[1000, 700], metavar=("W", "H"), help="LR size")
    parser.add_argument("--image", default="barbara", help="the Set14 HR photo upscaled")
    parser.add_argument("overrides", nargs="*", help="key=value settings for every run")
    args = parser.parse_args()

    lr, hr = make_input(args.image, tuple(args.size))
    results = {preset: run_preset(preset, lr, hr, args.overrides) for preset in args.presets}
    write_json("blind_large", {"input": str(lr.name), "overrides": args.overrides, "results": results})
    lines = [f"# Blind runs on a {args.size[0]}x{args.size[1]} LR input ({args.image}, upscaled, random kernel)", "",
             "| preset | wall s | estimation s | estimation ms/iteration | ZSSR train s | test s | iterations | PSNR-Y | "
             "SSIM-Y | bicubic PSNR-Y |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for preset, r in results.items():
        cells = [r["wall_seconds"], r["kernel_estimation/seconds"] or 0, r["kernel_estimation/ms_per_iteration"] or 0,
                 r["run/train_seconds"], r["run/test_seconds"],
                 r["final/iterations"], r["final/psnr"], r["final/ssim"], r["final/bicubic_psnr"]]
        lines.append(f"| {preset} | " + " | ".join("-" if c is None else f"{c:.4f}" if c < 1 else f"{c:.1f}"
                                                 for c in cells) + " |")
    (RESULTS / "blind_large.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
