"""One image, start to end: the scale-step loop, training with `model.fit`, the final test."""

from __future__ import annotations

import gc
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import keras
import numpy as np

from zssr_tf import backend
from zssr_tf.augment import FatherSampler, father_to_son, interpolate_son, kernel_symmetries
from zssr_tf.callbacks import (CosineLearningRate, GroundTruthTest, IterationLogs, LearningRatePolicy,
                               NonFiniteCheck, ProgressLogger, ReconstructionTest, ScaleStepCallback,
                               StepLearningRate, StopAtMinLearningRate, reconstruction_windows)
from zssr_tf.config import AugmentConfig, Config, describe_schedule, format_scale
from zssr_tf.data import PairMaker, training_dataset, with_loss_maps
from zssr_tf.ensemble import ensemble_transforms, tiled_predict_for
from zssr_tf.errors import ZSSRError, ZSSRWarning
from zssr_tf.gan.build import build_zsrgan
from zssr_tf.inference.plan import plan_scale_steps
from zssr_tf.inference.trained import TrainedZSSR, final_test
from zssr_tf.inputs import check_training_inputs, setting_warnings
from zssr_tf.kernels import align_kernel, is_isotropic, upscale_offset
from zssr_tf.metrics import evaluate
from zssr_tf.model import build_zssr_net
from zssr_tf.pacing import FIT_HEADROOM, Deadline, PaceToDeadline, cosine_stop_phase
from zssr_tf.precision import resolve_precision
from zssr_tf.resize import imresize
from zssr_tf.warm_start import describe_init_weights, read_init_weights, set_init_weights


@dataclass(frozen=True)
class ScaleStep:
    """One scale step: `scale_factor` is relative to the original input, `relative_sf` to
    `input_image` (they differ after a base change). `kernel`: a method name or the numeric
    kernel aligned by `kernels.align_kernel`. `gt` is the ground truth resized to `output_shape`
    (H, W) when one was given; then `interpolated` is `input_image` upscaled to that size on the
    final test's grid (scale.kernel_alignment), what the ground-truth test runs the network on, and
    `bicubic_scores` its `metrics.evaluate` scores against `gt`. `kernel_symmetries`: the dihedral
    transforms a numeric kernel is symmetric under (when scale.kernel_symmetry is on; (0,)
    otherwise), `kernel_isotropic` whether it is also the same under any rotation."""

    index: int
    scale_factor: tuple[float, float]
    relative_sf: tuple[float, float]
    input_image: np.ndarray
    output_shape: tuple[int, int]
    kernel: str | np.ndarray
    back_projection_iters: int
    iteration_offset: int
    gt: np.ndarray | None = None
    kernel_symmetries: tuple[int, ...] = (0,)
    kernel_isotropic: bool = False
    interpolated: np.ndarray | None = None
    bicubic_scores: dict[str, float] | None = None


@dataclass
class StepResult:
    """What one scale step produced: the output (H, W, C) float32 in [0, 1], its timings, and
    `network`, a copy of the network as this step left it (for a GAN, its generator). With a
    ground truth: `gt_tests`, the ground-truth test's scores (`callbacks.GroundTruthTest`: psnr,
    ssim, true_error) by global iteration, and `scores`, the output's `metrics.evaluate` scores
    against the step's ground truth."""

    scale_factor: tuple[float, float]
    output: np.ndarray
    iterations: int
    learning_rate_drops: list[int]  # global iteration numbers
    reconstruction_errors: list[tuple[int, float]]  # (global iteration, MSE)
    train_seconds: float
    test_seconds: float
    network: keras.Model | None = None
    gt_tests: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    scores: dict[str, float] | None = None


@dataclass
class ZSSRResult:
    """The final super-resolved image, the plain bicubic upscale for comparison, every step, and
    the trained networks (`trained`: save them, or re-apply them to other images). With a ground
    truth, `metrics` holds the final scores (`metrics.evaluate`) of "zssr" (`sr`) and "bicubic"."""

    sr: np.ndarray
    bicubic: np.ndarray
    steps: list[StepResult] = field(default_factory=list)
    precision: str = "float32"
    trained: TrainedZSSR | None = None
    metrics: dict[str, dict[str, float]] | None = None

    @property
    def iterations(self) -> int:
        return sum(s.iterations for s in self.steps)

    @property
    def train_seconds(self) -> float:
        return sum(s.train_seconds for s in self.steps)

    @property
    def test_seconds(self) -> float:
        return sum(s.test_seconds for s in self.steps)


