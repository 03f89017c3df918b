"""Carry-over along a chain of images (`sequence.carry_over`): what a finished image hands the
next one, and the config that next image then runs with.

After image k finishes, its last scale step's network (saved by the tracked run as
`<out>/mlflow_runs/<run id>/model/step_<i>.keras`, `inference.trained.step_files`) is written as float32 weights to
`<out>/carry/<stem>.npz`, and `<out>/carry/<stem>.json` records them, the kernel files image k
ran with (its estimated ones in a blind run, `<out>/<stem>_kernel_x2.npy`; the files it was given
otherwise) and `reference_error`: the reconstruction error of that network with those kernels on
image k. Image k+1 then starts from those weights (`model.init_weights`) for
`sequence.carry_over_max_iters` iterations of a cosine decay; with "weights_and_kernel", a blind
run also takes the kernels (`kernel_estimation.kernel: given`) unless `kernel_fit` on image k+1 is
more than `sequence.reestimate_ratio` times the reference, a sign that the degradation changed,
and then estimates its own. The files stay, so a rerun that skips finished images picks the
chain up where it stopped.

The reconstruction error here is one cheap forward pass: the image downscaled by the first scale
step with the first kernel (no noise), upscaled back, through the network, MSE against the image
(values in [0, 1]). Both sides of the ratio are measured so, on the whole image.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from zssr_tf.checks import blind_step_factors
from zssr_tf.config import Config, build_config
from zssr_tf.sweeps.engines import PointResult, PointTask


@dataclass(frozen=True)
class Carry:
    """What one finished image hands the next: `source` its name (file stem), `weights` the .npz
    of its last network, `kernels` the kernel files it ran with, one per scale step (() when it
    used scale.downscale_method), `reference_error` that network's reconstruction error (MSE) with
    those kernels on the image itself."""

    source: str
    weights: str
    kernels: tuple[str, ...]
    reference_error: float


def carry_dir(out_dir: str | Path) -> Path:
    """Where a set's carried networks and their records live: `<out>/carry`."""
    return Path(out_dir) / "carry"


def load_carry(out_dir: str | Path, stem: str) -> Carry | None:
    """The carry image `stem` left in `out_dir`, or None when its files are missing."""
    record = carry_dir(out_dir) / f"{stem}.json"
    if not record.is_file():
        return None
    values = json.loads(record.read_text())
    carry = Carry(**{**values, "kernels": tuple(values["kernels"])})
    return carry if Path(carry.weights).is_file() and all(Path(k).is_file() for k in carry.kernels) else None


def export_carry(task: PointTask, result: PointResult, image: np.ndarray) -> Carry:
    """The carry of the finished run `result` of `task` on `image` (h, w, C) float32 in [0, 1]:
    its last network saved as float32 weights, its kernel files and its reference error, all
    written to `<task.out_dir>/carry/` (see the module docstring). Raises OSError or ValueError
    when the run's saved network is missing or unreadable."""
    import keras

    from zssr_tf.inference.trained import step_files
    from zssr_tf.warm_start import save_weights

    config, stem = task.config, Path(task.image).stem
    last = len(config.scale.scale_factors) - 1
    model_dir = Path(task.out_dir) / "mlflow_runs" / str(result.run_id) / "model"  # where tracking saves a run's steps
    network = keras.saving.load_model(step_files(model_dir, last)["network"], compile=False)
    folder = carry_dir(task.out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_weights(network, folder / f"{stem}.npz", dtype=np.float32)
    kernels = tuple(task.kernels) or run_kernel_files(config, task.out_dir, stem)
    carry = Carry(stem, str(weights), kernels, reconstruction_error(network, config, image, kernels))
    (folder / f"{stem}.json").write_text(json.dumps(asdict(carry), indent=1) + "\n")
    return carry


def run_kernel_files(config: Config, out_dir: str | Path, stem: str) -> tuple[str, ...]:
    """The kernel files a blind run (kernel=estimate) of image `stem` wrote to `out_dir`, one per
    scale step (`pipeline.write_estimated_kernels`'s `<stem>_kernel_x<factor>.npy`); () for a run
    whose kernel was not estimated."""
    if config.kernel_estimation.kernel != "estimate":
        return ()
    return tuple(str(Path(out_dir) / f"{stem}_kernel_x{factor}.npy") for factor in blind_step_factors(config))


def kernel_fit(carry: Carry, config: Config, image: np.ndarray) -> float:
    """How much worse the carried network and kernels reconstruct `image` (h, w, C) float32 in
    [0, 1] than the image they come from: the ratio of the reconstruction errors (1: as well)."""
    import keras

    from zssr_tf.model import build_zssr_net
    from zssr_tf.warm_start import read_init_weights, set_init_weights

    m = config.model
    network = build_zssr_net(m.depth, m.width, image.shape[2], m.init_variance)
    set_init_weights(network, read_init_weights(dataclasses.replace(m, init_weights=carry.weights), image.shape[2]))
    error = reconstruction_error(network, config, image, carry.kernels)
    keras.backend.clear_session()
    return error / max(carry.reference_error, 1e-12)


def carried_config(config: Config, carry: Carry, take_kernels: bool) -> Config:
    """`config` for an image that starts from `carry`: its weights as `model.init_weights`,
    `sequence.carry_over_max_iters` iterations of a cosine decay and, with `take_kernels`, the
    carried kernels given (`kernel_estimation.kernel: given`) instead of estimated. Validated as
    any loaded config (`build_config`)."""
    values = config.to_dict()
    values["model"]["init_weights"] = carry.weights
    values["train"].update(max_iters=config.sequence.carry_over_max_iters, learning_rate_schedule="cosine")
    if take_kernels:
        values["kernel_estimation"]["kernel"] = "given"
    return build_config(values)


def reconstruction_error(network, config: Config, image: np.ndarray, kernel_files: Sequence[str]) -> float:
    """MSE between `image` (h, w, C) float32 in [0, 1] and `network`'s output on it downscaled by
    the first scale step (with the first of `kernel_files`, else scale.downscale_method; no
    noise) and upscaled back, as the network's input is made in training: the whole-image
    `callbacks.ReconstructionTest` error."""
    import keras

    from zssr_tf.augment import father_to_son, interpolate_son
    from zssr_tf.callbacks import ReconstructionTest
    from zssr_tf.ensemble import tiled_predict_for
    from zssr_tf.kernels import align_kernel, load_kernel, upscale_offset

    scale = config.scale
    sf = scale.scale_factors[0]
    kernel = (align_kernel(load_kernel(kernel_files[0]), sf, scale.kernel_alignment) if kernel_files
              else scale.downscale_method)
    lr_son = father_to_son(image, sf, kernel, 0.0, np.random.default_rng(0))
    interpolated = interpolate_son(lr_son, sf, image.shape[:2], scale.upscale_method,
                                   upscale_offset(sf, scale.kernel_alignment))
    predict = tiled_predict_for(
        lambda batch: keras.ops.convert_to_numpy(network(np.asarray(batch, np.float32), training=False)), config)
    return ReconstructionTest(predict, image, interpolated).error()
