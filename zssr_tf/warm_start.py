"""The network's initial weights (`model.init_weights`): random (`none`, the paper's init), a
warm start shipped in the package (`warm_start`: a network trained for x2 bicubic SR on the
images scikit-image ships; `warm_start_blind`: the same network trained on for sons made by
random blur kernels; see experiments/pretrain_warm_start.py), or a user's .npz file.
The config resolves "auto" to one of these (`config.resolve_init_weights`).

A weights file is a .npz with one 3x3 kernel per conv layer, named as `model.build_zssr_net`
names the layers: `conv_1` ... `conv_<depth-1>` (3, 3, C_in, width) and `residual`
(3, 3, width, channels). It is read and checked with NumPy alone, so a file that does not fit
the configured network is refused before TensorFlow starts (`checks.check_inputs`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zssr_tf.errors import ZSSRError

if TYPE_CHECKING:
    import keras

    from zssr_tf.config import ModelConfig

WARM_START = Path(__file__).resolve().parent / "weights" / "warm_start_x2.npz"
WARM_START_BLIND = Path(__file__).resolve().parent / "weights" / "warm_start_blind_x2.npz"
SHIPPED = {"warm_start": WARM_START, "warm_start_blind": WARM_START_BLIND}  # model.init_weights names of files


def layer_names(depth: int) -> list[str]:
    """The conv layers of a `depth`-layer ZSSR net in order: conv_1 ... conv_<depth-1>, residual."""
    return [f"conv_{i}" for i in range(1, depth)] + ["residual"]


def kernel_shapes(depth: int, width: int, channels: int) -> dict[str, tuple[int, int, int, int]]:
    """Layer name -> (3, 3, C_in, C_out) of each conv kernel of `model.build_zssr_net`."""
    sizes = [channels] + [width] * (depth - 1) + [channels]
    return {name: (3, 3, c_in, c_out) for name, c_in, c_out in zip(layer_names(depth), sizes, sizes[1:])}


def describe_init_weights(init_weights: str) -> str:
    """Where a network's weights start, in words, for progress lines: a resolved `init_weights`."""
    if init_weights == "none":
        return "random initial weights"
    if init_weights in SHIPPED:
        return f"the shipped {'blind ' if init_weights == 'warm_start_blind' else ''}warm start (x2)"
    return f"initial weights from {init_weights}"


def init_weights_path(init_weights: str) -> Path | None:
    """The file `model.init_weights` names: None for "none", the shipped file for "warm_start" and
    "warm_start_blind", else the value as a path (`~` expanded)."""
    if init_weights == "none":
        return None
    return SHIPPED.get(init_weights) or Path(init_weights).expanduser()


def read_init_weights(model: ModelConfig, channels: int) -> dict[str, np.ndarray] | None:
    """The kernels `model.init_weights` gives a network of `model.depth` layers and `model.width`
    filters on `channels`-channel images (1 gray, 3 RGB): layer name -> float32 (3, 3, C_in, C_out)
    as `kernel_shapes`, or None for "none" (random init). Raises ZSSRError naming the file and
    the fix when it is missing, unreadable, not a weights .npz, made for another network
    (depth, width or channels), or has NaN/inf weights. RGB weights on a gray image are
    converted (`rgb_to_gray_kernels`)."""
    path = init_weights_path(model.init_weights)
    if path is None:
        return None
    name = f"model.init_weights {model.init_weights!r}" + (f" ({path})" if path != Path(model.init_weights) else "")
    if not path.is_file():
        raise ZSSRError(f"{name}: no such file; give the path of a .npz weights file (written by "
                        "zssr_tf.warm_start.save_weights), warm_start for the shipped one, or none")
    try:
        with np.load(path) as data:
            kernels = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        detail = "not a .npz archive" if "pickle" in str(err) else str(err)  # np.load's advice does not apply
        raise ZSSRError(f"{name} cannot be read as a .npz weights file ({detail}); give a file written by "
                        "zssr_tf.warm_start.save_weights, warm_start for the shipped one, or none") from None
    wanted = kernel_shapes(model.depth, model.width, channels)
    rgb = kernel_shapes(model.depth, model.width, 3)
    if channels == 1 and {key: kernel.shape for key, kernel in kernels.items()} == rgb:
        kernels = rgb_to_gray_kernels(kernels)
    found = {key: tuple(kernel.shape) for key, kernel in kernels.items()}
    if found != wanted:
        raise ZSSRError(f"{name} does not fit this run's network: {_mismatch(found, wanted)}")
    kernels = {key: kernels[key].astype(np.float32) for key in wanted}
    if not all(np.isfinite(kernel).all() for kernel in kernels.values()):
        raise ZSSRError(f"{name} has NaN or infinite weights (from a training that diverged): give another file, "
                        "or init_weights=none")
    return kernels


