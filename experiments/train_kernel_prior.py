"""Train the x2 kernel prior (FKP) that `kernel_estimation.method: fkp` searches.

    python experiments/train_kernel_prior.py [--steps 20000] [--learning-rate 1e-3] [--batch 100] [--seed 0]
        [--out zssr_tf/weights/kernel_prior_x2.npz]

The flow (`zssr_tf.kernel_estimation.prior.KernelPrior`: 5 coupling blocks, 15 hidden units,
11x11 kernels) is fitted by maximum likelihood to synthetic anisotropic Gaussian kernels drawn
afresh for every batch (`sample_training_kernels`: variances U(0.35, 5) px^2, angle U(0, pi)),
with FKP's recipe (Liang et al., CVPR 2021) but shorter: Adam with weight decay 1e-6, the
learning rate halved at 40, 50, ..., 90 % of the steps, batches of 100, dequantisation noise.
FKP runs 50,000 steps from 1e-4; here 20,000 from 1e-3 (5 min on 2 CPU cores), because in a
short trial 1e-4 had brought the validation NLL only to 158.8 after 400 steps, where 1e-3 fell
fast (experiments/reports/blind-sr.md; the two were not run to the end side by side). No
image is used.

Prints the negative log-likelihood of a fixed validation grid (variances 0.35..5 in steps of
0.3, angles 0..pi in steps of 0.2) as it goes, and at the end how plausible the decoded
samples of random latents are: their taps' sum and their covariance eigenvalues.
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
import tensorflow as tf  # noqa: E402

from zssr_tf.kernel_estimation.prior import (VARIANCE_RANGE, KernelPrior, anisotropic_gaussians,  # noqa: E402
                                             sample_training_kernels, save_prior)
from zssr_tf.kernel_estimation.prior_file import PRIOR_X2  # noqa: E402
from zssr_tf.kernels import kernel_variances  # noqa: E402


def validation_kernels(size: int) -> np.ndarray:
    """FKP's validation grid: both variances over 0.35..5 in steps of 0.3, angles 0..pi in 0.2."""
    grid = np.arange(VARIANCE_RANGE[0], VARIANCE_RANGE[1] + 0.3, 0.3)
    v1, v2, angle = np.meshgrid(grid, grid, np.arange(0, np.pi, 0.2), indexing="ij")
    return anisotropic_gaussians(np.stack([v1.ravel(), v2.ravel()], 1), angle.ravel(), size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000, help="batches (FKP: 100 epochs of 500)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="initial (FKP: 1e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PRIOR_X2)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    prior = KernelPrior()
    milestones = [int(args.steps * f / 10) for f in range(4, 10)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        milestones, [args.learning_rate * 0.5 ** i for i in range(len(milestones) + 1)])
    optimizer = keras.optimizers.Adam(schedule, weight_decay=1e-6)
    optimizer.build(prior.trainable_variables)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(prior.log_prob(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, prior.trainable_variables), prior.trainable_variables))
        return loss

    val = prior.to_flow_space(validation_kernels(prior.kernel_size), np.random.default_rng(1))
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x = prior.to_flow_space(sample_training_kernels(rng, args.batch, prior.kernel_size), rng)
        loss = float(train_step(x))
        if not np.isfinite(loss):
            print(f"step {step}: the loss is {loss}; try a lower --learning-rate", file=sys.stderr)
            return 1
        if step % max(args.steps // 20, 1) == 0 or step == args.steps:
            nll = -float(tf.reduce_mean(prior.log_prob(val)))
            print(f"step {step:6d}/{args.steps}  train NLL {loss:9.2f}  validation NLL {nll:9.2f}  "
                  f"{time.perf_counter() - start:6.0f} s", flush=True)
    save_prior(prior, args.out)
    samples = prior.decode(tf.random.normal((2000, prior.latent_size), seed=args.seed)).numpy().astype(np.float64)
    sums = samples.sum(axis=(1, 2))
    variances = np.array([kernel_variances(k / k.sum()) for k in samples])
    inside = np.mean((variances[:, 0] > 0.2) & (variances[:, 1] < 6.0))
    print(f"wrote {args.out}; 2000 decoded random latents: tap sums {np.percentile(sums, 5):.3f}.."
          f"{np.percentile(sums, 95):.3f} (5th..95th percentile); covariance eigenvalues "
          f"{np.percentile(variances[:, 0], 5):.2f}..{np.percentile(variances[:, 1], 95):.2f} px^2; "
          f"{100 * inside:.1f} % within 0.2..6 px^2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
