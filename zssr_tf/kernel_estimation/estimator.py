"""Estimate an image's own x2 downscaling kernel with KernelGAN (Bell-Kligler, Shocher & Irani,
"Blind Super-Resolution Kernel Estimation using an Internal-GAN", NeurIPS 2019).

A linear generator learns to downscale 64x64 crops of the image so that a patch discriminator
cannot tell its 26x26 outputs from real 26x26 crops of the same image: the generator's
equivalent kernel is then the one that made the image from its (unknown) HR version. With
`kernel_estimation.method: fkp` the kernel is a kernel prior's decoding of one trained latent
instead (`fkp.py`); the runs, their averaging and the checks here serve both methods.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
from keras import ops

from zssr_tf import backend
from zssr_tf.config import AUTO_BY_METHOD, Config
from zssr_tf.errors import KernelEstimationError
from zssr_tf.kernel_estimation import constraints as C
from zssr_tf.kernel_estimation import fkp
from zssr_tf.kernel_estimation.crops import training_inputs
from zssr_tf.kernel_estimation.inputs import check_prior_fits, prepare_image
from zssr_tf.kernel_estimation.networks import (BACKENDS, build_linear_generator, discriminator_step,
                                                discriminator_with_optimizer, downscale_with_generator_kernel,
                                                extract_kernel, generator_kernel_size)
from zssr_tf.kernel_estimation.postprocess import average_kernels, post_process, scale_kernel_variance
from zssr_tf.kernel_estimation.prior import load_prior
from zssr_tf.kernel_estimation.schedule import CONSTRAINTS_SWITCH_BELOW, ConstraintSchedule
from zssr_tf.kernels import kernel_distance, kernel_variances

# Per-iteration values, in the order the training step returns them (KernelGAN's, then FKP's).
VALUE_NAMES = ("g_loss", "g_adversarial", "bicubic", "sum_to_one", "boundaries", "centralization", "sparsity",
               "d_loss", "kernel_sum")
# The raw kernel's sum is held near 1 by the sum-to-one loss (near 2-3 while the channel-summed
# bicubic target dominates); outside this range the estimate has collapsed or diverged.
RAW_SUM_RANGE = (0.25, 4.0)
COLLAPSE_FIX = ("try another run.seed, more estimation_runs (a collapsed run among several is left out of the mean), "
                "or the bicubic kernel (kernel=given)")

IterationCallback = Callable[[int, dict], None]

# Why a run stopped (RunRecord.stopped), in words for warnings and the console summary.
STOP_REASONS = {"end": "all estimation_iters", "kernel_still": "kernel stopped moving",
                "collapsed_early": "collapsed early, left out", "diverged": "diverged, left out",
                "collapsed": "collapsed, left out"}


class KernelEstimationWarning(UserWarning):
    """One of several estimation runs collapsed; the kernel is the mean of the others."""


class BicubicPhaseWarning(UserWarning):
    """An estimation never left its bicubic phase, or ended before its kernel constraints switched
    on: its kernel is still tied to the bicubic target."""


@dataclass(frozen=True)
class RunRecord:
    """One estimation run: its `seed`, how many `iterations` it ran and why it `stopped` (a key
    of STOP_REASONS; every run but a kept one's "end" or "kernel_still" is left out of the mean)."""

    seed: int
    iterations: int
    stopped: str


class _RunFailed(KernelEstimationError):
    """A run stopped without a kernel before its end: why (`stopped`, a key of STOP_REASONS)."""

    def __init__(self, message: str, stopped: str):
        super().__init__(message)
        self.stopped = stopped


@dataclass
class KernelEstimationHistory:
    """Per-iteration values of one estimation and what happened when.

    `values[name]` lists one float per iteration for every name in VALUE_NAMES plus
    "bicubic_weight" and "learning_rate" (the values used in that iteration); for method fkp,
    fkp.VALUE_NAMES plus "learning_rate" (the discriminator's) and "latent_learning_rate".
    """

    values: dict[str, list[float]] = field(default_factory=dict)
    similar_to_bicubic_at: int | None = None
    constraints_on_at: int | None = None
    raw_kernel: np.ndarray | None = None
    seconds: float = 0.0
    iterations: int = 0
    runs_averaged: int = 1
    runs: list[RunRecord] = field(default_factory=list)
    runs_agreed: bool = False  # runs_agree_tolerance stopped the estimation before estimation_runs

    def describe_runs(self) -> str:
        """Each run's iterations and why it stopped, e.g. "1750 (kernel stopped moving), 400
        (collapsed early, left out)"; "" when no run was recorded."""
        return ", ".join(f"{r.iterations} ({STOP_REASONS[r.stopped]})" for r in self.runs)

    @property
    def ms_per_iteration(self) -> float:
        """Mean wall time of one iteration (one G and one D step) in milliseconds; 0 before any."""
        return 1000 * self.seconds / max(self.iterations, 1)


class KernelGAN:
    """The generator, discriminator, their optimisers and one compiled training step."""

    def __init__(self, config: Config, channels: int, seed: int):
        c = self.config = config.kernel_estimation
        backend.check_supported("kernel estimation", BACKENDS)
        keras.utils.set_random_seed(seed)
        self.generator = build_linear_generator(c.generator_structure, c.generator_width, c.init_gain, seed,
                                                c.estimation_precision)
        self.discriminator, self.d_optimizer = discriminator_with_optimizer(c, channels, seed)
        self.kernel_size = generator_kernel_size(c.generator_structure)
        self.g_optimizer = keras.optimizers.Adam(c.estimation_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.mask = ops.convert_to_tensor(C.boundary_mask(self.kernel_size))
        self.centre = C.kernel_centre(self.kernel_size, 2)
        # XLA-compiled: through TensorFlow's own oneDNN kernels, on Intel CPUs with AMX, this step's
        # filter gradients left G untrained (the kernel sum stayed at 0 and the run collapsed).
        self.train_step = backend.compile_step(
            self._train_step, [*self.generator.variables, *self.discriminator.variables, *self.g_optimizer.variables,
                               *self.d_optimizer.variables], jit_compile=True)

    @property
    def d_crop_size(self) -> int:
        """The generator's output side for a generator_crop_size input: the discriminator's crops."""
        return (self.config.generator_crop_size - self.kernel_size + 1 + 1) // 2

    def set_learning_rate(self, rate: float) -> None:
        """Set both networks' Adam learning rate to `rate` (the schedule's drops)."""
        self.g_optimizer.learning_rate.assign(rate)
        self.d_optimizer.learning_rate.assign(rate)

    def _train_step(self, g_input, d_real, fake_noise, bicubic_weight, centralization_weight, sparsity_weight):
        """One G step then one D step (the paper code's order). Returns the VALUE_NAMES vector
        and the kernel of the G step (before its update). G's output is computed through its
        equivalent kernel (`downscale_with_generator_kernel`): the same function of G's weights
        as running its layers, far cheaper."""
        c = self.config
        G, D = self.generator, self.discriminator

        def generator_loss():
            kernel = extract_kernel(G)
            generated = downscale_with_generator_kernel(g_input, kernel)
            # D runs in training mode here too (its batch statistics and spectral-norm vectors move).
            adversarial = ops.mean(ops.abs(ops.cast(D(generated, training=True), "float32") - 1))
            terms = [C.bicubic_loss(generated, g_input, c.bicubic_target), C.sum_to_one_loss(kernel),
                     C.boundaries_loss(kernel, self.mask), C.centralization_loss(kernel, self.centre),
                     C.sparsity_loss(kernel)]
            weights = [bicubic_weight, c.sum_to_one_weight, c.boundaries_weight, centralization_weight,
                       sparsity_weight]
            return adversarial + sum(w * t for w, t in zip(weights, terms)), (adversarial, terms, kernel)

        (g_loss, (adversarial, terms, kernel)), grads = backend.value_and_grad(
            generator_loss, G.trainable_variables, D.variables)
        self.g_optimizer.apply(grads, G.trainable_variables)

        fake = downscale_with_generator_kernel(g_input, ops.stop_gradient(extract_kernel(G))) + fake_noise
        d_loss = discriminator_step(D, self.d_optimizer, fake, d_real)
        values = ops.stack([g_loss, adversarial, *terms, d_loss, ops.sum(kernel)])
        return values, kernel


def estimate_kernel(lr_image: np.ndarray, config: Config,
                    callback: IterationCallback | None = None) -> tuple[np.ndarray, KernelEstimationHistory]:
    """Estimate the x2 downscaling kernel of `lr_image` with KernelGAN (or, with
    `kernel_estimation.method: fkp`, in the latent space of the kernel prior `prior_weights`),
    averaged over `kernel_estimation.estimation_runs` independent estimations.

    `lr_image`: (h, w), (h, w, 1) or (h, w, 3) float in [0, 1]; after `estimation_shave` it
    needs at least `generator_crop_size` (64) pixels per side. `config.kernel_estimation` holds
    every setting, `config.run.seed` the seed: run r (from 0) uses seed `run.seed + r` for its
    crops, noise and weights, so every run is reproducible. One estimate is noisy, and its shape
    varies from seed to seed; the mean of several (each centred on a common grid, then
    re-centred, `postprocess.average_kernels`) is closer to the true kernel.
    KernelGAN stops early where more iterations would change nothing: a run whose raw kernel sum
    has not reached RAW_SUM_RANGE[0] by iteration `collapse_check_iters` is stopped as collapsed;
    a run stops once its kernel moved less than `kernel_stop_tolerance` (kernels.kernel_distance)
    over `kernel_stop_every` iterations after the kernel constraints switched on
    (`KernelStillCheck`); the runs stop once 2 or more agree within `runs_agree_tolerance`
    (`runs_agree`). Each run's iterations and why it stopped are in `history.runs`.
    `callback(iteration, values)` is called after every iteration with that iteration's
    VALUE_NAMES, "bicubic_weight" and "learning_rate" floats (method fkp: the values its
    history holds, KernelEstimationHistory) (e.g. for tracking and progress);
    iterations count on across runs (run r's first is r * estimation_iters).

    Returns (kernel, history): the post-processed float64 correlation kernel (one run: about
    15x15 to 19x19 for KernelGAN, 13x13 to 15x15 for FKP; the mean of several is cut back to
    the rings that hold its mass; sum ~1, centre of mass at the x2 block centre, i.e. the
    block-centre convention of MATLAB's imresize; narrowed by `estimate_variance_scale` when
    it is under 1, `postprocess.scale_kernel_variance`) and a KernelEstimationHistory: values of the
    runs that gave a kernel (concatenated; milestones and raw kernel of the first of them,
    `runs_averaged` of them), seconds and iterations of all runs, a RunRecord per run made
    (`runs`) and whether the runs agreed before `estimation_runs` (`runs_agreed`).
    Raises ZSSRError for a too-small image, an unusable prior file (`prior.load_prior`) or a
    generator crop too small for the prior's kernels (the checks of `check_estimation_inputs`), and
    KernelEstimationError when the estimate collapses (NaN, raw sum far from 1, no positive taps,
    or a kernel that never grew, stopped at `collapse_check_iters`) in every run; a collapsed run among several is left out of the mean with a
    KernelEstimationWarning, and so is an FKP run whose kernel left the prior's kernels
    (`fkp.off_prior_excess` > 1; when all did, the closest is kept); warns
    (crops.FlatImageWarning) for a flat image and (BicubicPhaseWarning) for a run whose bicubic
    phase never ended or that ended before its kernel constraints switched on.
    """
    c = config.kernel_estimation
    image = prepare_image(lr_image, c.estimation_shave, c.generator_crop_size)
    prior = load_prior(c.prior_weights) if c.method == "fkp" else None
    if prior is not None:
        check_prior_fits(prior.kernel_size, c)
    kernels, histories = [], []
    ran = 0  # iterations of every run, kept or not
    start = time.perf_counter()

    def counted(offset: int) -> IterationCallback:
        def report(iteration: int, values: dict) -> None:
            nonlocal ran
            ran += 1
            if callback is not None:
                callback(offset + iteration, values)
        return report

    records, agreed = [], False
    for run in range(c.estimation_runs):
        seed, before = config.run.seed + run, ran
        try:
            if prior is None:
                kernel, history = _estimate_once(image, config, seed, counted(run * c.estimation_iters))
            else:
                kernel, history = _estimate_once_fkp(image, config, seed, counted(run * c.estimation_iters), prior)
        except KernelEstimationError as err:
            records.append(RunRecord(seed, ran - before, getattr(err, "stopped", "collapsed")))
            if c.estimation_runs == 1:
                raise
            if run == c.estimation_runs - 1 and not kernels:
                raise KernelEstimationError(
                    f"all {c.estimation_runs} kernel estimation runs failed; the last: {err}") from None
            # One collapsed run of several: the others still make an estimate.
            warnings.warn(f"kernel estimation run {run + 1} of {c.estimation_runs} (seed {seed}) "
                          f"failed and is left out of the average (it stopped after {ran - before} iterations): {err}",
                          KernelEstimationWarning, stacklevel=2)
            continue
        records += history.runs
        kernels.append(kernel)
        histories.append(history)
        if prior is None and run < c.estimation_runs - 1 and runs_agree(kernels, c.runs_agree_tolerance):
            agreed = True
            break
    if prior is not None:
        kernels, histories = _within_prior(kernels, histories, prior.variance_range[1])
    first = histories[0]
    merged = KernelEstimationHistory(
        values={name: [v for h in histories for v in h.values[name]] for name in first.values},
        similar_to_bicubic_at=first.similar_to_bicubic_at, constraints_on_at=first.constraints_on_at,
        raw_kernel=first.raw_kernel, seconds=time.perf_counter() - start, iterations=ran,
        runs_averaged=len(kernels), runs=records, runs_agreed=agreed)
    kernel = kernels[0] if len(kernels) == 1 else average_kernels(kernels)
    if c.estimate_variance_scale != 1:
        kernel = scale_kernel_variance(kernel, c.estimate_variance_scale)
    return kernel, merged


def runs_agree(kernels: list[np.ndarray], tolerance: float) -> bool:
    """Whether at least 2 `kernels` (post-processed estimates of one kernel, each summing to ~1)
    all lie within `tolerance` (kernels.kernel_distance) of their mean (`average_kernels`): more
    runs would barely move the mean. Always False for `tolerance` 0."""
    if tolerance <= 0 or len(kernels) < 2:
        return False
    mean = average_kernels(kernels)
    return max(kernel_distance(k, mean) for k in kernels) < tolerance


def _within_prior(kernels: list[np.ndarray], histories: list[KernelEstimationHistory],
                  variance_high: float) -> tuple[list[np.ndarray], list[KernelEstimationHistory]]:
    """The FKP runs whose raw kernels stayed among the prior's kernels (`fkp.off_prior_excess`
    <= 1); the others are left out of the mean with one KernelEstimationWarning. When every run
    left them, the one closest to them, with a warning naming the fixes."""
    excess = [fkp.off_prior_excess(h.raw_kernel, variance_high) for h in histories]
    kept = [i for i, e in enumerate(excess) if e <= 1]
    count = len(histories)
    outside = "; ".join(f"run {i + 1} of {count}: {_why_outside(h.raw_kernel, variance_high)}"
                        for i, h in enumerate(histories) if i not in kept)
    # Runs leave the prior by streaking along strong edges as they train on, so fewer
    # iterations, not more, keep them inside (experiments/reports/blind-sr.md).
    fixes = "more estimation_runs, prior_range_weight=1 (a penalty past the range)"
    if not kept:
        kept = [int(np.argmin(excess))]
        warnings.warn(f"every kernel-prior (FKP) run ended outside the kernels the prior was trained on ({outside}); "
                      f"run {kept[0] + 1}, the closest, is used. Try {fixes}, method=kernelgan, or the bicubic kernel",
                      KernelEstimationWarning, stacklevel=3)
    elif len(kept) < count:
        warnings.warn(f"left out of the average, as outside the kernels the prior was trained on: {outside}. If most "
                      f"runs are, try {fixes}", KernelEstimationWarning, stacklevel=3)
    return [kernels[i] for i in kept], [histories[i] for i in kept]


def _why_outside(raw_kernel: np.ndarray, variance_high: float) -> str:
    """Which of the prior's bounds `raw_kernel` breaks (`fkp.off_prior_excess`), in words."""
    total, widest = float(raw_kernel.sum()), kernel_variances(raw_kernel)[1]
    reasons = []
    if abs(total - 1) > fkp.RAW_SUM_TOLERANCE:
        reasons.append(f"its taps sum to {total:.2f}, the prior's to 1 +- {fkp.RAW_SUM_TOLERANCE:g}")
    if widest > variance_high:
        reasons.append(f"its widest variance is {widest:.1f} px^2, the prior's at most {variance_high:g}")
    return " and ".join(reasons)


def _new_history(names) -> KernelEstimationHistory:
    """An empty history for the per-iteration values `names`."""
    return KernelEstimationHistory(values={name: [] for name in names})


def _estimate_once_fkp(image: np.ndarray, config: Config, seed: int, callback: IterationCallback | None,
                       prior) -> tuple[np.ndarray, KernelEstimationHistory]:
    """One FKP estimation (`fkp.KernelPriorGAN`, the kernel `prior`) on the prepared `image`
    with `seed`: the finished kernel (`fkp.finish`) and its history. Its learning rates stay
    constant."""
    c = config.kernel_estimation
    rng = np.random.default_rng((seed, 10))  # crop positions and noise, as KernelGAN's
    gan = fkp.KernelPriorGAN(config, prior, image.shape[2], seed)
    history = _new_history((*fkp.VALUE_NAMES, "learning_rate", "latent_learning_rate"))
    start = time.perf_counter()
    for iteration, inputs in enumerate(training_inputs(image, c, gan.d_crop_size, rng)):
        values, kernel = gan.train_step(*inputs)
        _record(history, iteration, fkp.VALUE_NAMES, values, callback, learning_rate=c.estimation_learning_rate,
                latent_learning_rate=c.latent_learning_rate)
    history.seconds = time.perf_counter() - start
    history.iterations = c.estimation_iters
    history.raw_kernel = ops.convert_to_numpy(kernel).astype(np.float64)
    check_raw_kernel(history.raw_kernel)
    history.runs = [RunRecord(seed, c.estimation_iters, "end")]
    return fkp.finish(history.raw_kernel), history


def _record(history: KernelEstimationHistory, iteration: int, names, values,
            callback: IterationCallback | None, **extra: float) -> dict:
    """Append one iteration's `values` (named `names`) and `extra` values to `history`, pass them
    to `callback`; KernelEstimationError when a loss or the kernel's sum is NaN/inf. Returns the row."""
    row = dict(zip(names, ops.convert_to_numpy(values).tolist()), **extra)
    for name, value in row.items():
        history.values[name].append(value)
    if callback is not None:
        callback(iteration, row)
    if not math.isfinite(row["g_loss"] + row["d_loss"] + row["kernel_sum"]):
        raise _RunFailed(f"kernel estimation diverged at iteration {iteration} (a loss or the kernel is NaN/inf); "
                         f"try another run.seed or use the bicubic kernel (kernel=given)", "diverged")
    return row


class KernelStillCheck:
    """Whether a run's kernel has stopped moving: every `every` iterations from the first one it
    is asked about, the kernels.kernel_distance between the kernel then and `every` iterations
    earlier is compared with `tolerance` (0: never stopped). `distances` keeps (iteration,
    distance) of every comparison."""

    def __init__(self, every: int, tolerance: float):
        self.every, self.tolerance = every, tolerance
        self.reference: tuple[int, np.ndarray] | None = None
        self.distances: list[tuple[int, float]] = []

    def stopped(self, iteration: int, kernel) -> bool:
        """Whether to stop after `iteration`, whose (K, K) kernel (any tensor) is `kernel`."""
        if self.tolerance <= 0:
            return False
        if self.reference is not None and iteration - self.reference[0] < self.every:
            return False
        current = ops.convert_to_numpy(kernel).astype(np.float64)
        if self.reference is None or min(current.sum(), self.reference[1].sum()) <= 0:
            self.reference = (iteration, current)
            return False
        distance = kernel_distance(current, self.reference[1])
        self.distances.append((iteration, distance))
        self.reference = (iteration, current)
        return distance < self.tolerance


def _estimate_once(image: np.ndarray, config: Config, seed: int,
                   callback: IterationCallback | None) -> tuple[np.ndarray, KernelEstimationHistory]:
    """One KernelGAN estimation on the prepared `image` ((h, w, C) float32 in [-1, 1]) with
    `seed`: the post-processed kernel and its history."""
    c = config.kernel_estimation
    # One random stream, used only for the crop positions and the noise: reproducible per seed.
    rng = np.random.default_rng((seed, 10))
    gan = KernelGAN(config, image.shape[2], seed)
    schedule = ConstraintSchedule(c)
    history = _new_history((*VALUE_NAMES, "bicubic_weight", "learning_rate"))
    learning_rate = schedule.learning_rate
    start = time.perf_counter()
    kernel, stopped, largest_sum = None, "end", 0.0
    still = KernelStillCheck(c.kernel_stop_every, c.kernel_stop_tolerance)
    inputs = training_inputs(image, c, gan.d_crop_size, rng)
    for iteration, (g_input, d_real, fake_noise) in enumerate(inputs):
        values, kernel = gan.train_step(g_input, d_real, fake_noise, np.float32(schedule.bicubic_weight),
                                        np.float32(schedule.centralization_weight),
                                        np.float32(schedule.sparsity_weight))
        row = _record(history, iteration, VALUE_NAMES, values, callback, bicubic_weight=schedule.bicubic_weight,
                      learning_rate=learning_rate)
        largest_sum = max(largest_sum, row["kernel_sum"])
        if iteration + 1 == c.collapse_check_iters and largest_sum < RAW_SUM_RANGE[0]:
            # A healthy generator's kernel grows from ~0 to a sum near 1 within 50-200 iterations.
            raise _RunFailed(f"the kernel collapsed: its taps summed to at most {largest_sum:.3g} over the first "
                             f"{iteration + 1} iterations (collapse_check_iters), under {RAW_SUM_RANGE[0]:g}, so the "
                             f"run was stopped there; {COLLAPSE_FIX}", "collapsed_early")
        schedule.update(iteration, row["bicubic"])
        if schedule.learning_rate != learning_rate:
            learning_rate = schedule.learning_rate
            gan.set_learning_rate(learning_rate)
        if schedule.constraints_on_at is not None and still.stopped(iteration, kernel):
            stopped = "kernel_still"
            break
    ran = len(history.values["g_loss"])
    history.seconds = time.perf_counter() - start
    history.iterations = ran
    history.runs = [RunRecord(seed, ran, stopped)]
    history.similar_to_bicubic_at = schedule.similar_to_bicubic_at
    history.constraints_on_at = schedule.constraints_on_at
    history.raw_kernel = ops.convert_to_numpy(kernel).astype(np.float64)
    if schedule.similar_to_bicubic_at is None:
        # Seen with the channel-summed target on Set5 g2.0 bird (all 3 runs): the bicubic loss
        # never falls under the threshold, so its weight never decays and the kernel constraints
        # never switch on.
        warnings.warn(f"kernel estimation (seed {seed}) never left its bicubic phase: the bicubic loss stayed "
                      f"above bicubic_similar_threshold ({c.bicubic_similar_threshold}), so the estimate stays "
                      f"pulled towards the {c.bicubic_target} bicubic target (raw kernel sum "
                      f"{history.raw_kernel.sum():.2f}); "
                      + ("bicubic_target=per_channel avoids this" if c.bicubic_target == "channel_sum"
                         else "more estimation_iters or a larger bicubic_similar_threshold may let it end"),
                      BicubicPhaseWarning, stacklevel=3)
    elif (switch_at := schedule.constraints_on_by(c.estimation_iters - 1)) is not None:
        # A short run: the bicubic weight is still decaying when it ends (e.g. 300 iterations).
        warnings.warn(f"kernel estimation (seed {seed}) ended after {c.estimation_iters} iterations before its kernel "
                      f"constraints (centre of mass, sparsity) switched on: the bicubic weight was still "
                      f"{schedule.bicubic_weight:.0e} (they start under {CONSTRAINTS_SWITCH_BELOW:g}, by iteration "
                      f"{switch_at} here), so the estimate is still close to the bicubic phase's kernel; use more "
                      f"estimation_iters (kernelgan's default: {AUTO_BY_METHOD['estimation_iters']['kernelgan']})",
                      BicubicPhaseWarning, stacklevel=3)
    return check_and_post_process(history.raw_kernel, c.kernel_keep_taps), history


def check_and_post_process(raw_kernel: np.ndarray, keep: int) -> np.ndarray:
    """`post_process` after `check_raw_kernel`."""
    check_raw_kernel(raw_kernel)
    return post_process(raw_kernel, keep, scale=2)


def check_raw_kernel(raw_kernel: np.ndarray) -> None:
    """Raise KernelEstimationError (naming the bicubic fallback) when the raw kernel collapsed:
    NaN/inf taps, a sum outside RAW_SUM_RANGE, no positive tap."""
    total = float(raw_kernel.sum())
    if not np.all(np.isfinite(raw_kernel)):
        raise KernelEstimationError(f"the estimated kernel has NaN or infinite taps; {COLLAPSE_FIX}")
    if not RAW_SUM_RANGE[0] <= total <= RAW_SUM_RANGE[1]:
        raise KernelEstimationError(f"the estimated kernel collapsed: its taps sum to {total:.3g}, far from 1; "
                                    f"{COLLAPSE_FIX}")
    if raw_kernel.max() <= 0:
        raise KernelEstimationError(f"the estimated kernel has no positive taps; {COLLAPSE_FIX}")