def son_jpeg(augment: AugmentConfig) -> tuple[int | None, int]:
    """The sons' JPEG compression from resolved augment settings: (IJG quality 1..100, or None for
    no JPEG step; chroma subsampling 444, 422 or 420, where an unresolved "auto" is 420)."""
    quality = augment.jpeg_quality if isinstance(augment.jpeg_quality, int) else None
    subsampling = augment.jpeg_subsampling if isinstance(augment.jpeg_subsampling, int) else 420
    return quality, subsampling


class ZSSR:
    """Zero-Shot Super-Resolution of one image.

    >>> result = ZSSR(load_config()).run(lr_image)          # lr_image: (h, w, C) float32 in [0, 1]
    >>> result.sr.shape                                      # (2h, 2w, C) with the default config

    `callbacks` are extra Keras callbacks for every step's `fit` (e.g. tracking); those derived
    from `ScaleStepCallback` also hear when steps begin and end. With a `deadline`
    (`pacing.Deadline`, a time budget's) every step is paced to end on time
    (`pacing.PaceToDeadline`): `train.max_iters` is then the planned length, a `cosine` decay's
    end moves with the measured speed, and the fit may run up to `pacing.FIT_HEADROOM` times longer.
    """

    def __init__(self, config: Config, callbacks: Sequence[keras.callbacks.Callback] = (), verbose: bool = True,
                 deadline: Deadline | None = None):
        self.config = config
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.deadline = deadline
        self.precision = resolve_precision(config.train.precision)
        self.model: keras.Model | None = None

    def run(self, image: np.ndarray, gt: np.ndarray | None = None,
            kernels: Sequence[np.ndarray] | None = None, bit_depth: int = 8) -> ZSSRResult:
        """Super-resolve `image` (h, w, C) float32 in [0, 1] through every scale step.

        `gt`: optional ground truth (H, W, C) for the final scale: every train.gt_test_every
        iterations the network is scored against it (`StepResult.gt_tests`, the progress line's
        PSNR), every step's output too (`StepResult.scores`), and the result's `metrics` hold the
        final scores, with `bit_depth` (8 or 16, the data's) as `metrics.evaluate` takes it.
        `kernels`: optional numeric downscaling kernels, one per scale step (raw; aligned here for
        scale.kernel_alignment; none under "direct", whose grid needs a numeric kernel, is an error;
        none with kernel_estimation.kernel "estimate" too: `run` does not estimate them).
        Raises ZSSRError before training for inputs `inputs.check_training_inputs` rejects or an
        augment.noise_std / jpeg_quality still "auto" (`photo.resolve_photo_settings`), and during
        training when the loss or the network's output stops being finite (`NonFiniteCheck`) or a
        step's final output has NaN/inf pixels. Warns (ZSSRWarning) for settings unlikely to train.
        """
        cfg = self.config
        scale_factors = cfg.scale.scale_factors
        if kernels is None and cfg.kernel_estimation.kernel == "estimate":
            raise ZSSRError("kernel_estimation.kernel is 'estimate' but no kernels were passed, and ZSSR.run does not "
                            "estimate them: pass the estimated kernels, one per scale step (e.g. kernels=[k] with "
                            "k, _ = kernel_estimation.estimate_kernel(image, config), or "
                            "pipeline.estimate_blind_kernels(config, image).per_step), or set kernel=given to train "
                            "with scale.downscale_method")
        unresolved = [key for key in ("noise_std", "jpeg_quality") if getattr(cfg.augment, key) == "auto"]
        if unresolved:
            raise ZSSRError(f"augment.{' and '.join(unresolved)} auto is read from the image file and ZSSR.run does "
                            "not read it: resolve it first with config, _ = photo.resolve_photo_settings(config, "
                            "image, path), or give numbers")
        image, gt, kernels = check_training_inputs(cfg, image, gt, kernels)
        for message in setting_warnings(cfg):
            warnings.warn(message, ZSSRWarning, stacklevel=2)
        alignment = cfg.scale.kernel_alignment
        keras.utils.set_random_seed(cfg.run.seed)
        self.model = None  # every run starts from fresh weights
        channels = image.shape[2]
        sources, base_scales = [image], [1.0]
        steps: list[StepResult] = []
        aligned_kernels: list[np.ndarray | None] = []
        step_symmetries: list[tuple[int, ...] | None] = []
        iteration_offset = 0
        for planned in plan_scale_steps(image.shape[:2], cfg):
            index, sf, relative_sf = planned.index, planned.scale_factor, planned.relative_sf
            symmetries, isotropic = (0,), False
            if kernels is not None:
                kernel = align_kernel(kernels[index], relative_sf, alignment)
                if cfg.scale.kernel_symmetry:
                    symmetries = kernel_symmetries(kernels[index])
                    isotropic = len(symmetries) == 8 and is_isotropic(kernels[index])
            else:
                kernel = cfg.scale.downscale_method
            base_input = image if planned.base_index is None else steps[planned.base_index].output
            step_gt = _gt_for_step(gt, sf, scale_factors[-1], planned.output_shape)
            interpolated = bicubic_scores = None
            if step_gt is not None:
                interpolated = _upscale(cfg, base_input, relative_sf, planned.output_shape)
                bicubic_scores = evaluate(np.clip(interpolated, 0, 1), step_gt, sf)
            step = ScaleStep(index, sf, relative_sf, base_input, planned.output_shape, kernel,
                             planned.back_projection_iters, iteration_offset, step_gt, symmetries, isotropic,
                             interpolated, bicubic_scores)
            if self.model is None or cfg.scale.init_net_for_each_sf:
                self.model = self._build_model(channels)
                if self.verbose:
                    print(f"[step {index + 1}/{len(scale_factors)} {format_scale(sf)}] network: "
                          f"{describe_init_weights(cfg.model.init_weights)}; learning rate: "
                          f"{describe_schedule(cfg.train)}", flush=True)
            result = self._run_step(step, sources, base_scales, bit_depth)
            steps.append(result)
            aligned_kernels.append(kernel if kernels is not None else None)
            step_symmetries.append(symmetries if kernels is not None else None)
            iteration_offset += result.iterations
            sources.append(result.output)
            base_scales.append(min(sf))
        # Under "direct" the plain upscale on the same grid (what an identity network returns).
        bicubic = np.clip(_upscale(cfg, image, scale_factors[-1], steps[-1].output.shape[:2]), 0, 1)
        trained = TrainedZSSR(cfg, [s.network for s in steps], aligned_kernels, step_symmetries)
        metrics = None
        if gt is not None:  # the last step's gt is `gt` itself: its scores are the final ones
            metrics = {"zssr": steps[-1].scores, "bicubic": evaluate(bicubic, gt, scale_factors[-1], bit_depth)}
        return ZSSRResult(sr=steps[-1].output, bicubic=bicubic, steps=steps, precision=self.precision, trained=trained,
                          metrics=metrics)

    def _build_model(self, channels: int) -> keras.Model:
        m, t, loss = self.config.model, self.config.train, self.config.loss
        model = build_zssr_net(m.depth, m.width, channels, m.init_variance, dtype_policy=self.precision,
                               input_noise_std=m.input_noise_std)
        init_weights = read_init_weights(m, channels)
        if init_weights is not None:
            set_init_weights(model, init_weights)
        optimizer = self._adam(t.learning_rate, t.adam_beta_1)
        jit_compile = backend.train_step_jit(t.jit_compile)
        if loss.gan:
            model = build_zsrgan(model, loss, channels, self.precision)
            model.compile(optimizer, self._adam(loss.discriminator_learning_rate, loss.discriminator_beta_1),
                          jit_compile=jit_compile)
        else:
            model.compile(optimizer=optimizer, loss="mean_absolute_error", jit_compile=jit_compile)
        network = getattr(model, "generator", model)  # a GAN's forward pass is its generator's
        self._predict = backend.compile_inference(lambda x: network(x, training=False), network.variables)
        return model

    def _network_copy(self) -> keras.Model:
        """The network as trained so far, in a model of its own: later scale steps may train the
        same network on. A GAN (gan.model.ZSRGAN) keeps it as `generator`; its discriminator is
        only for training."""
        network = getattr(self.model, "generator", self.model)
        copy = keras.models.clone_model(network)
        copy.set_weights(network.get_weights())
        return copy

    def _adam(self, learning_rate: float, beta_1: float) -> keras.optimizers.Optimizer:
        """Adam; under mixed precision wrapped in Keras' LossScaleOptimizer, which skips a step
        whose gradients are not finite. float16 needs its loss scaling; bfloat16 does not (it has
        float32's range), but oneDNN's bf16 convolution gradients on CPU sometimes come out NaN
        from finite inputs (measured: 7 of 1,500 steps on a 125x160 LR image with AMX), and one
        such step would poison the weights; skipped, it costs nothing."""
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
        if self.precision in ("mixed_float16", "mixed_bfloat16"):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The network's output for a [N, H, W, C] float32 batch of interpolated images."""
        return keras.ops.convert_to_numpy(self._predict(keras.ops.convert_to_tensor(batch, "float32")))

    def _run_step(self, step: ScaleStep, sources: list[np.ndarray], base_scales: list[float],
                  bit_depth: int) -> StepResult:
        cfg = self.config
        a, t = cfg.augment, cfg.train
        self.model.optimizer.learning_rate.assign(t.learning_rate)
        if getattr(self.model, "discriminator_optimizer", None) is not None:
            self.model.discriminator_optimizer.learning_rate.assign(cfg.loss.discriminator_learning_rate)
        rng = np.random.default_rng((cfg.run.seed, step.index, 1))
        offset = upscale_offset(step.relative_sf, cfg.scale.kernel_alignment)
        jpeg_quality, jpeg_subsampling = son_jpeg(a)
        lr_son = father_to_son(step.input_image, step.relative_sf, step.kernel, a.noise_std, rng,
                               jpeg_quality, jpeg_subsampling)
        interpolated_son = interpolate_son(lr_son, step.relative_sf, step.input_image.shape[:2],
                                           cfg.scale.upscale_method, offset)
        father_sources, loss_map_scale = tuple(sources), 0.0
        if cfg.loss.loss_map == "gradient":
            father_sources, loss_map_scale = with_loss_maps(father_sources)
        pairs = PairMaker(
            sources=father_sources, base_scales=tuple(base_scales),
            sampler=FatherSampler(a, step.kernel_symmetries, step.kernel_isotropic),
            scale_factor=step.relative_sf, kernel=step.kernel, noise_std=a.noise_std,
            upscale_method=cfg.scale.upscale_method, seed=cfg.run.seed, dihedral_batch=a.augment_dihedral_batch,
            loss_map_scale=loss_map_scale, upscale_offset=offset, jpeg_quality=jpeg_quality,
            jpeg_subsampling=jpeg_subsampling)
        dataset = training_dataset(pairs, channels=step.input_image.shape[2], start_index=step.iteration_offset)

        history = IterationCount()
        if t.learning_rate_schedule == "step":
            schedule = StepLearningRate(t.learning_rate_step_every, t.learning_rate_step_factor)
        elif t.learning_rate_schedule == "cosine":
            schedule = CosineLearningRate(t.max_iters)
        else:
            schedule = LearningRatePolicy(t.learning_rate_policy_check_every, t.min_iters, t.learning_rate_slope_range,
                                          t.run_test_every, t.learning_rate_change_ratio,
                                          legacy_slope_std=t.legacy_slope_std)
        label = f"[step {step.index + 1}/{len(cfg.scale.scale_factors)} {format_scale(step.scale_factor)}] "
        if isinstance(step.kernel, np.ndarray):
            fathers = pairs.sampler.dihedral_transforms
            ensemble = ensemble_transforms(step.relative_sf, cfg.test.output_flip, step.kernel_symmetries)
            broken = sorted(set(fathers).union(ensemble) - set(step.kernel_symmetries))
            if broken and cfg.scale.kernel_symmetry:
                warnings.warn(f"{label.strip()} the kernel is not symmetric under dihedral transforms {broken} that "
                              "father augmentation or the self-ensemble use, so those pairs and outputs do not match "
                              "it: use --config given_kernel (or augment_allow_rotation=false output_flip=false)",
                              ZSSRWarning, stacklevel=3)
            if self.verbose:
                print(f"{label}kernel {cfg.scale.kernel_alignment}; symmetric under dihedral transforms "
                      f"{list(step.kernel_symmetries)}{' (isotropic)' if step.kernel_isotropic else ''}: "
                      f"father transforms {list(fathers)}, self-ensemble {ensemble}", flush=True)
        # A tiled predict, and on large images a fixed set of crops: the test's cost and memory
        # do not grow with the image.
        windows = reconstruction_windows(step.input_image.shape[:2], t.reconstruction_test,
                                         t.reconstruction_test_pixels, cfg.run.seed)
        reconstruction = ReconstructionTest(tiled_predict_for(self.predict, cfg), step.input_image, interpolated_son,
                                            t.run_test_every, windows, margin=cfg.model.depth)
        gt_test = None
        if step.gt is not None:
            gt_test = GroundTruthTest(tiled_predict_for(self.predict, cfg), step.interpolated, step.gt,
                                      step.scale_factor, t.gt_test_every)
        limit, pacing = t.max_iters, []
        if self.deadline is not None:
            limit = math.ceil(FIT_HEADROOM * t.max_iters)
            pacing = [PaceToDeadline(
                self.deadline.step_end(step.index, time.perf_counter()),
                schedule if isinstance(schedule, CosineLearningRate) else None,
                cosine_stop_phase(t.learning_rate, t.min_learning_rate), min(self.deadline.min_iters, t.max_iters),
                limit, window=max(100, 2 * t.run_test_every, 2 * t.gt_test_every if gt_test else 0))]
        # Order matters: later callbacks read the logs earlier ones add (see callbacks.py).
        callbacks = [history, IterationLogs(step.iteration_offset), reconstruction,
                     NonFiniteCheck(step.iteration_offset), *([gt_test] if gt_test else []), schedule,
                     StopAtMinLearningRate(t.min_learning_rate), *pacing, *self.callbacks,
                     ProgressLogger(cfg.run.progress_every if self.verbose else 0, label, t.max_iters)]
        for callback in self.callbacks:
            if isinstance(callback, ScaleStepCallback):
                callback.on_scale_step_begin(step, self.predict)

        start = time.perf_counter()
        self.model.fit(dataset, epochs=1, steps_per_epoch=limit, callbacks=callbacks, verbose=0, shuffle=False)
        train_seconds = time.perf_counter() - start
        # A fit that stops early (stop_training) leaves Keras' epoch iterator and its suspended
        # generator in a reference cycle that holds the tf.data iterator: its AUTOTUNE worker
        # threads and prefetched pairs live on until a full collection, and destroyed at
        # interpreter exit they can hold the process up for a minute. Release them now.
        gc.collect()

        start = time.perf_counter()
        output = final_test(self.predict, cfg, step.input_image, step.relative_sf, step.output_shape, step.kernel,
                            step.back_projection_iters, step.kernel_symmetries)
        test_seconds = time.perf_counter() - start
        if not np.isfinite(output).all():
            raise ZSSRError(f"{label.strip()} the final test (self-ensemble and back-projection) gave NaN or infinite "
                            "pixels, so there is no result to save: lower train.learning_rate or check the "
                            "input image and kernel")
        offset = step.iteration_offset
        result = StepResult(
            scale_factor=step.scale_factor, output=output, iterations=history.iterations,
            learning_rate_drops=[offset + i for i in schedule.drops],
            reconstruction_errors=[(offset + i, e) for i, e in zip(reconstruction.iterations, reconstruction.errors)],
            train_seconds=train_seconds, test_seconds=test_seconds, network=self._network_copy())
        if gt_test is not None:
            result.gt_tests = [(offset + i, scores) for i, scores in zip(gt_test.iterations, gt_test.scores)]
            result.scores = evaluate(output, step.gt, step.scale_factor, bit_depth)
        if self.verbose:
            print(f"{label}done: {result.iterations} iterations in {train_seconds:.1f} s, "
                  f"final test {test_seconds:.1f} s", flush=True)
        for callback in self.callbacks:
            if isinstance(callback, ScaleStepCallback):
                callback.on_scale_step_end(step, result)
        return result


class IterationCount(keras.callbacks.Callback):
    """Counts the iterations `fit` actually ran (it may stop early)."""

    def on_train_begin(self, logs=None):
        self.iterations = 0

    def on_train_batch_end(self, batch, logs=None):
        self.iterations = batch + 1


def _upscale(config: Config, image: np.ndarray, scale_factor, output_shape) -> np.ndarray:
    """`image` upscaled by `scale_factor` to `output_shape` (H, W) with scale.upscale_method, on the
    grid of scale.kernel_alignment (the final test's), not clipped."""
    return imresize(image, scale_factor=scale_factor, output_shape=output_shape, kernel=config.scale.upscale_method,
                    offset=upscale_offset(scale_factor, config.scale.kernel_alignment))


def _gt_for_step(gt, sf, final_sf, output_shape) -> np.ndarray | None:
    """The ground truth (H, W, C), already checked against the input by `inputs.check_ground_truth`,
    at this step's scale: itself for the last scale, else resized to the step's output shape."""
    if gt is None:
        return None
    if np.allclose(sf, final_sf, atol=0.01):
        return gt
    ratio = (sf[0] / final_sf[0], sf[1] / final_sf[1])
    return imresize(gt, scale_factor=ratio, output_shape=output_shape)
