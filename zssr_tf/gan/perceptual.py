"""ZSRGAN's perceptual loss: L1 between VGG16 relu3_1 features of the output and of the father."""

from __future__ import annotations

import keras
from keras import ops

from zssr_tf.gan.vgg import load_vgg16

PERCEPTUAL_LAYER = "block3_conv1"  # relu3_1: Keras fuses the ReLU into the conv


def vgg_input(images):
    """Images (N, H, W, C) float in [0, 1], RGB or gray (C = 1, repeated to 3), as Keras' VGG16
    expects them: `keras.applications.vgg16.preprocess_input` of RGB in 0..255 (RGB -> BGR and
    the Caffe ImageNet means subtracted; no std scaling)."""
    images = ops.cast(images, "float32")
    if images.shape[-1] == 1:
        images = ops.repeat(images, 3, axis=-1)
    return keras.applications.vgg16.preprocess_input(images * 255.0)


class PerceptualLoss:
    """`loss(sr, father)`: mean absolute difference of VGG16 `block3_conv1` features (relu3_1) of
    two (N, H, W, C) float batches in [0, 1]; a float32 scalar in feature units. The network
    is frozen. ZSRGAN (Lee et al. 2021) uses torchvision's VGG16 fed un-normalised BGR; here
    Keras' (Oxford/Caffe) weights are fed as they expect, so feature scales differ from the
    reference and its weight lambda_P = 1 does not transfer exactly."""

    def __init__(self, features: keras.Model):
        self.features = features

    @classmethod
    def from_weights(cls, source: str, dtype_policy: str = "float32") -> "PerceptualLoss":
        """Built from a weights source as `vgg.load_vgg16` takes it ("imagenet" or a path)."""
        return cls(load_vgg16(source, PERCEPTUAL_LAYER, dtype_policy))

    def __call__(self, sr, father):
        target = ops.stop_gradient(ops.cast(self.features(vgg_input(father), training=False), "float32"))
        output = ops.cast(self.features(vgg_input(sr), training=False), "float32")
        return ops.mean(ops.abs(output - target))
