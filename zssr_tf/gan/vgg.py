"""VGG16 feature extractors (Simonyan & Zisserman 2015) with Keras' layer names, and loading their
ImageNet weights from a local file only: a path, or the copy already in Keras' own cache.

The network is built here rather than with `keras.applications.VGG16` because that builder
has no dtype argument (it follows the global policy) and always makes all 13 convolutions;
the perceptual loss needs only the first 5 (up to relu3_1). Layer names are Keras' own, so
Keras' weight files load by name.

The module imports Keras only inside the functions that build networks: `check_weights_file`
(h5py only) and `lpips_heads_path` let `checks.check_inputs` refuse a wrong file before
TensorFlow loads.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py

from zssr_tf.errors import ZSSRError

if TYPE_CHECKING:
    import keras

# (block, convolutions, filters) of VGG16's feature part, as in keras.applications.vgg16.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
# Keras' ImageNet weights without the classifier (ported from Oxford VGG's Caffe release, CC BY 4.0).
NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"


@dataclass(frozen=True)
class WeightsSetting:
    """A setting that names VGG16 weights: what needs them, the last layer it uses, whether a
    truncated file (`save_truncated_weights`) is worth offering for it, and how to run without."""

    what: str
    last_layer: str
    truncated: bool
    without: str


WEIGHT_SETTINGS = {
    "loss.perceptual_weights": WeightsSetting(
        "the perceptual loss", "block3_conv1", True,
        "or run ZSRGAN without the perceptual term: loss.perceptual_weight=0 needs no VGG16 weights"),
    # A truncated file up to block5_conv3 would be the whole 58.9 MB file again: not offered.
    "loss.lpips_vgg_weights": WeightsSetting(
        "the LPIPS-like metric", "block5_conv3", False,
        "or run without the LPIPS-like metric: leave loss.lpips_vgg_weights and loss.lpips_heads unset (null)"),
}


def conv_shapes(last_layer: str = "block3_conv1") -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """VGG16's convolutions from the input up to `last_layer`, in order: Keras layer name ->
    (kernel shape (3, 3, C_in, C_out), bias shape (C_out,)). Raises ValueError for an unknown name."""
    shapes, channels = {}, 3
    for block, convs, filters in VGG16_BLOCKS:
        for conv in range(1, convs + 1):
            shapes[f"block{block}_conv{conv}"] = ((3, 3, channels, filters), (filters,))
            channels = filters
    if last_layer not in shapes:
        raise ValueError(f"{last_layer!r} is not a VGG16 conv layer; one of {list(shapes)}")
    names = list(shapes)
    return {name: shapes[name] for name in names[:names.index(last_layer) + 1]}


def build_vgg16(last_layer: str = "block3_conv1", dtype_policy: str = "float32") -> keras.Model:
    """VGG16's convolutional part from the input up to `last_layer` (a Keras layer name such as
    "block3_conv1" = relu3_1, Keras fusing the ReLU into the conv), random weights. Input
    (N, H, W, 3) as `keras.applications.vgg16.preprocess_input` makes it (BGR, Caffe means
    subtracted, 0..255 scale); output that layer's features. Raises ValueError for an unknown name."""
    import keras

    conv_shapes(last_layer)  # checks the name
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


def weights_fix(setting: str = "loss.perceptual_weights") -> str:
    """The fix every weights-file message ends with: which files `setting` (a key of
    WEIGHT_SETTINGS) takes, the `imagenet` alternative, and how to run without the weights."""
    use = WEIGHT_SETTINGS[setting]
    files = (f"Keras' {NOTOP_FILE} or a truncated .weights.h5 made by zssr_tf.gan.vgg.save_truncated_weights"
             if use.truncated else f"Keras' {NOTOP_FILE} (all 13 conv layers, up to {use.last_layer})")
    return f"give {files} as {setting}=PATH, or {setting}=imagenet for the copy in Keras' cache; {use.without}"


def missing_weights_message(setting: str = "loss.perceptual_weights") -> str:
    """The message for `setting` = imagenet when Keras' cache has no VGG16 file: both ways to
    give the weights (the cache, a path) and how to run without them."""
    use = WEIGHT_SETTINGS[setting]
    truncated = (" (or a truncated .weights.h5 made by zssr_tf.gan.vgg.save_truncated_weights)"
                 if use.truncated else "")
    return (f"{use.what} needs VGG16 ImageNet weights and none are on this machine: put Keras' file "
            f"{NOTOP_FILE} (md5 {NOTOP_MD5}) in Keras' cache at {keras_cache_weights_path()} (on a connected "
            f"machine `keras.applications.VGG16(include_top=False)` downloads it there), or give its path"
            f"{truncated} as {setting}=PATH; {use.without}. Nothing is downloaded at run time")


