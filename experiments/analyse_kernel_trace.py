"""What early stopping would have given on traces of trace_kernel_estimation.py: per run, the
iteration its raw kernel's sum first reached 0.25, and for each (every, tolerance) the iteration
a run would stop at (kernel distance between the kernel then and `every` iterations earlier under
the tolerance, checked from iteration 400, where the kernel constraints switch on in these runs)
with the distance of its post-processed kernel to the true one; then for the stopped runs, the
mean of the first 2..5 and whether they agree within each runs_agree tolerance.

    python experiments/analyse_kernel_trace.py /tmp/est_trace/*.npz [--every 100 250] [--tolerances 0.01 0.005]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from zssr_tf.kernel_estimation.estimator import runs_agree
from zssr_tf.kernel_estimation.postprocess import average_kernels, post_process
from zssr_tf.kernels import kernel_distance

STEP = 10  # iterations between traced kernels
CONSTRAINTS_ON = 400


def stop_index(raw: np.ndarray, every: int, tolerance: float) -> int:
    """Index (into the traced kernels) of the first check, every `every` iterations from
    CONSTRAINTS_ON, whose kernel moved under `tolerance` since the check before; the last index when none."""
    lag = every // STEP
    for i in range(CONSTRAINTS_ON // STEP + lag, len(raw), lag):
        if kernel_distance(raw[i], raw[i - lag]) < tolerance:
            return i
    return len(raw) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+")
    parser.add_argument("--every", type=int, nargs="+", default=[100, 250])
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.02, 0.01, 0.005, 0.0025])
    parser.add_argument("--agree", type=float, nargs="+", default=[0.01, 0.015, 0.02, 0.03])
    args = parser.parse_args()
    for path in args.traces:
        data = np.load(path)
        raw, true = data["raw"], data["true"]
        collapsed = [i for i, r in enumerate(raw) if r[-1].sum() < 0.25]
        print(f"== {path}: runs {collapsed} collapsed (left out of what follows)")
        grown = [int(np.argmax(r.sum(axis=(1, 2)) >= 0.25)) * STEP if (r.sum(axis=(1, 2)) >= 0.25).any() else None
                 for r in raw]
        raw = np.array([r for i, r in enumerate(raw) if i not in collapsed])
        full = [post_process(r[-1]) for r in raw]
        print(f"sum >= 0.25 first at iterations {grown}; full runs: distance "
              f"{[round(kernel_distance(k, true), 3) for k in full]}, mean of all "
              f"{kernel_distance(average_kernels(full), true):.4f}")
        # movement per 250 iterations along the run, run 0
        moves = [round(kernel_distance(raw[0][i], raw[0][i - 25]), 4) for i in range(65, len(raw[0]), 25)]
        print(f"run 0 movement per 250 its from iteration 650: {moves}")
        for every in args.every:
            for tolerance in args.tolerances:
                stops = [stop_index(r, every, tolerance) for r in raw]
                kernels = [post_process(r[i]) for r, i in zip(raw, stops)]
                dists = [kernel_distance(k, true) for k in kernels]
                line = (f"every {every:4d} tol {tolerance:<7g} stops {[i * STEP + 1 for i in stops]} dist "
                        f"{[round(d, 3) for d in dists]} mean-of-{len(kernels)} "
                        f"{kernel_distance(average_kernels(kernels), true):.4f}")
                for agree in args.agree:
                    n = next((m for m in range(2, len(kernels) + 1) if runs_agree(kernels[:m], agree)), len(kernels))
                    line += (f" | agree {agree:g}: {n} runs, {sum(i * STEP + 1 for i in stops[:n])} its, "
                             f"{kernel_distance(average_kernels(kernels[:n]), true):.4f}")
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
