"""Speed of the kernel estimation against the ZSSR stage of a blind run, side by side in one run.

    python experiments/bench_kernel_estimation.py [--image PATH] [--iters 300] [--zssr-iters 150] [--repeats 2]

On one LR image: KernelGAN iterations (one G and one D step each) in float32 and in
mixed_bfloat16 (alternated `--repeats` times, so a change in the machine's load hits both), and
ZSSR training iterations of the `blind` preset (128x128 crops) in float32 and `auto` precision.
Reports the median ms per iteration after the first 20 (tracing) and the seconds a full
3000-iteration estimation takes at that rate. Writes experiments/results/kernel_estimation_speed_<device>.json.
Compare numbers only within one run of this script (DESIGN §5).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common import device_kind, write_json  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernel_estimation import KernelEstimationError, estimate_kernel  # noqa: E402
from zssr_tf.precision import resolve_precision  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WARMUP = 20


def estimation_ms(image: np.ndarray, precision: str, iters: int) -> float:
    """Median ms per estimation iteration after WARMUP, from per-iteration timestamps."""
    stamps = []
    config = load_config(overrides=[f"estimation_iters={iters}", "estimation_runs=1", f"estimation_precision={precision}"])
    try:
        estimate_kernel(image, config, callback=lambda i, values: stamps.append(time.perf_counter()))
    except KernelEstimationError:
        pass  # a short run may end before the generator has learnt a kernel: only the timing counts
    keras.backend.clear_session()
    return float(np.median(np.diff(stamps[WARMUP:])) * 1000)


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.stamps = []

    def on_train_batch_end(self, batch, logs=None):
        self.stamps.append(time.perf_counter())


def zssr_ms(image: np.ndarray, precision: str, iters: int) -> float:
    """Median ms per ZSSR training iteration (blind preset, bicubic kernel) after WARMUP."""
    times = StepTimes()
    config = load_config("blind", ["kernel=given", f"max_iters={iters}", f"precision={precision}", "progress_every=0",
                                   f"min_iters={iters}"])
    ZSSR(config, callbacks=[times], verbose=False).run(image)
    keras.backend.clear_session()
    return float(np.median(np.diff(times.stamps[WARMUP:])) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DATA / "set5" / "lr_x2" / "baby.png")
    parser.add_argument("--iters", type=int, default=300, help="estimation iterations per measurement")
    parser.add_argument("--zssr-iters", type=int, default=150, help="ZSSR iterations per measurement")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    image = read_image(args.image)[0]
    rows: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        for precision in ("float32", "mixed_bfloat16"):
            rows.setdefault(f"estimation {precision}", []).append(estimation_ms(image, precision, args.iters))
        for precision in ("float32", "auto"):
            label = f"zssr {precision} ({resolve_precision(precision)})"
            rows.setdefault(label, []).append(zssr_ms(image, precision, args.zssr_iters))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in rows.items()), flush=True)
    report = {"image": str(args.image), "estimation_iters": args.iters, "zssr_iters": args.zssr_iters,
              "ms_per_iteration": {k: float(np.median(v)) for k, v in rows.items()}, "all_ms": rows}
    report["estimation_seconds_3000_iterations"] = {
        k: 3 * v for k, v in report["ms_per_iteration"].items() if k.startswith("estimation")}
    write_json(f"kernel_estimation_speed_{device_kind()}", report)
    for key, value in report["ms_per_iteration"].items():
        print(f"{key:40s} {value:8.1f} ms/iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
