"""From a read image to files on disk: run ZSSR, save SR and bicubic images, evaluate; and one
tracked run of it (`tracked_super_resolve`), as `zssr train` and every point of a sweep run it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import keras
import numpy as np
from tqdm import tqdm

from zssr_tf.checks import blind_step_factors
from zssr_tf.config import Config, output_stem
from zssr_tf.errors import ZSSRError
from zssr_tf.gan.lpips import LpipsLike
from zssr_tf.image_io import ImageInfo, read_image, write_image
from zssr_tf.inference.trained import TrainedZSSR
from zssr_tf.kernels import load_kernel, upscale_offset
from zssr_tf.resize import imresize
from zssr_tf.kernel_estimation import KernelEstimationHistory, analytic_x4_kernel, estimate_kernel
from zssr_tf.kernel_estimation.files import write_kernel_files
from zssr_tf.photo import PhotoEstimate, resolve_photo_settings
from zssr_tf.pacing import Deadline
from zssr_tf.time_budget import BudgetOutcome, BudgetPlan, fit_to_budget, replan_zssr
from zssr_tf.trainer import ZSSR, ZSSRResult

if TYPE_CHECKING:
    from zssr_tf.tracking import TrackedRun


@dataclass
class Outcome:
    """A finished run: the result, where its images were written, metrics when GT was given; with
    a time budget, `budget` (`time_budget.BudgetOutcome`: the plan and what actually ran)."""

    result: ZSSRResult
    sr_path: Path
    bicubic_path: Path
    metrics: dict[str, dict[str, float]] | None
    budget: BudgetOutcome | None = None


@dataclass
class BlindKernels:
    """Kernels estimated from the image: the x2 estimate, the analytic x4 kernel when a step
    needs it, one kernel per scale step of the config, and the estimation's history."""

    kernel_x2: np.ndarray
    kernel_x4: np.ndarray | None
    per_step: list[np.ndarray]
    history: KernelEstimationHistory


def fit_run_to_budget(config: Config, image: np.ndarray, gt: np.ndarray | None = None,
                      kernels: Sequence[np.ndarray] | None = None, started_at: float | None = None
                      ) -> tuple[Config, BudgetPlan | None]:
    """With `run.time_budget` set: the config with the lengths that fit the run on `image` (h, w, C)
    float32 in [0, 1] into the budget counted from `started_at` (`time.perf_counter()`; default:
    now), and the plan (`time_budget.fit_to_budget`), whose one-line summary is printed. Without
    a budget: `config` unchanged and None. Raises ZSSRError when the budget is too short."""
    if config.run.time_budget is None:
        return config, None
    config, plan = fit_to_budget(config, image, gt, list(kernels) if kernels else None, started_at=started_at)
    print(plan.summary(), flush=True)
    return config, plan


def super_resolve_in_budget(config: Config, plan: BudgetPlan | None, image: np.ndarray, alpha: np.ndarray | None,
                            info: ImageInfo, out_dir: Path, gt: np.ndarray | None = None,
                            kernels: Sequence[np.ndarray] | None = None,
                            callbacks: Sequence[keras.callbacks.Callback] = (),
                            estimation: tuple[float, int] = (0.0, 0)) -> Outcome:
    """`super_resolve_file`; with a `plan` (`fit_run_to_budget`'s), ZSSR is first re-planned from
    the time actually left (`time_budget.replan_zssr`, one line printed) and trained paced to the
    budget's end, and the outcome's `budget` says what ran (`estimation`: the kernel
    estimation's seconds and iterations, as they ran)."""
    if plan is None:
        return super_resolve_file(config, image, alpha, info, out_dir, gt, kernels, callbacks)
    config, deadline = replan_zssr(config, plan)
    print(f"time budget {plan.budget:g} s: {deadline.at - time.perf_counter():.0f} s left for ZSSR: "
          f"{config.train.max_iters} iterations per step (planned {plan.max_iters}), paced to end in time", flush=True)
    outcome = super_resolve_file(config, image, alpha, info, out_dir, gt, kernels, callbacks, deadline)
    outcome.budget = BudgetOutcome(plan, time.perf_counter() - plan.started_at, config.train.max_iters,
                                   tuple(step.iterations for step in outcome.result.steps), *estimation)
    return outcome


def estimate_blind_kernels(config: Config, image: np.ndarray,
                           callback: Callable[[int, dict], None] | None = None) -> BlindKernels:
    """Estimate `image`'s x2 kernel (config.kernel_estimation) and give every scale step its
    kernel: the estimate for x2 steps, the analytic x4 kernel for x4 steps (KernelGAN's x4 is
    gradual [[2, 2], [4, 4]] with kernels [k2, k4]). The kernels are in the block-centre
    convention; the trainer re-centres them for the step like any given kernel."""
    factors = blind_step_factors(config)
    kernel_x2, history = estimate_kernel(image, config, callback=callback)
    kernel_x4 = analytic_x4_kernel(kernel_x2) if 4 in factors else None
    return BlindKernels(kernel_x2, kernel_x4, [kernel_x2 if f == 2 else kernel_x4 for f in factors], history)


