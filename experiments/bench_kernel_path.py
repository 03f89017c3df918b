"""Cost of making training pairs with a numeric kernel against the bicubic path, side by side.

    python experiments/bench_kernel_path.py [--pairs 200] [--repeats 3] [--iterations 40]

Times `data.PairMaker` (father sampling, son, upscale back: what the tf.data workers do per
iteration) on Set5 `baby` x2 LR with the default augmentation for: the bicubic son; a 21x21
Gaussian kernel (separable: two 1-D correlations at the kept rows/columns only); and the same
kernel through a full 2-D scipy.ndimage.correlate and then subsampling (the way sons were made
before; the kernel is made non-separable by a 1e-6 tap so the 2-D path runs). Variants alternate
within each repeat; medians. Writes experiments/results/kernel_path_cpu.json.

With --iterations N, whole training iterations instead (pair making in the tf.data workers and
the training step together, as a run pays them): the default config on the same image with the
bicubic son and with the 21x21 Gaussian (`kernel_alignment: direct`), learning rate held, no final
test, N timed iterations after a warm-up per variant and repeat, alternating; medians. Writes
experiments/results/kernel_iteration_cpu.json.
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

from bench_speed import BatchTimer  # noqa: E402
from zssr_tf.augment import FatherSampler  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.data import PairMaker  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernels import align_kernel, gaussian_kernel  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=0,
                        help="time N whole training iterations per variant instead of pairs alone")
    args = parser.parse_args()
    image, _, _ = read_image(ROOT.parent / "shared/data/set5/lr_x2/baby.png")
    if args.iterations:
        return whole_iterations(image, args.iterations, args.repeats)
    separable = align_kernel(gaussian_kernel(21, np.sqrt(2.0)), (2, 2), "direct")
    full_2d = separable.copy()
    full_2d[0, 1] += 1e-6  # rank 2: downscale_with_kernel takes the 2-D correlation
    makers = {name: PairMaker((image,), (1.0,), FatherSampler(), (2.0, 2.0), kernel, 0.0, "cubic", seed=0)
              for name, kernel in (("bicubic", "cubic"), ("kernel 21x21 separable", separable),
                                   ("kernel 21x21 2-D correlate", full_2d))}
    times: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(args.repeats):
        for name, maker in makers.items():
            start = time.perf_counter()
            for index in range(args.pairs):
                maker(index)
            times[name].append((time.perf_counter() - start) / args.pairs * 1000)
    return report(times, "pair", "kernel_path_cpu.json", {"pairs": args.pairs, "repeats": args.repeats})


def whole_iterations(image: np.ndarray, iterations: int, repeats: int) -> int:
    """ms per training iteration (pairs from the tf.data workers + step) with the bicubic son and
    with a 21x21 Gaussian kernel, alternating; medians over `repeats`."""
    warmup = 5
    common = ["min_iters=100000", f"max_iters={warmup + iterations + 1}", "output_flip=false",
              "back_projection_iters=[0]", "progress_every=0"]
    variants = {"bicubic": (load_config(None, common), None),
                "kernel 21x21 (direct)": (load_config(None, [*common, "kernel_alignment=direct"]),
                                          [gaussian_kernel(21, np.sqrt(2.0))])}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, (config, kernels) in variants.items():
            timer = BatchTimer(warmup)
            ZSSR(config, callbacks=[timer], verbose=False).run(image, kernels=kernels)
            times[name].append(timer.ms_per_iteration())
            print(f"repeat {repeat + 1}: {name}: {times[name][-1]:.0f} ms/iteration", flush=True)
    return report(times, "iteration", "kernel_iteration_cpu.json", {"iterations": iterations, "repeats": repeats})


def report(times: dict[str, list[float]], unit: str, file_name: str, meta: dict) -> int:
    """Median ms per `unit` of each variant and its ratio to "bicubic": printed, and written with
    `meta` and the repeats to experiments/results/`file_name`."""
    key = f"ms_per_{unit}"
    result = {name: {key: float(np.median(t)), "repeats": t} for name, t in times.items()}
    base = result["bicubic"][key]
    for name, r in result.items():
        r["vs_bicubic"] = r[key] / base
        print(f"{name:>28}: {r[key]:.2f} ms/{unit} ({r['vs_bicubic']:.2f}x bicubic)")
    out = ROOT / "experiments/results" / file_name
    out.write_text(json.dumps({**meta, "variants": result}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
