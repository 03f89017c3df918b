"""A trained ZSSR: one network per scale step with the kernels it was trained for, saved in a
run's `model/` folder and re-applied to an image without training.

Files in the folder, per scale step i: `step_<i>.keras` (the network), and where the step had a
numeric kernel `step_<i>_kernel.npy` (the kernel as aligned for training,
`kernels.align_kernel`) and `step_<i>_kernel_symmetries.npy` (the dihedral transforms the step's
father augmentation and self-ensemble used).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zssr_tf.augment import kernel_symmetries
from zssr_tf.config import Config
from zssr_tf.ensemble import geometric_self_ensemble, tiled_predict_for
from zssr_tf.errors import ZSSRError
from zssr_tf.inference.plan import plan_scale_steps
from zssr_tf.inputs import check_image


def final_test(predict, config: Config, lr_image: np.ndarray, relative_sf, output_shape, kernel,
               back_projection_iters: int, kernel_symmetries=(0,)) -> np.ndarray:
    """A scale step's output (H, W, C) float32: `predict` ([N, H, W, C] -> same) run in tiles under
    the self-ensemble with back-projection, with `config`'s test and scale settings (the kernel's
    alignment; without output_flip, the ensemble uses the `kernel_symmetries` transforms)."""
    return geometric_self_ensemble(tiled_predict_for(predict, config), lr_image, relative_sf, output_shape, kernel,
                                   config.scale.upscale_method, back_projection_iters, config.test.output_flip,
                                   config.scale.kernel_alignment, kernel_symmetries)


def step_files(folder: str | Path, index: int) -> dict[str, Path]:
    """The files of scale step `index` in `folder`: "network", "kernel", "symmetries" (see the
    module docstring). Their stems (`step_0`, `step_0_kernel`, ...) name them as MLflow model
    artifacts too."""
    folder = Path(folder)
    return {"network": folder / f"step_{index}.keras", "kernel": folder / f"step_{index}_kernel.npy",
            "symmetries": folder / f"step_{index}_kernel_symmetries.npy"}


def save_step(folder: str | Path, index: int, network: keras.Model, kernel: np.ndarray | None = None,
              symmetries: Sequence[int] | None = None) -> None:
    """Write scale step `index`'s network and, when it had a numeric `kernel` (aligned), the
    kernel and its `symmetries` (when known) to `folder` (created when missing)."""
    files = step_files(folder, index)
    files["network"].parent.mkdir(parents=True, exist_ok=True)
    network.save(files["network"])
    if kernel is not None:
        np.save(files["kernel"], kernel)
    if kernel is not None and symmetries is not None:
        # The transforms training used: found on the kernel before re-centring, which may have
        # made the saved kernel less symmetric (see `TrainedZSSR.super_resolve`).
        np.save(files["symmetries"], np.asarray(symmetries))


@dataclass
class TrainedZSSR:
    """The networks of a ZSSR training, one per scale step of `config`. `kernels[i]`: step i's
    numeric kernel as aligned for training, or None for scale.downscale_method. `symmetries[i]`:
    the dihedral transforms training found that kernel symmetric under (`trainer.ScaleStep`), or
    None (runs saved before they were, or no numeric kernel)."""

    config: Config
    networks: list[keras.Model]
    kernels: list[np.ndarray | None]
    symmetries: list[tuple[int, ...] | None]

    def save(self, folder: str | Path) -> None:
        """Write every step's files to `folder` (see the module docstring)."""
        for index, (network, kernel, symmetries) in enumerate(zip(self.networks, self.kernels, self.symmetries)):
            save_step(folder, index, network, kernel, symmetries)

    @classmethod
    def load(cls, folder: str | Path, config: Config, artifacts: dict[str, str] | None = None) -> TrainedZSSR:
        """The trained ZSSR whose files are in `folder`, or at the paths `artifacts` names by file
        stem (MLflow model artifact keys `step_<i>`, `step_<i>_kernel`, `step_<i>_kernel_symmetries`).
        A missing kernel is None (scale.downscale_method), missing symmetries None. Raises
        ZSSRError naming the scale steps that have no network."""
        artifacts = artifacts or {}
        steps = range(len(config.scale.scale_factors))
        paths = [{name: Path(artifacts.get(path.stem, path)) for name, path in step_files(folder, i).items()}
                 for i in steps]
        missing = [i for i in steps if not paths[i]["network"].is_file()]
        if missing:
            raise ZSSRError(f"no trained network for scale step(s) {missing} in {folder} (the run ended before "
                            "them); re-apply a finished run")
        return cls(config,
                   [keras.saving.load_model(p["network"], compile=False) for p in paths],
                   [np.load(p["kernel"]) if p["kernel"].is_file() else None for p in paths],
                   [tuple(int(k) for k in np.load(p["symmetries"])) if p["symmetries"].is_file() else None
                    for p in paths])

    def super_resolve(self, image: np.ndarray) -> np.ndarray:
        """Super-resolve `image` (h, w, C) float32 in [0, 1] without training: each step's
        `final_test` as in training (tiled self-ensemble and back-projection with the config's
        settings, base changes). A step whose `symmetries` are None recomputes them from the
        aligned kernel, which re-centring may have made less symmetric. Returns the last step's
        output (H, W, C) float32 in [0, 1]. Raises ZSSRError for an image `inputs.check_image`
        refuses, a channel count other than the networks', or an output with NaN/inf pixels."""
        config = self.config
        channels = self.networks[0].input_shape[-1]
        image = check_image(image, config.scale.scale_factors)
        if image.shape[2] != channels:
            raise ZSSRError(f"the image has shape {image.shape} but the networks were trained on {channels}-channel "
                            f"images (h, w, {channels}); convert the image first")
        outputs: list[np.ndarray] = []
        for planned, network, kernel, step_symmetries in zip(plan_scale_steps(image.shape[:2], config),
                                                             self.networks, self.kernels, self.symmetries):
            if kernel is None:
                kernel, step_symmetries = config.scale.downscale_method, (0,)
            elif step_symmetries is None:
                step_symmetries = kernel_symmetries(kernel) if config.scale.kernel_symmetry else (0,)
            predict = lambda batch, net=network: keras.ops.convert_to_numpy(net(np.asarray(batch, np.float32),
                                                                                   training=False))
            base_input = image if planned.base_index is None else outputs[planned.base_index]
            outputs.append(final_test(predict, config, base_input, planned.relative_sf, planned.output_shape, kernel,
                                      planned.back_projection_iters, tuple(step_symmetries)))
        if not np.isfinite(outputs[-1]).all():
            raise ZSSRError("the networks gave NaN or infinite pixels, so there is no result to save: they come from "
                            "a training that diverged; train again with a lower train.learning_rate")
        return outputs[-1]
