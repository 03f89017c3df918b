"""Training speed and peak memory against the input's size: does the cost per iteration stay flat?

    python experiments/bench_large_image.py [--iters 110] [--repeats 2] [--skip-untiled] [--final-test]

Inputs: scikit-image's `astronaut` (512x512) resized with bicubic to 256x256, 1000x1000 (1 MP)
and 2000x3000 (6 MP). Each case is one child process (so one's peak memory does not hide
another's) training the default network for `--iters` iterations with the learning rate held
(no drops, so every case runs the same iterations); with `--final-test`, then a light final
test (no flips, 2 back-projection steps; the full 8-variant test is the same work 8 times over).

Variants: `auto` (the default: tiled reconstruction test, on fixed crops when the image is
larger than `train.reconstruction_test_pixels`) and, at 1 MP, the untiled whole-image
reconstruction test the package ran before (`reconstruction_test=full`, tiles larger than any
image; at 256x256 `auto` is that same whole-image test, and 6 MP untiled would need ~10 GB). Cases alternate within each repeat; per case the
median over repeats of:
- training seconds per 100 iterations, between batch ends after 10 warm-up iterations, the
  reconstruction tests included (every 50 iterations): wall time, and the CPU time of all the
  process's threads (training and pipeline), which other jobs on a shared machine disturb less;
- peak resident memory (ru_maxrss) at the end of training and, with `--final-test`, of the run.

Prints a table and writes experiments/results/large_image_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = {"256x256": (256, 256), "1 MP": (1000, 1000), "6 MP": (2000, 3000)}
WARMUP = 10


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TrainingDone(Exception):
    """Raised at the end of training to skip the final test."""


def child(size: str, variant: str, iters: int, final_test: bool) -> dict:
    """One case in this (child) process: train, then (`final_test`) the light final test."""
    import cv2
    import keras
    from skimage import data

    from zssr_tf.config import load_config
    from zssr_tf.trainer import ZSSR

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times, self.cpu_times = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            self.cpu_times.append(time.process_time())

        def on_train_end(self, logs=None):
            self.train_peak_mb = peak_rss_mb()
            if not final_test:
                raise TrainingDone

    height, width = SIZES[size]
    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    overrides = [f"max_iters={iters}", "min_iters=100000", "progress_every=0", "output_flip=false",
                 "back_projection_iters=[2]"]
    if variant == "untiled":
        overrides += ["reconstruction_test=full", "tile_size=100000"]
    probe = Probe()
    start_rss = peak_rss_mb()
    try:
        test_seconds = ZSSR(load_config(overrides=overrides), callbacks=[probe],
                            verbose=False).run(np.clip(image, 0, 1)).test_seconds
    except TrainingDone:
        test_seconds = float("nan")
    timed = len(probe.times) - 1 - WARMUP
    return {"size": size, "variant": variant, "pixels": height * width, "iterations": len(probe.times),
            "s_per_100_iters": 100 * (probe.times[-1] - probe.times[WARMUP]) / timed,
            "cpu_s_per_100_iters": 100 * (probe.cpu_times[-1] - probe.cpu_times[WARMUP]) / timed, "train_peak_mb": probe.train_peak_mb,
            "run_peak_mb": peak_rss_mb(), "start_peak_mb": start_rss, "final_test_s": test_seconds}


def run_case(size: str, variant: str, iters: int, final_test: bool) -> dict:
    command = [sys.executable, __file__, "--child", size, variant, "--iters", str(iters)]
    out = subprocess.run(command + (["--final-test"] if final_test else []), capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{size} {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=110,
                        help="training iterations per case (timed from the 10th; tests every 50)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-untiled", action="store_true", help="only the default (auto) variant")
    parser.add_argument("--final-test", action="store_true", help="also run the light final test")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.iters, args.final_test)))
        return 0

    from common import device_kind, write_json

    cases = [("256x256", "auto"), ("6 MP", "auto"), ("1 MP", "auto")]
    if not args.skip_untiled:
        cases += [("1 MP", "untiled")]
    samples: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    for repeat in range(args.repeats):
        for case in cases:
            row = run_case(*case, args.iters, args.final_test)
            samples[case].append(row)
            print(f"  repeat {repeat + 1}: {case[0]} {case[1]}: {row['s_per_100_iters']:.1f} s/100 it "
                  f"(CPU {row['cpu_s_per_100_iters']:.1f} s), "
                  f"train peak {row['train_peak_mb']:.0f} MB, run peak {row['run_peak_mb']:.0f} MB, "
                  f"final test {row['final_test_s']:.1f} s", flush=True)

    def median(case, key):
        return float(np.median([r[key] for r in samples[case]]))

    base = median(("256x256", "auto"), "s_per_100_iters")
    cpu_base = median(("256x256", "auto"), "cpu_s_per_100_iters")
    rows = []
    print("\n| input | reconstruction test | s / 100 it | vs 256x256 | CPU s / 100 it | vs 256x256 | "
          "peak MB, training | peak MB, run | final test s (1 variant) |\n|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        row = {"size": case[0], "variant": case[1], **{k: median(case, k) for k in
               ("s_per_100_iters", "cpu_s_per_100_iters", "train_peak_mb", "run_peak_mb", "final_test_s")}}
        row["ratio_to_256"] = row["s_per_100_iters"] / base
        row["cpu_ratio_to_256"] = row["cpu_s_per_100_iters"] / cpu_base
        rows.append(row)
        print(f"| {case[0]} | {case[1]} | {row['s_per_100_iters']:.1f} | {row['ratio_to_256']:.2f}x | "
              f"{row['cpu_s_per_100_iters']:.1f} | {row['cpu_ratio_to_256']:.2f}x | "
              f"{row['train_peak_mb']:.0f} | {row['run_peak_mb']:.0f} | {row['final_test_s']:.1f} |")
    write_json(f"large_image_{device_kind()}", {"iters": args.iters, "repeats": args.repeats, "rows": rows,
                                                "samples": [r for v in samples.values() for r in v]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