def resolve_weights(source: str, setting: str = "loss.perceptual_weights") -> Path:
    """The weights file for `source`, the value of `setting` (a key of WEIGHT_SETTINGS, which
    the messages name): "imagenet" -> the file in Keras' cache (checked against Keras' md5 so a
    partial download is caught), else `source` as a path. Raises ZSSRError naming the fix when
    the file is not there, is a directory, or is not Keras' file."""
    if source == "imagenet":
        path = keras_cache_weights_path()
        if not path.is_file():
            raise ZSSRError(missing_weights_message(setting))
        stat = path.stat()
        digest = _md5(str(path), stat.st_size, stat.st_mtime_ns)
        if digest != NOTOP_MD5:
            raise ZSSRError(f"{path} has md5 {digest}, not Keras' {NOTOP_MD5}: a partial or different file; "
                            f"replace it, or give another file as {setting}=PATH")
        return path
    path = Path(source).expanduser()
    if path.is_dir():
        inside = path / NOTOP_FILE
        fix = f"give {inside} as {setting}=PATH" if inside.is_file() else weights_fix(setting)
        raise ZSSRError(f"{source!r} is a directory, not a VGG16 weights file: {fix}")
    if not path.is_file():
        raise ZSSRError(f"VGG16 weights file {source!r} not found: {weights_fix(setting)}")
    return path


# Where the docs show how to convert the LPIPS heads.
LPIPS_README = "docs/zsrgan.md (LPIPS-like metric)"


def lpips_heads_path(source: str | Path) -> Path:
    """The LPIPS heads file `source` (loss.lpips_heads) as a path that exists; its content is
    `gan.lpips.load_heads`' to check. Kept here, beside the VGG16 file checks, so that
    `checks.check_inputs` can call it before TensorFlow loads. Raises ZSSRError naming the fix
    when the file is missing or a directory."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    problem = "is a directory, not a .npz" if path.is_dir() else "not found"
    raise ZSSRError(f"LPIPS heads file {str(source)!r} {problem}: convert lpips' vgg.pth to a .npz as {LPIPS_README} "
                    f"shows and give it as loss.lpips_heads=PATH; {WEIGHT_SETTINGS['loss.lpips_vgg_weights'].without}")


def check_weights_file(source: str, setting: str = "loss.perceptual_weights", last_layer: str | None = None) -> Path:
    """The weights file for `source` (`resolve_weights`) once its content is known to fit VGG16
    up to `last_layer` (default: the one `setting` needs): an HDF5 file in one of Keras' two
    layouts, holding every convolution up to that layer with VGG16's kernel and bias shapes.
    Reads only the file's structure (h5py, no TensorFlow). Raises ZSSRError naming the problem
    (not HDF5, not Keras weights, a Keras 3 file not named .weights.h5 or the reverse, missing
    or mismatched layers) and the fix."""
    path = resolve_weights(source, setting)
    last_layer = last_layer or WEIGHT_SETTINGS[setting].last_layer
    fix = weights_fix(setting)
    if not h5py.is_hdf5(path):
        raise ZSSRError(f"{path} is not an HDF5 file (Keras weights are .h5 / .weights.h5): {fix}")
    keras3_name = path.name.endswith(".weights.h5")
    try:
        with h5py.File(path, "r") as f:
            if isinstance(f.get("layers"), h5py.Group):  # Keras 3: layers/<class>[_i]/vars/<index>
                if not keras3_name:
                    raise ZSSRError(f"{path} holds Keras 3 weights, which Keras loads only from a name ending in "
                                    f".weights.h5: rename it (e.g. {path.stem}.weights.h5)")
                found = _keras3_layers(f, last_layer)
            else:
                group = f["model_weights"] if "model_weights" in f else f
                if "layer_names" not in group.attrs:
                    raise ZSSRError(f"{path} is an HDF5 file but not Keras weights (it has no layers): {fix}")
                if keras3_name:
                    raise ZSSRError(f"{path} holds legacy Keras .h5 weights but is named .weights.h5, which Keras "
                                    f"reads as the Keras 3 format: rename it to end in .h5 (e.g. "
                                    f"{path.name[:-len('.weights.h5')]}.h5)")
                found = _legacy_layers(group)
    except (OSError, KeyError) as err:
        raise ZSSRError(f"cannot read {path} as Keras weights ({err}): {fix}") from None
    problem = _structure_problem(found, conv_shapes(last_layer))
    if problem:
        raise ZSSRError(f"{path} is not VGG16 weights up to {last_layer}: {problem}; {fix}")
    return path


def load_vgg16(source: str, last_layer: str = "block3_conv1", dtype_policy: str = "float32",
               setting: str = "loss.perceptual_weights") -> keras.Model:
    """A frozen `build_vgg16(last_layer)` with weights from `source`, the value of `setting` (a
    key of WEIGHT_SETTINGS; messages name it and its fix): "imagenet" (Keras' cache, never
    downloaded), a legacy Keras HDF5 file (`*_notop.h5`, a full model saved as .h5; loaded by
    layer name, so any file holding the needed layers works), or a Keras 3 `.weights.h5` of
    VGG16 up to `last_layer` or beyond (see `save_truncated_weights`). Raises ZSSRError, before
    Keras reads the weights, for a file `check_weights_file` refuses."""
    path = check_weights_file(source, setting, last_layer)
    model = build_vgg16(last_layer, dtype_policy)
    try:
        if path.name.endswith(".weights.h5"):
            model.load_weights(path)
        else:
            model.load_weights(path, by_name=True)
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


@functools.lru_cache(maxsize=4)
def _md5(path: str, size: int, mtime_ns: int) -> str:
    """The file's md5, read once per (path, size, modification time): a sweep checks it per point."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


