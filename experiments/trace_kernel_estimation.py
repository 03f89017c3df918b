"""How KernelGAN's kernel moves as it trains: the raw kernel of every run, every 10 iterations,
on 320-px HR crops of the blind benchmark sets (bench_blind.py), for choosing the early-stopping
settings of `kernel_estimation` (kernel_stop_every, kernel_stop_tolerance, runs_agree_tolerance).

    python experiments/trace_kernel_estimation.py krk14/baboon g2direct5/head [--runs 5] [--crop 320]

Writes <--out, default experiments/results/blind/kernel_trace>/<set>_<image>_crop<crop>.npz: `raw` (runs, steps,
K, K) float64 raw kernels at iterations 0, 10, 20, ... and `true`, the image's true kernel. Runs
with the `blind` preset and every early stop off, so each run goes to estimation_iters.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from bench_blind import make_case  # noqa: E402
from common import RESULTS  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.kernel_estimation import estimator  # noqa: E402

EVERY = 10
NO_EARLY_STOP = ["kernel_stop_tolerance=0", "runs_agree_tolerance=0", "collapse_check_at=0"]


def traced_runs(lr: np.ndarray, runs: int) -> np.ndarray:
    """(runs, steps, K, K) raw kernels of `runs` full-length estimations of `lr`'s kernel."""
    kernels: list[list[np.ndarray]] = []
    original = estimator.KernelGAN

    class Traced(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            step, count = self.train_step, [0]
            kernels.append([])

            def traced(*inputs):
                values, kernel = step(*inputs)
                if count[0] % EVERY == 0:
                    kernels[-1].append(ops.convert_to_numpy(kernel).astype(np.float64))
                count[0] += 1
                return values, kernel
            self.train_step = traced

    estimator.KernelGAN = Traced
    try:
        known = set(load_config("blind").flat())
        overrides = [o for o in NO_EARLY_STOP if f"kernel_estimation.{o.split('=')[0]}" in known]
        estimator.estimate_kernel(lr, load_config("blind", [f"estimation_runs={runs}", *overrides]))
    finally:
        estimator.KernelGAN = original
    return np.array(kernels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="set/image, e.g. krk14/baboon")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--out", type=Path, default=RESULTS / "blind" / "kernel_trace")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for item in args.images:
        set_name, name = item.split("/")
        lr, _, true = make_case(set_name, name, args.crop)
        raw = traced_runs(lr, args.runs)
        np.savez(out / f"{set_name}_{name}_crop{args.crop}.npz", raw=raw, true=true)
        print(f"{item}: {raw.shape}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
