"""Does MLflow tracking slow training down? The same short run with and without tracking,
alternating (untracked, tracked, untracked, tracked, ...) in one process after one untimed
warm-up run, then the ratio of the mean times.

    python experiments/bench_tracking_overhead.py [--pairs 3] [--crop 128] [--gt] [--tracking-uri URI] [key=value ...]

Default: 300 iterations of the default config on the top-left 128x128 crop of Set5 baby's x2
input, tracked into a SQLite store in a temporary folder (`--tracking-uri` for a server).
`--gt` adds the ground truth, so every run_test_every iterations the tracked run also scores
the current output (PSNR/SSIM): extra computation the untracked run does not do.

The main ratio is of training time (`model.fit`, where per-iteration logging happens); the
whole-run ratio also counts run start, figures, model saving and uploads. Another busy process
on the CPU skews single runs: compare only within one invocation. As a check that load cannot
blur, the script also times the logging work itself (the callback in the training thread, and
`log_batch` per value in the background) and prints the slowdown it implies at the measured
step time. Writes experiments/results/tracking_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.utils.validation import MAX_METRICS_PER_BATCH  # noqa: E402

from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.pipeline import super_resolve_file  # noqa: E402
from zssr_tf.precision import device_name  # noqa: E402
from zssr_tf.tracking import tracked_run  # noqa: E402
from common import benchmark_data_dir, write_json  # noqa: E402

DATA = benchmark_data_dir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="untracked/tracked pairs to time (default 3)")
    parser.add_argument("--crop", type=int, default=128, help="side of the input crop in pixels (default 128)")
    parser.add_argument("--gt", action="store_true", help="give the ground truth (per-test PSNR/SSIM when tracked)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: SQLite in a temporary folder)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_args()
    config = load_config(overrides=["train.max_iters=300", "progress_every=0", *args.overrides])

    home = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chdir(tmp)  # a SQLite store keeps its artifacts in ./mlruns: keep them in the temporary folder too
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri or f"sqlite:///{tmp / 'mlflow.db'}"
        image_path, gt = _inputs(tmp, args.crop, args.gt)
        image, alpha, info = read_image(image_path)

        def untracked() -> tuple[float, float]:
            start = time.perf_counter()
            outcome = super_resolve_file(config, image, alpha, info, tmp / "out", gt=gt)
            return outcome.result.train_seconds, time.perf_counter() - start

        def tracked() -> tuple[float, float]:
            start = time.perf_counter()
            with tracked_run(config, info, tmp / "out", gt_path=tmp / "gt.png" if args.gt else None) as run:
                outcome = super_resolve_file(config, image, alpha, info, tmp / "out", gt=gt, callbacks=[run.callback])
                run.log_outcome(outcome, gt)
            return outcome.result.train_seconds, time.perf_counter() - start

        untracked()  # warm-up: TensorFlow and oneDNN initialise on the first run
        MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).search_experiments()  # creates a new store's tables
        times: dict[str, list[tuple[float, float]]] = {"untracked": [], "tracked": []}
        for pair in range(args.pairs):
            for name, run in (("untracked", untracked), ("tracked", tracked)):
                times[name].append(run())
                print(f"pair {pair + 1}/{args.pairs} {name:>9}: train {times[name][-1][0]:.2f} s, "
                      f"whole run {times[name][-1][1]:.2f} s", flush=True)
        foreground_s, background_s = _logging_cost(config, info, tmp / "cost")
        os.chdir(home)

    mean = {name: np.mean(values, axis=0) for name, values in times.items()}
    train_ratio = mean["tracked"][0] / mean["untracked"][0]
    total_ratio = mean["tracked"][1] / mean["untracked"][1]
    # A burst of load from another process hits one run of a pair; the median of the per-pair
    # ratios resists that better than the ratio of means.
    pair_ratios = [t[0] / u[0] for u, t in zip(times["untracked"], times["tracked"])]
    print(f"mean train time: untracked {mean['untracked'][0]:.2f} s, tracked {mean['tracked'][0]:.2f} s, "
          f"ratio {train_ratio:.3f}; median of per-pair ratios {np.median(pair_ratios):.3f} (target <= 1.03)")
    print(f"mean whole-run time: untracked {mean['untracked'][1]:.2f} s, tracked {mean['tracked'][1]:.2f} s, "
          f"ratio {total_ratio:.3f}")
    step_s = mean["untracked"][0] / config.train.max_iters
    implied = 1 + (foreground_s + background_s) / step_s
    print(f"logging work per iteration: {foreground_s * 1e6:.0f} us in the training thread, "
          f"{background_s * 1e6:.0f} us of log_batch in the background; at {step_s * 1e3:.0f} ms per step "
          f"that is a ratio of {implied:.4f}")
    write_json("tracking_overhead", {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device_name(), "load_average": os.getloadavg(),
        "iterations": config.train.max_iters, "crop": args.crop, "gt": args.gt, "overrides": args.overrides,
        "tracking_uri": args.tracking_uri or "sqlite (temporary)",
        "seconds": {name: [{"train": t, "whole_run": w} for t, w in values] for name, values in times.items()},
        "train_ratio": train_ratio, "train_pair_ratios": pair_ratios, "median_train_pair_ratio": np.median(pair_ratios),
        "whole_run_ratio": total_ratio, "logging_seconds_per_iteration": {
            "training_thread": foreground_s, "background": background_s}, "implied_ratio": implied})
    return 0


def _logging_cost(config, info, out_dir: Path, iterations: int = 3000) -> tuple[float, float]:
    """Seconds per iteration of logging work, measured without training: the callback's
    `on_train_batch_end` (training thread), and `log_batch` of the values it queues (background
    thread; counted in full although it overlaps training)."""
    with tracked_run(config, info, out_dir) as run:
        run.start()
        every = config.train.run_test_every
        start = time.perf_counter()
        for i in range(iterations):
            logs = {"loss": 0.01 / (i + 1), "learning_rate": 1e-3, "iteration": i}
            if i % every == 0:
                logs["reconstruction_error"] = 1e-4
            run.callback.on_train_batch_end(i, logs)
        foreground = (time.perf_counter() - start) / iterations
        values = iterations * (2 + 1 / every)
        now = int(time.time() * 1000)
        batches = [[Metric(f"cost_{k}", 0.5, now, i) for i in range(MAX_METRICS_PER_BATCH)] for k in range(3)]
        start = time.perf_counter()
        for metrics in batches:
            run.client.log_batch(run.run_id, metrics=metrics)
        background = (time.perf_counter() - start) / (3 * MAX_METRICS_PER_BATCH) * values / iterations
    return foreground, background


def _inputs(folder: Path, crop: int, with_gt: bool) -> tuple[Path, np.ndarray | None]:
    """Top-left `crop` x `crop` of Set5 baby's x2 input, and the matching ground truth if asked."""
    lr = cv2.imread(str(DATA / "set5/lr_x2/baby.png"))[:crop, :crop]
    cv2.imwrite(str(folder / "baby.png"), lr)
    if not with_gt:
        return folder / "baby.png", None
    cv2.imwrite(str(folder / "gt.png"), cv2.imread(str(DATA / "set5/hr/baby.png"))[:2 * crop, :2 * crop])
    return folder / "baby.png", read_image(folder / "gt.png")[0]


if __name__ == "__main__":
    sys.exit(main())