Layers = dict[str, list[tuple[int, ...]]]


def _keras3_layers(f: h5py.File, last_layer: str) -> Layers:
    """Layer name -> variable shapes of a Keras 3 .weights.h5 as Keras reads it into
    `build_vgg16`: by position, the i-th Conv2D at layers/conv2d_i ("conv2d" for the first),
    its variables at vars/0, vars/1. A position absent from the file is left out; a group
    whose recorded layer name (vars' "name", written by recent Keras) is not VGG16's keeps
    that name, so it shows up as both missing and foreign."""
    found: Layers = {}
    for i, name in enumerate(conv_shapes(last_layer)):
        group = f.get(f"layers/conv2d{f'_{i}' if i else ''}/vars")
        if not isinstance(group, h5py.Group):
            continue
        recorded = group.attrs.get("name", name)
        recorded = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
        found[recorded] = [group[key].shape for key in sorted(group, key=lambda k: int(k) if k.isdigit() else -1)
                           if isinstance(group[key], h5py.Dataset)]
    if not found:  # not VGG16 at all: name what the file holds instead
        for key, layer in f["layers"].items():
            vars_group = layer.get("vars") if isinstance(layer, h5py.Group) else None
            name = vars_group.attrs.get("name", key) if isinstance(vars_group, h5py.Group) else key
            found[name.decode() if isinstance(name, bytes) else str(name)] = []
    return found


def _legacy_layers(group: h5py.Group) -> Layers:
    """Layer name -> variable shapes (in weight_names' order) of a Keras 2 HDF5 weights group."""
    found: Layers = {}
    for raw in group.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        layer = group.get(name)
        names = layer.attrs.get("weight_names", []) if isinstance(layer, h5py.Group) else []
        found[name] = [layer[w.decode() if isinstance(w, bytes) else str(w)].shape for w in names]
    return found


def _structure_problem(found: Layers, wanted: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> str:
    """What keeps a file's layers (`found`) from filling VGG16's convolutions (`wanted`), as one
    clause: a layer of VGG16's name with other shapes, else the layers it lacks; "" when none."""
    for name, shapes in wanted.items():
        if name in found and tuple(tuple(s) for s in found[name]) != shapes:
            got = " and ".join(str(tuple(s)) for s in found[name]) or "no variables"
            return f"its {name} has {got}, not VGG16's kernel {shapes[0]} and bias {shapes[1]}"
    missing = [name for name in wanted if name not in found]
    if len(missing) == len(wanted):
        held = [name for name in found if name not in wanted]
        listed = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        return f"it has none of VGG16's layers ({list(wanted)[0]} ...)" + (f", only {listed}" if held else "")
    if missing and missing == list(wanted)[-len(missing):]:
        present = list(wanted)[len(wanted) - len(missing) - 1]
        span = (f"{missing[0]} is missing" if len(missing) == 1
                else f"the {len(missing)} layers {missing[0]} to {missing[-1]} are missing")
        return f"it holds VGG16 only up to {present}, {span}"
    return f"it lacks layer(s) {', '.join(missing)}" if missing else ""
