"""One ZSSR run of one image on one Keras backend, measured; prints one JSON line.

    python experiments/backend_run.py --backend jax --image LR.png [--gt HR.png] [--config fast]
        [key=value ...]

Used by `bench_speed.py --backends` (each backend in its own process: the backend is fixed when
Keras loads) and by `gpu_check.sh`. The backend is chosen before Keras is imported; nothing is
tracked (no MLflow). With `kernel: estimate` (the `blind` preset) the kernel is estimated first,
as `zssr train` does. The line holds: backend, its library's version, device, preset, image,
iterations, ms per iteration (median of the intervals between iterations after the first
WARMUP, and the mean over training), seconds (estimation, training, final test: the whole run
after start-up), PSNR-Y of ZSSR and bicubic with `--gt`, and the peak GPU memory in bytes (JAX:
`memory_stats()["peak_bytes_in_use"]`, PyTorch: `max_memory_allocated`; null on the CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package, not an installed one

from zssr_tf.backend import BACKENDS, library_version, select_backend  # noqa: E402 (no Keras import)

WARMUP = 10


def peak_gpu_bytes(name: str) -> int | None:
    """The peak GPU memory the backend allocated in this process, or None without a GPU."""
    if name == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() if jax.devices()[0].platform == "gpu" else None
        return stats.get("peak_bytes_in_use") if stats else None
    if name == "torch":
        import torch

        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--image", required=True, help="the LR image")
    parser.add_argument("--gt", default=None, help="its ground truth (PSNR-Y)")
    parser.add_argument("--config", default=None, help="preset name or YAML file (default: the default config)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    select_backend(args.backend)

    import keras
    import numpy as np

    from zssr_tf.config import load_config
    from zssr_tf.image_io import read_image
    from zssr_tf.pipeline import estimate_blind_kernels
    from zssr_tf.precision import device_name
    from zssr_tf.trainer import ZSSR

    class IterationTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    config = load_config(args.config, [*args.overrides, "progress_every=0"])
    image = read_image(args.image)[0]
    gt = read_image(args.gt)[0] if args.gt else None
    timer = IterationTimer()
    start = time.perf_counter()
    kernels = None
    if config.kernel_estimation.kernel == "estimate":
        kernels = estimate_blind_kernels(config, image).per_step
    result = ZSSR(config, callbacks=[timer], verbose=False).run(image, gt=gt, kernels=kernels)
    seconds = time.perf_counter() - start
    intervals = np.diff(timer.ends[WARMUP:]) * 1000 if len(timer.ends) > WARMUP + 1 else np.array([np.nan])
    row = {"backend": args.backend, "version": library_version(args.backend), "device": device_name(),
           "config": args.config or "default", "image": Path(args.image).stem, "iterations": result.iterations,
           "ms_per_iteration": float(np.median(intervals)),
           "ms_per_iteration_mean": 1000 * result.train_seconds / max(result.iterations, 1),
           "train_seconds": result.train_seconds, "test_seconds": result.test_seconds, "seconds": seconds,
           "precision": result.precision, "peak_gpu_bytes": peak_gpu_bytes(args.backend)}
    if result.metrics:
        row.update(psnr_y=result.metrics["zssr"]["psnr"], bicubic_psnr_y=result.metrics["bicubic"]["psnr"])
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
