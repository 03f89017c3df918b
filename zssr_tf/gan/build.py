"""Assembling the ZSRGAN training model from the config's `loss` section."""

from __future__ import annotations

import keras

from zssr_tf.config import LossConfig
from zssr_tf.gan.discriminator import build_discriminator
from zssr_tf.gan.model import ZSRGAN
from zssr_tf.gan.perceptual import PerceptualLoss


def build_zsrgan(generator: keras.Model, loss: LossConfig, channels: int, dtype_policy: str = "float32") -> ZSRGAN:
    """A ZSRGAN around `generator` with the parts `loss` weighs: the discriminator when
    loss.adversarial_weight > 0, the VGG16 perceptual loss (weights from loss.perceptual_weights,
    never downloaded) when loss.perceptual_weight > 0. Raises ZSSRError, before any training,
    when the VGG16 weights are not available."""
    discriminator = (build_discriminator(channels, loss.discriminator_width, dtype_policy)
                     if loss.adversarial_weight > 0 else None)
    perceptual = (PerceptualLoss.from_weights(loss.perceptual_weights, dtype_policy)
                  if loss.perceptual_weight > 0 else None)
    return ZSRGAN(generator, discriminator, perceptual, loss.l1_weight, loss.adversarial_weight,
                  loss.perceptual_weight, name="zsrgan")