def rgb_to_gray_kernels(kernels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """RGB network kernels made to run on gray images: a gray image is an RGB one with three
    equal channels, so the first layer's kernel is summed over its input channels (the same
    features, exactly) and the last layer's averaged over its output channels (the mean of
    three nearly equal residuals). (3, 3, 3, W) -> (3, 3, 1, W), (3, 3, W, 3) -> (3, 3, W, 1)."""
    gray = dict(kernels)
    gray["conv_1"] = kernels["conv_1"].sum(axis=2, keepdims=True)
    gray["residual"] = kernels["residual"].mean(axis=3, keepdims=True)
    return gray


def set_init_weights(network: keras.Model, kernels: dict[str, np.ndarray]) -> None:
    """Give each conv layer of `network` (from `model.build_zssr_net`) its kernel from `kernels`
    (as `read_init_weights` returns them)."""
    for name, kernel in kernels.items():
        network.get_layer(name).set_weights([kernel])


def save_weights(network: keras.Model, path: str | Path, dtype=np.float16) -> Path:
    """Write the conv kernels of `network` (from `model.build_zssr_net`) to the .npz `path` that
    `model.init_weights=PATH` reads, stored as `dtype` (float16, the default, halves the file and
    keeps about 3 significant digits; weights are always loaded back as float32). Returns the path."""
    depth = sum(1 for layer in network.layers if layer.name.startswith("conv_")) + 1
    kernels = {name: np.asarray(network.get_layer(name).get_weights()[0], dtype) for name in layer_names(depth)}
    with open(path, "wb") as file:  # np.savez(path) would append .npz to another suffix
        np.savez(file, **kernels)
    return Path(path)


def _mismatch(found: dict[str, tuple], wanted: dict[str, tuple]) -> str:
    """What differs between a file's kernel shapes and the network's, and the fix, in one sentence."""
    have, need = _architecture(found), _architecture(wanted)
    if have is None:
        return (f"it holds arrays {sorted(found)} of shapes {sorted(set(found.values()))}, not the 3x3 conv kernels "
                "conv_1 ... residual of a ZSSR network; give a file written by zssr_tf.warm_start.save_weights, "
                "or init_weights=none")
    keys = ("depth", "width", "channels")
    differences = [f"{key} {h} (this run: {n})" for key, h, n in zip(keys, have, need) if h != n]
    fixes = [f"model.{key}={h}" for key, h, n in zip(keys[:2], have, need) if h != n]
    fixes += [_image_kind(have[2])] if have[2] != need[2] else []
    return (f"it was made for a network of {', '.join(differences)}; run with {' and '.join(fixes)}, or use "
            "init_weights=none (random init) or a file made for this network")


def _architecture(shapes: dict[str, tuple]) -> tuple[int, int, int] | None:
    """(depth, width, channels) of a complete set of ZSSR kernel shapes, else None."""
    if "conv_1" not in shapes or len(shapes["conv_1"]) != 4:
        return None
    architecture = (len(shapes), shapes["conv_1"][3], shapes["conv_1"][2])
    return architecture if kernel_shapes(*architecture) == shapes else None


def _image_kind(channels: int) -> str:
    return {1: "a gray image", 3: "an RGB image"}.get(channels, f"a {channels}-channel image")