def kernel_tags(config: Config) -> dict[str, str]:
    """The run tag naming where a blind run's kernel comes from ({} when it is given)."""
    k = config.kernel_estimation
    return {"kernel": f"estimated ({k.method})"} if k.kernel == "estimate" else {}


def estimate_run_kernels(config: Config, image: np.ndarray, run, out_dir: Path, stem: str
                         ) -> tuple[BlindKernels, list[Path]]:
    """The kernel estimation of a blind run (`kernel: estimate`) inside the tracked `run`
    (`tracking.TrackedRun`, started here): `estimate_blind_kernels` on `image` (h, w, C) float32
    in [0, 1] with a progress line every run.progress_every iterations, every iteration's values
    logged by `tracking.kernel_estimation.KernelEstimationLogger`, and the kernels written to
    `out_dir` as `write_estimated_kernels` does (and copied to the run). Returns the kernels and
    the written paths. Raises ZSSRError for scale steps other than x2/x4 and
    `kernel_estimation.KernelEstimationError` when the estimation fails."""
    from zssr_tf.tracking.kernel_estimation import KernelEstimationLogger  # MLflow, only for tracked runs

    logger = KernelEstimationLogger(run)
    k = config.kernel_estimation
    progress = estimation_progress(config.run.progress_every, k.estimation_iters, k.estimation_runs)

    def report(iteration: int, values: dict) -> None:
        progress(iteration, values)
        logger(iteration, values)

    estimate = estimate_blind_kernels(config, image, report)
    paths = write_estimated_kernels(estimate, out_dir, stem)
    logger.log_result(estimate.history, paths)
    return estimate, paths


def kernel_file_stem(stem: str, factor: int) -> str:
    """The name (without suffix) of the x`factor` kernel files estimated for the image `stem`."""
    return f"{stem}_kernel_x{factor}"


def write_estimated_kernels(estimate: BlindKernels, out_dir: Path, stem: str) -> list[Path]:
    """Write `<stem>_kernel_x2.{npy,mat,png}` (and `_x4` when there is one) to `out_dir`
    (`kernel_estimation.files.write_kernel_files`); returns the written paths."""
    paths = []
    for factor, kernel in ((2, estimate.kernel_x2), (4, estimate.kernel_x4)):
        if kernel is not None:
            paths += write_kernel_files(kernel, out_dir, kernel_file_stem(stem, factor)).values()
    return paths


def estimation_progress(every: int, iters_per_run: int, runs: int = 1, stream=None) -> Callable[[int, dict], None]:
    """A kernel-estimation callback printing one line every `every` iterations of each run (0:
    none) and at each run's last, as "run r/R iter i/N", the losses and the time since the first
    iteration, and from the second line on an ETA for all R x N iterations at the rate of the
    iterations reported since the first (which includes building and tracing). The estimator counts
    iterations on across runs (run r's first is r * `iters_per_run`)."""
    total = iters_per_run * runs
    start, reported = None, 0

    def report(iteration: int, values: dict) -> None:
        nonlocal start, reported
        now = time.perf_counter()
        start = now if start is None else start
        reported += 1
        run, within = divmod(iteration, iters_per_run)
        if every and (within % every == 0 or within == iters_per_run - 1):
            bicubic = (f"bicubic {values['bicubic']:.4f} (weight {values['bicubic_weight']:.0e})  "
                       if "bicubic" in values else "")  # FKP has no bicubic term
            run_label = f"run {run + 1}/{runs}  " if runs > 1 else ""
            elapsed = now - start
            timing = f"  elapsed {tqdm.format_interval(elapsed)}"
            if reported > 1:
                left = max(total - iteration - 1, 0)
                timing += f"  ETA {tqdm.format_interval(elapsed / (reported - 1) * left)}"
            print(f"[kernel estimation] {run_label}iter {within:5d}/{iters_per_run}  G {values['g_loss']:.4f}  "
                  f"D {values['d_loss']:.4f}  {bicubic}kernel sum {values['kernel_sum']:.3f}{timing}",
                  file=stream or sys.stdout, flush=True)

    return report


