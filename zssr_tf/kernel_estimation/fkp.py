"""Kernel estimation in a kernel prior's latent space (KernelGAN-FKP: Liang, Zhang, Gool &
Timofte, "Flow-based Kernel Prior with Application to Blind Super-Resolution", CVPR 2021).

KernelGAN's game with the generator replaced: the kernel is `prior.decode(z)` for one latent z
of the trained flow (`prior.py`), normalised to sum 1, and only z is trained. The LR crop is
correlated with that kernel and subsampled x2; KernelGAN's patch discriminator (`networks.py`,
the same settings) judges it against real crops, with KernelGAN's losses, and the crops and
noise are KernelGAN's (`crops.training_inputs`). As in FKP, z stays on a sphere (radius K - 1,
FKP's choice; a standard normal K^2-vector has a norm near K) and no kernel constraint is
needed: every latent decodes to a plausible anisotropic Gaussian.
Differences from KernelGAN's estimator besides the kernel's parameterisation: no bicubic phase
or constraint terms, no learning-rate drops, and no post-processing beyond normalising and
re-centring (`finish`). Differences from the FKP code:
its discriminator is a WGAN-GP one trained 3 times per iteration on batches of 64 crops, and
its latent's learning rate 5e-4 (here `latent_learning_rate`, 2e-3 by default: measured better
in experiments/reports/blind-sr.md, "A kernel prior (FKP) fixes baboon's shape").
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zssr_tf.config import Config
from zssr_tf.kernel_estimation.networks import (discriminator_step, discriminator_with_optimizer,
                                                downscale_with_generator_kernel)
from zssr_tf.kernel_estimation.prior import KernelPrior
from zssr_tf.kernels import kernel_variances, recenter_kernel

# Per-iteration values of the training step, in its order.
VALUE_NAMES = ("g_loss", "d_loss", "kernel_sum")
# The prior learnt kernels whose taps sum to 1 (`prior.sample_training_kernels`); a decoded
# kernel whose raw taps sum further from 1 than this comes from a latent outside what it learnt.
RAW_SUM_TOLERANCE = 0.1


class KernelPriorGAN:
    """The latent, the discriminator, their optimisers and one compiled training step."""

    def __init__(self, config: Config, prior: KernelPrior, channels: int, seed: int):
        c = self.config = config.kernel_estimation
        keras.utils.set_random_seed(seed)
        self.prior = prior
        self.kernel_size = prior.kernel_size
        self.radius = float(prior.kernel_size - 1)
        start = np.random.default_rng((seed, 11)).standard_normal((1, prior.latent_size))
        self.latent = tf.Variable(self.radius * start / np.linalg.norm(start), dtype=tf.float32, name="kernel_latent")
        self.discriminator, self.d_optimizer = discriminator_with_optimizer(c, channels, seed)
        self.z_optimizer = keras.optimizers.Adam(c.latent_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
        self.z_optimizer.build([self.latent])
        self.train_step = tf.function(self._train_step)

    @property
    def d_crop_size(self) -> int:
        """The side of a downscaled generator crop ((64 - 11) // 2 + 1 = 27): the discriminator's crops."""
        return (self.config.generator_crop_size - self.kernel_size) // 2 + 1

    def raw_kernel(self) -> tf.Tensor:
        """The K x K float32 kernel the latent decodes to (taps sum to about 1, not exactly)."""
        return self.prior.decode(self.latent)[0]

    def _train_step(self, g_input, d_real, fake_noise):
        """One latent step, then one D step (`networks.discriminator_step`) on (1, s, s, C) crops
        in [-1, 1]. Returns the VALUE_NAMES vector (g_loss: the latent's adversarial loss;
        kernel_sum: the raw kernel's) and the raw kernel of the latent step (before its update)."""
        with tf.GradientTape() as tape:
            raw = self.raw_kernel()
            kernel = raw / tf.reduce_sum(raw)
            generated = downscale_with_generator_kernel(g_input, kernel)
            adversarial = tf.reduce_mean(tf.abs(tf.cast(self.discriminator(generated, training=True), tf.float32) - 1))
            loss = adversarial
            if self.config.prior_range_weight > 0:
                excess = tf.nn.relu(widest_variance(kernel) - self.prior.variance_range[1])
                loss = loss + self.config.prior_range_weight * excess
        grads = tape.gradient(loss, [self.latent])
        self.z_optimizer.apply_gradients(zip(grads, [self.latent]))
        self.latent.assign(self.radius * self.latent / (tf.norm(self.latent) + 1e-9))
        fake = downscale_with_generator_kernel(g_input, tf.stop_gradient(kernel)) + fake_noise
        d_loss = discriminator_step(self.discriminator, self.d_optimizer, fake, d_real)
        return tf.stack([adversarial, d_loss, tf.reduce_sum(raw)]), raw


def widest_variance(kernel: tf.Tensor) -> tf.Tensor:
    """The larger covariance eigenvalue (px^2) of a (K, K) float32 kernel whose taps sum to 1,
    differentiably (the closed form for a 2x2 symmetric matrix); `kernels.kernel_variances`'
    second value, in TensorFlow."""
    size = tf.shape(kernel)[0]
    y, x = tf.meshgrid(tf.range(size, dtype=tf.float32), tf.range(size, dtype=tf.float32), indexing="ij")
    dy, dx = y - tf.reduce_sum(kernel * y), x - tf.reduce_sum(kernel * x)
    a, b, c = (tf.reduce_sum(kernel * dy * dy), tf.reduce_sum(kernel * dy * dx), tf.reduce_sum(kernel * dx * dx))
    return (a + c) / 2 + tf.sqrt(tf.square((a - c) / 2) + tf.square(b) + 1e-12)


def off_prior_excess(raw_kernel: np.ndarray, variance_high: float) -> float:
    """How far the (K, K) raw kernel a latent decoded to lies outside the kernels its prior was
    trained on: the larger of |sum of taps - 1| / RAW_SUM_TOLERANCE and the kernel's widest
    covariance eigenvalue (px^2, `kernels.kernel_variances`) / `variance_high` (the prior's
    largest training variance, `KernelPrior.variance_range[1]`). Above 1 the latent has left the
    prior's kernels: the flow extrapolates there, and such estimates are streaks along the
    image's strong edges (long axis past the training range) or shrunk blobs
    (experiments/reports/blind-sr.md, "The third image, bridge"). Dimensionless, >= 0; for a raw kernel with a positive sum."""
    return max(abs(float(raw_kernel.sum()) - 1) / RAW_SUM_TOLERANCE, kernel_variances(raw_kernel)[1] / variance_high)


def finish(raw_kernel: np.ndarray, scale: int = 2) -> np.ndarray:
    """The FKP kernel in the convention of `postprocess.post_process`: (K, K) raw kernel with a
    positive sum -> float64 kernel normalised to sum 1 with its centre of mass moved (cubic
    spline, `kernels.recenter_kernel`) to the x`scale` block centre, zero-padded by the shift
    (13x13 to 15x15 for 11x11). No taps are zeroed: a decoded kernel is already a smooth blob,
    whose tails KernelGAN's cleaning would cut."""
    return recenter_kernel(raw_kernel / raw_kernel.sum(), scale)
