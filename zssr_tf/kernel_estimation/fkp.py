"""Kernel estimation in a kernel prior's latent space (KernelGAN-FKP: Liang, Zhang, Gool &
Timofte, CVPR 2021).

KernelGAN's game with the generator replaced: the kernel is `prior.decode(z)` for one latent z
of the trained flow (`prior.py`), normalised to sum 1, and only z is trained. The LR crop is
correlated with that kernel and subsampled x2; KernelGAN's patch discriminator (`networks.py`,
the same settings) judges it against real crops, with KernelGAN's losses. As in FKP, z stays on
a sphere (radius K - 1, FKP's choice; a standard normal K^2-vector has a norm near K) and no
kernel constraint is needed: every latent decodes to a plausible anisotropic Gaussian.
Differences from the FKP code: its discriminator is a WGAN-GP one trained 3 times per
iteration on batches of 64 crops; here each iteration is KernelGAN's one G and one D step on
one crop, so the two methods differ only in how the kernel is parameterised.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from zssr_tf.config import Config
from zssr_tf.kernel_estimation import constraints as C
from zssr_tf.kernel_estimation.crops import sample_crop_positions
from zssr_tf.kernel_estimation.networks import build_patch_discriminator, downscale_with_generator_kernel
from zssr_tf.kernel_estimation.prior import KernelPrior
from zssr_tf.kernels import recenter_kernel


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
        self.discriminator = build_patch_discriminator(c.patch_discriminator_layers, c.patch_discriminator_width,
                                                       c.patch_discriminator_kernel_size, channels, c.init_gain, seed,
                                                       c.estimation_precision)
        self.z_optimizer = keras.optimizers.Adam(c.latent_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
        self.d_optimizer = keras.optimizers.Adam(c.estimation_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
        self.z_optimizer.build([self.latent])
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.mask = tf.constant(C.boundary_mask(self.kernel_size))
        self.centre = C.kernel_centre(self.kernel_size, 2)
        self.train_step = tf.function(self._train_step)

    @property
    def d_crop_size(self) -> int:
        """The side of the downscaled generator crop: the discriminator's crops."""
        return (self.config.generator_crop_size - self.kernel_size) // 2 + 1

    def raw_kernel(self) -> tf.Tensor:
        """The K x K float32 kernel the latent decodes to (taps sum to about 1, not exactly)."""
        return self.prior.decode(self.latent)[0]

    def _train_step(self, g_input, d_real, fake_noise):
        """One latent step then one D step. Returns the estimator's VALUE_NAMES vector (the kernel
        constraints computed for the record only: their weights are 0 here) and the raw kernel."""
        D = self.discriminator
        with tf.GradientTape() as tape:
            raw = self.raw_kernel()
            kernel = raw / tf.reduce_sum(raw)
            generated = downscale_with_generator_kernel(g_input, kernel)
            adversarial = tf.reduce_mean(tf.abs(tf.cast(D(generated, training=True), tf.float32) - 1))
        grads = tape.gradient(adversarial, [self.latent])
        self.z_optimizer.apply_gradients(zip(grads, [self.latent]))
        self.latent.assign(self.radius * self.latent / (tf.norm(self.latent) + 1e-9))

        fake = downscale_with_generator_kernel(g_input, tf.stop_gradient(kernel)) + fake_noise
        with tf.GradientTape() as tape:
            d_fake = tf.cast(D(fake, training=True), tf.float32)
            d_true = tf.cast(D(d_real, training=True), tf.float32)
            d_loss = 0.5 * (tf.reduce_mean(tf.abs(d_fake)) + tf.reduce_mean(tf.abs(d_true - 1)))
        grads = tape.gradient(d_loss, D.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, D.trainable_variables))
        terms = [C.bicubic_loss(generated, g_input, self.config.bicubic_target), C.sum_to_one_loss(raw),
                 C.boundaries_loss(kernel, self.mask), C.centralization_loss(kernel, self.centre),
                 C.sparsity_loss(kernel)]
        values = tf.stack([adversarial, adversarial, *terms, d_loss, tf.reduce_sum(raw)])
        return values, raw


def estimate_once(image: np.ndarray, config: Config, prior: KernelPrior, seed: int, callback, history,
                  value_names) -> np.ndarray:
    """One FKP estimation on the prepared `image` ((h, w, C) float32 in [-1, 1]) with `seed`,
    filling `history` (an estimator.KernelEstimationHistory, per-iteration `value_names` from the
train step plus "bicubic_weight" and "learning_rate") as KernelGAN's loop does; returns
    the raw K x K float64 kernel (the caller checks and post-processes it, `finish`).
    `callback(iteration, values)` as in estimator.estimate_kernel; raises ValueError when a value
    turns NaN/inf (the caller turns it into a KernelEstimationError)."""
    c = config.kernel_estimation
    rng = np.random.default_rng((seed, 10))
    gan = KernelPriorGAN(config, prior, image.shape[2], seed)
    g_size, d_size = c.generator_crop_size, gan.d_crop_size
    g_corners, d_corners = sample_crop_positions((image + 1) / 2, g_size, d_size, c.estimation_iters, rng)
    noise_std = 2 * c.d_noise_std  # the real crops' noise is 1/255 in [0, 1] units
    start = time.perf_counter()
    for iteration in range(c.estimation_iters):
        (gy, gx), (dy, dx) = g_corners[iteration], d_corners[iteration]
        g_input = image[None, gy:gy + g_size, gx:gx + g_size]
        real_view = image[dy:dy + d_size, dx:dx + d_size]
        d_real = (real_view + rng.normal(0, noise_std, real_view.shape).astype(np.float32))[None]
        fake_noise = rng.normal(0, c.d_noise_std, (1, d_size, d_size, image.shape[2])).astype(np.float32)
        values, kernel = gan.train_step(g_input, d_real, fake_noise)
        row = dict(zip(value_names, values.numpy().tolist()))
        row.update(bicubic_weight=0.0, learning_rate=c.latent_learning_rate)
        for name, value in row.items():
            history.values[name].append(value)
        if callback is not None:
            callback(iteration, row)
        if not math.isfinite(row["g_loss"] + row["d_loss"] + row["kernel_sum"]):
            raise ValueError(f"kernel estimation diverged at iteration {iteration} (a loss or the kernel is NaN/inf)")
    history.seconds = time.perf_counter() - start
    history.iterations = c.estimation_iters
    return kernel.numpy().astype(np.float64)


def finish(raw_kernel: np.ndarray, scale: int = 2) -> np.ndarray:
    """The FKP kernel in the convention of `postprocess.post_process`: normalised to sum 1 and its
    centre of mass moved to the x`scale` block centre. No taps are zeroed: a decoded kernel is
    already a smooth Gaussian-like blob, whose tails the cleaning would cut. (K, K) -> (K + 2p)^2."""
    return recenter_kernel(raw_kernel / raw_kernel.sum(), scale)