def resolve_for_image(config: Config, image: np.ndarray, info: ImageInfo, stream=None) -> tuple[Config, PhotoEstimate]:
    """`photo.resolve_photo_settings` for `image` (h, w, C) float32 in [0, 1] read from `info.path`
    (at `info.bit_depth`), each of its notes printed as a line (to `stream`, stdout by default).
    Returns the resolved config and the estimate; raises ZSSRError as that function does."""
    resolved, estimate = resolve_photo_settings(config, image, info.path, info.bit_depth)
    for note in estimate.notes:
        print(f"[{Path(info.path).name}] {note}", file=stream or sys.stdout, flush=True)
    return resolved, estimate


def super_resolve_file(config: Config, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                       out_dir: Path, gt: np.ndarray | None = None, kernels: Sequence[np.ndarray] | None = None,
                       callbacks: Sequence[keras.callbacks.Callback] = (), deadline: Deadline | None = None
                       ) -> Outcome:
    """Run ZSSR on `image` (h, w, C) (paced to `deadline` when given: `trainer.ZSSR`) and write
    `<stem>_zssr.png` and `<stem>_bicubic.png` to
    `out_dir` with the input's bit depth and channel layout (alpha upscaled with bicubic).
    With `gt`, metrics hold the run's final scores (`ZSSRResult.metrics`: metrics.evaluate at
    `info.bit_depth`, 16-bit data adds `*_16bit`) and, when loss.lpips_heads is set, `lpips_like`
    (gan.lpips). Errors (ZSSRError)
    are raised before anything is written."""
    # Built before training so that a missing weight file stops the run before any work.
    lpips = (LpipsLike(config.loss.lpips_vgg_weights, config.loss.lpips_heads)
             if gt is not None and config.loss.lpips_heads else None)
    result = ZSSR(config, callbacks=callbacks, deadline=deadline).run(image, gt=gt, kernels=kernels, bit_depth=info.bit_depth)
    stem = output_stem(info, config)
    big_alpha = _upscale_alpha(alpha, config, result.sr.shape[:2])
    sr_path = Path(out_dir) / f"{stem}_zssr.png"
    bicubic_path = Path(out_dir) / f"{stem}_bicubic.png"
    write_image(sr_path, result.sr, info, alpha=big_alpha)
    write_image(bicubic_path, result.bicubic, info, alpha=big_alpha)
    metrics = None
    if result.metrics is not None:
        metrics = {name: dict(scores) for name, scores in result.metrics.items()}
        if lpips is not None:
            for key, sr in (("zssr", result.sr), ("bicubic", result.bicubic)):
                height, width = min(sr.shape[0], gt.shape[0]), min(sr.shape[1], gt.shape[1])
                metrics[key]["lpips_like"] = lpips.distance(sr[:height, :width], gt[:height, :width])
    return Outcome(result, sr_path, bicubic_path, metrics)


def tracked_super_resolve(config: Config, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                          out_dir: Path, gt_path: str | Path | None = None, kernel_paths: Sequence[str | Path] = (),
                          tags: dict[str, str] | None = None, overrides: Sequence[str] = (),
                          on_start: Callable[[TrackedRun], None] | None = None,
                          on_estimated: Callable[[BlindKernels, list[Path]], None] | None = None,
                          started_at: float | None = None) -> tuple[TrackedRun, Outcome]:
    """One tracked run (`tracking.tracked_run`) of `super_resolve_file` on `image` (h, w, C)
    float32 in [0, 1] read from `info.path`: the ground truth and the kernels are read from
    `gt_path` and `kernel_paths` inside the run; with kernel=estimate the kernels are estimated
    first (`estimate_run_kernels`, then `on_estimated(estimate, written_paths)` when given); MLflow
    autologging is paused while ZSSR trains (`tracking.autolog`); the outcome is logged
    (`TrackedRun.log_outcome`). `tags` add to the run's tags (with `kernel_tags`), `overrides` go
    into its name. The run starts when training does, or at once when `on_start` is given, which
    then gets the `TrackedRun` (so a failure reading the inputs is recorded too). The config's
    per-image "auto" settings are resolved first (`resolve_for_image`) and the run logs the
    resolved values, with what was estimated (`noise_std_estimated`, ...). With
    `run.time_budget` the lengths are chosen next (`fit_run_to_budget`, the budget counted from
    `started_at`, default now; a budget too short stops with ZSSRError before the run starts),
    ZSSR is re-planned and paced when it starts (`super_resolve_in_budget`), the plan is logged
    as `time_budget/*` params and what ran as `time_budget/*` metrics (`BudgetOutcome.metrics`).
    Returns (the `TrackedRun`, ended, and the `Outcome`); raises what the run raised, after
    ending it FAILED or KILLED."""
    from zssr_tf.tracking import tracked_run  # MLflow, only for tracked runs
    from zssr_tf.tracking.autolog import autolog_paused

    config, estimate = resolve_for_image(config, image, info)
    plan = None
    if config.run.time_budget is not None:
        config, plan = fit_run_to_budget(config, image, read_image(gt_path)[0] if gt_path else None,
                                         [load_kernel(k) for k in kernel_paths], started_at)
    with tracked_run(config, info, out_dir, gt_path=gt_path, kernel_paths=kernel_paths,
                     tags={**(tags or {}), **kernel_tags(config)}, overrides=overrides,
                     params=estimate.params(), plan=plan) as run:
        if on_start is not None:
            run.start()
            on_start(run)
        gt = read_image(gt_path)[0] if gt_path else None
        kernels = [load_kernel(k) for k in kernel_paths] or None
        estimation = (0.0, 0)
        if config.kernel_estimation.kernel == "estimate":
            estimation_start = time.perf_counter()
            estimate, paths = estimate_run_kernels(config, image, run, Path(out_dir), Path(info.path).stem)
            estimation = (time.perf_counter() - estimation_start, estimate.history.iterations)
            kernels = estimate.per_step
            if on_estimated is not None:
                on_estimated(estimate, paths)
        with autolog_paused():
            outcome = super_resolve_in_budget(config, plan, image, alpha, info, Path(out_dir), gt, kernels,
                                              [run.callback], estimation)
        run.log_outcome(outcome, gt)
    return run, outcome


