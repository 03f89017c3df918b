"""VGG16 feature extractors (Simonyan & Zisserman 2015) with Keras' layer names, and loading their
ImageNet weights from a local file only: a path, or the copy already in Keras' own cache.

The network is built here rather than with `keras.applications.VGG16` because that builder
has no dtype argument (it follows the global policy) and always makes all 13 convolutions;
the perceptual loss needs only the first 5 (up to relu3_1). Layer names are Keras' own, so
Keras' weight files load by name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import keras

from zssr_tf.errors import ZSSRError

# (block, convolutions, filters) of VGG16's feature part, as in keras.applications.vgg16.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
# Keras' ImageNet weights without the classifier (ported from Oxford VGG's Caffe release, CC BY 4.0).
NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"


def build_vgg16(last_layer: str = "block3_conv1", dtype_policy: str = "float32") -> keras.Model:
    """VGG16's convolutional part from the input up to `last_layer` (a Keras layer name such as
    "block3_conv1" = relu3_1, Keras fusing the ReLU into the conv), random weights. Input
    (N, H, W, 3) as `keras.applications.vgg16.preprocess_input` makes it (BGR, Caffe means
    subtracted, 0..255 scale); output that layer's features. Raises ValueError for an unknown name."""
    names = [f"block{b}_conv{c}" for b, n, _ in VGG16_BLOCKS for c in range(1, n + 1)]
    if last_layer not in names:
        raise ValueError(f"{last_layer!r} is not a VGG16 conv layer; one of {names}")
    inputs = keras.Input(shape=(None, None, 3), name="bgr_caffe")
    x = inputs
    for block, convs, filters in VGG16_BLOCKS:
        if block > 1:
            x = keras.layers.MaxPooling2D(2, strides=2, dtype=dtype_policy, name=f"block{block - 1}_pool")(x)
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", dtype=dtype_policy, name=name)(x)
            if name == last_layer:
                return keras.Model(inputs, x, name=f"vgg16_to_{last_layer}")
    raise AssertionError("unreachable: last_layer was checked above")


def keras_cache_weights_path() -> Path:
    """Where `keras.applications.VGG16(weights="imagenet")` keeps its no-top weights file:
    `$KERAS_HOME/models/`, else `~/.keras/models/` (`/tmp/.keras/models/` when the home is
    not writable). Mirrors keras.src.backend.config, whose accessor is private."""
    if "KERAS_HOME" in os.environ:
        home = Path(os.environ["KERAS_HOME"])
    else:
        base = Path(os.path.expanduser("~"))
        home = (base if os.access(base, os.W_OK) else Path("/tmp")) / ".keras"
    return home / "models" / NOTOP_FILE


def missing_weights_message(what: str) -> str:
    """The one message for VGG16 weights that are not available, naming both ways to give them."""
    return (f"{what} needs VGG16 ImageNet weights and none are on this machine. Either put Keras' file "
            f"{NOTOP_FILE} (md5 {NOTOP_MD5}) in Keras' cache at {keras_cache_weights_path()} (on a connected "
            f"machine `keras.applications.VGG16(include_top=False)` downloads it there), or give its path "
            f"(or a truncated .weights.h5 made by zssr_tf.gan.vgg.save_truncated_weights) as "
            f"loss.perceptual_weights=PATH. Nothing is downloaded at run time")


def resolve_weights(source: str, what: str = "the perceptual loss") -> Path:
    """The weights file for `source`: "imagenet" -> the file in Keras' cache (checked against
    Keras' md5 so a partial download is caught), else `source` as a path. Raises ZSSRError
    naming both ways when the file is not there."""
    if source == "imagenet":
        path = keras_cache_weights_path()
        if not path.is_file():
            raise ZSSRError(missing_weights_message(what))
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != NOTOP_MD5:
            raise ZSSRError(f"{path} has md5 {digest}, not Keras' {NOTOP_MD5}: a partial or different file; "
                            f"replace it, or give another file as loss.perceptual_weights=PATH")
        return path
    path = Path(source).expanduser()
    if not path.is_file():
        raise ZSSRError(f"VGG16 weights file {source!r} not found. " + missing_weights_message(what))
    return path


def load_vgg16(source: str, last_layer: str = "block3_conv1", dtype_policy: str = "float32",
               what: str = "the perceptual loss") -> keras.Model:
    """A frozen `build_vgg16(last_layer)` with weights from `source`: "imagenet" (Keras' cache,
    never downloaded), a legacy Keras HDF5 file (`*_notop.h5`, a full model saved as .h5; loaded
    by layer name, so any file holding the needed layers works), or a Keras 3 `.weights.h5` of
    exactly this truncated network (see `save_truncated_weights`). Raises ZSSRError for a
    missing file or one without the needed layers."""
    path = resolve_weights(source, what)
    model = build_vgg16(last_layer, dtype_policy)
    try:
        if path.name.endswith(".weights.h5"):
            model.load_weights(path)
        elif path.suffix in (".h5", ".hdf5"):
            _check_layer_names(path, [layer.name for layer in model.layers if layer.weights])
            model.load_weights(path, by_name=True)
        else:
            raise ZSSRError(f"VGG16 weights file {path} must end in .h5, .hdf5 or .weights.h5")
    except (ValueError, OSError, KeyError) as err:
        raise ZSSRError(f"cannot load VGG16 weights up to {last_layer} from {path}: {err}") from None
    model.trainable = False
    return model


def save_truncated_weights(source: str, destination: str | Path, last_layer: str = "block3_conv1") -> Path:
    """Save VGG16 up to `last_layer` with the weights of `source` (as in `load_vgg16`) to
    `destination` (must end in .weights.h5): 2.2 MB for relu3_1 instead of the 58.9 MB file."""
    destination = Path(destination)
    if not destination.name.endswith(".weights.h5"):
        raise ZSSRError(f"{destination}: Keras 3 weight files must end in .weights.h5")
    load_vgg16(source, last_layer).save_weights(destination)
    return destination


def _check_layer_names(path: Path, needed: list[str]) -> None:
    """Loading by name silently skips absent layers: refuse a file that lacks any of `needed`."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("layer_names", [])]
    missing = [n for n in needed if n not in names]
    if missing:
        raise ZSSRError(f"{path} is not a Keras VGG16 weights file: it has no layer(s) {missing}")
