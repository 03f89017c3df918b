"""An LPIPS-like perceptual distance (Zhang et al., CVPR 2018, "vgg" variant, v0.1) in TensorFlow.

LPIPS compares unit-normalised VGG16 features at five layers through learned non-negative 1x1
heads. The heads (1,472 weights) come from the `lpips` package (BSD-2-Clause), converted to a
.npz as README.md shows; the backbone is Keras' VGG16 (Oxford/Caffe weights, fed as Keras
expects), not the torchvision VGG16 the heads were trained on, so scores track LPIPS but are
not equal to it: call them "LPIPS-like".
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from zssr_tf.errors import ZSSRError
from zssr_tf.gan.perceptual import vgg_input
from zssr_tf.gan.vgg import load_vgg16

TAPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")  # relu1_2 ... relu5_3
HEAD_SIZES = (64, 128, 256, 512, 512)


def load_heads(path: str | Path) -> list[np.ndarray]:
    """The five LPIPS-VGG linear heads from a .npz with float arrays `lin0` ... `lin4` of
    64, 128, 256, 512, 512 non-negative weights (any shape with that many values, e.g. the
    (1, C, 1, 1) of the PyTorch file). Raises ZSSRError for a missing or malformed file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZSSRError(f"LPIPS heads file {str(path)!r} not found; convert lpips' vgg.pth as README.md shows "
                        "and give it as loss.lpips_heads=PATH")
    try:
        with np.load(path) as data:
            heads = [np.asarray(data[f"lin{i}"], np.float32).reshape(-1) for i in range(len(TAPS))]
    except (KeyError, ValueError, OSError) as err:
        raise ZSSRError(f"{path} is not an LPIPS heads .npz with arrays lin0..lin4: {err}") from None
    sizes = tuple(h.size for h in heads)
    if sizes != HEAD_SIZES or any((h < 0).any() for h in heads):
        raise ZSSRError(f"{path}: LPIPS-VGG heads must be non-negative with {HEAD_SIZES} weights, got {sizes}")
    return heads


class LpipsLike:
    """`distance(a, b)`: LPIPS-like distance of two images (H, W, C) float in [0, 1], RGB or
    gray; 0 for identical images, larger is more different (LPIPS-VGG's scale, roughly 0..1).

    `vgg_weights`: VGG16 weights as `vgg.load_vgg16` takes them ("imagenet" from Keras' cache,
    or a path holding all 13 conv layers); `heads`: the .npz of `load_heads`."""

    def __init__(self, vgg_weights: str, heads: str | Path):
        self.heads = [ops.convert_to_tensor(h) for h in load_heads(heads)]
        vgg = load_vgg16(vgg_weights, TAPS[-1], what="the LPIPS-like metric")
        self.features = keras.Model(vgg.input, [vgg.get_layer(name).output for name in TAPS])

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """The distance between `a` and `b` (same (H, W, C) shape, float in [0, 1])."""
        if a.shape != b.shape:
            raise ZSSRError(f"LPIPS-like distance needs images of one shape, got {a.shape} and {b.shape}")
        features_a = self.features(vgg_input(np.asarray(a, np.float32)[None]), training=False)
        features_b = self.features(vgg_input(np.asarray(b, np.float32)[None]), training=False)
        total = 0.0
        for fa, fb, head in zip(features_a, features_b, self.heads):
            diff = ops.square(_unit_normalise(fa) - _unit_normalise(fb))
            total += float(ops.mean(ops.sum(diff * head, axis=-1)))
        return total


def _unit_normalise(features):
    # LPIPS' normalize_tensor: divide by the channel L2 norm plus 1e-10.
    return features / (ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True)) + 1e-10)