def super_resolve_untracked(config: Config, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                            out_dir: Path, gt: np.ndarray | None = None, kernels: Sequence[np.ndarray] | None = None,
                            on_estimated: Callable[[BlindKernels, list[Path]], None] | None = None,
                            started_at: float | None = None) -> Outcome:
    """`tracked_super_resolve` without MLflow (run.tracking false; MLflow is not imported): the
    per-image "auto" settings resolved (`resolve_for_image`); with `run.time_budget` the
    lengths are chosen next (`fit_run_to_budget`, counted from `started_at`, default now) and
    ZSSR re-planned and paced when it starts (`super_resolve_in_budget`); with kernel=estimate
    and no `kernels` the kernels are estimated first (`estimate_blind_kernels`, a progress line
    every run.progress_every iterations) and written to `out_dir` (`write_estimated_kernels`;
    then `on_estimated(estimate, written_paths)` when given), then `super_resolve_file` on
    `image` (h, w, C) float32 in [0, 1] with `gt` (H, W, C) and `kernels` as it takes them.
    Returns its `Outcome`."""
    config, _ = resolve_for_image(config, image, info)
    config, plan = fit_run_to_budget(config, image, gt, kernels, started_at)
    estimation = (0.0, 0)
    if kernels is None and config.kernel_estimation.kernel == "estimate":
        k = config.kernel_estimation
        estimation_start = time.perf_counter()
        estimate = estimate_blind_kernels(config, image, estimation_progress(
            config.run.progress_every, k.estimation_iters, k.estimation_runs))
        paths = write_estimated_kernels(estimate, Path(out_dir), Path(info.path).stem)
        estimation = (time.perf_counter() - estimation_start, estimate.history.iterations)
        kernels = estimate.per_step
        if on_estimated is not None:
            on_estimated(estimate, paths)
    return super_resolve_in_budget(config, plan, image, alpha, info, Path(out_dir), gt, kernels, estimation=estimation)


def super_resolve_with_trained(trained: TrainedZSSR, image: np.ndarray, alpha: np.ndarray | None, info: ImageInfo,
                               out_dir: Path) -> Path:
    """Super-resolve `image` (h, w, C) float32 in [0, 1] with networks trained earlier
    (`inference.trained.TrainedZSSR.super_resolve`) and write `<stem>_zssr.png` to `out_dir` with
    the input's bit depth and channel layout; returns its path. Raises ZSSRError naming the image
    for one the networks cannot take."""
    try:
        output = trained.super_resolve(image)
    except ZSSRError as err:
        raise ZSSRError(f"{info.path}: {err}") from None
    sr_path = Path(out_dir) / f"{output_stem(info, trained.config)}_zssr.png"
    write_image(sr_path, output, info, alpha=_upscale_alpha(alpha, trained.config, output.shape[:2]))
    return sr_path


def _upscale_alpha(alpha: np.ndarray | None, config: Config, shape: tuple[int, int]) -> np.ndarray | None:
    """The alpha channel (h, w, 1) upscaled with bicubic to the output's (H, W) on the SR image's
    grid (scale.kernel_alignment), or None."""
    if alpha is None:
        return None
    scale = config.scale.scale_factors[-1]
    return np.clip(imresize(alpha, scale_factor=scale, output_shape=shape,
                            offset=upscale_offset(scale, config.scale.kernel_alignment)), 0, 1)
