"""An LPIPS-like perceptual distance (Zhang et al., CVPR 2018, "vgg" variant, v0.1) in TensorFlow.

LPIPS compares unit-normalised VGG16 features at five layers through learned non-negative 1x1
heads. The heads (1,472 weights) come from the `lpips` package (BSD-2-Clause), converted to a
.npz as docs/zsrgan.md shows; the backbone is Keras' VGG16 (Oxford/Caffe weights, fed as Keras
expects), not the torchvision VGG16 the heads were trained on, so scores track LPIPS but are
not equal to it: call them "LPIPS-like".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
from keras import ops

from zssr_tf.errors import ZSSRError
from zssr_tf.gan.perceptual import vgg_input
from zssr_tf.gan.vgg import LPIPS_README, load_vgg16, lpips_heads_path

TAPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")  # relu1_2 ... relu5_3
HEAD_SIZES = (64, 128, 256, 512, 512)


def load_heads(path: str | Path) -> list[np.ndarray]:
    """The five LPIPS-VGG linear heads from a .npz with float arrays `lin0` ... `lin4` of
    64, 128, 256, 512, 512 non-negative weights (any shape with that many values, e.g. the
    (1, C, 1, 1) of the PyTorch file), as five float32 (C,) arrays. Never unpickles. Raises
    ZSSRError naming the fix for a missing file, one that is not a .npz (a pickle, lpips' own
    vgg.pth, a .npy), arrays of Python objects, or missing, mis-sized, negative or NaN heads."""
    source, path = path, lpips_heads_path(path)
    fix = f"convert lpips' vgg.pth to a .npz of float arrays lin0..lin4 as {LPIPS_README} shows"
    with path.open("rb") as f:
        pickled = f.read(1) == b"\x80"  # protocol 2+ pickles start with PROTO; numpy calls any non-.npy/.npz one
    names = [f"lin{i}" for i in range(len(TAPS))]
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ZSSRError(f"{source} is a single .npy array, not a .npz with arrays lin0..lin4: {fix}")
        with loaded as data:
            missing = [name for name in names if name not in data.files]
            if missing and any(name.endswith("data.pkl") for name in data.files):
                raise ZSSRError(f"{source} is a PyTorch checkpoint (such as lpips' vgg.pth), not a .npz: {fix}")
            if missing:
                held = ", ".join(data.files[:6]) + (" ..." if len(data.files) > 6 else "")
                raise ZSSRError(f"{source} has no array(s) {', '.join(missing)} (it holds {held or 'nothing'}): {fix}")
            heads = [np.asarray(data[name], np.float32).reshape(-1) for name in names]
    except ValueError as err:
        if "pickle" not in str(err):  # e.g. a float cast of strings
            raise ZSSRError(f"{source} does not hold float arrays lin0..lin4 ({err}): {fix}") from None
        if "Object arrays" in str(err) or pickled:
            raise ZSSRError(f"{source} holds Python objects (pickled), not the float arrays lin0..lin4, and pickles "
                            f"are not loaded (they can run code): {fix}, each head as tensor.numpy()") from None
        raise ZSSRError(f"{source} is not a .npz file: {fix}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ZSSRError(f"{source} cannot be read as a .npz ({err}): {fix}") from None
    sizes = tuple(h.size for h in heads)
    if sizes != HEAD_SIZES:
        raise ZSSRError(f"{source}: LPIPS-VGG heads lin0..lin4 have {', '.join(map(str, HEAD_SIZES))} weights, "
                        f"these {', '.join(map(str, sizes))}: {fix}")
    if any((h < 0).any() or not np.isfinite(h).all() for h in heads):
        raise ZSSRError(f"{source}: LPIPS-VGG heads are finite and non-negative, these are not: {fix}")
    return heads


class LpipsLike:
    """`distance(a, b)`: LPIPS-like distance of two images (H, W, C) float in [0, 1], RGB or
    gray; 0 for identical images, larger is more different (LPIPS-VGG's scale, roughly 0..1).

    `vgg_weights`: VGG16 weights as `vgg.load_vgg16` takes them ("imagenet" from Keras' cache,
    or a path holding all 13 conv layers; messages name loss.lpips_vgg_weights); `heads`: the
    .npz of `load_heads`. Raises ZSSRError for either file as those functions do."""

    def __init__(self, vgg_weights: str, heads: str | Path):
        self.heads = [ops.convert_to_tensor(h) for h in load_heads(heads)]
        vgg = load_vgg16(vgg_weights, TAPS[-1], setting="loss.lpips_vgg_weights")
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
