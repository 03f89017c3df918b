"""Range and consistency checks of a built config (`validate`): ZSSRError naming the key and the
fix for a value that cannot run, ZSSRWarning for one that runs but not as meant."""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings

from zssr_tf.backend import BACKENDS
from zssr_tf.config.derived import first_policy_check, relative_scale_factors, tests_needed
from zssr_tf.config.schema import (AUTO_BY_METHOD, BICUBIC_TARGETS, CARRY_OVER_MODES, ESTIMATION_PRECISIONS,
                                   INIT_WEIGHTS_NAMES, JPEG_SUBSAMPLINGS, KERNEL_ALIGNMENTS, KERNEL_ESTIMATION_METHODS,
                                   KERNEL_SOURCES, LEARNING_RATE_SCHEDULES, LOSS_MAPS, PRECISIONS, RECONSTRUCTION_TEST_MODES,
                                   RESIZE_METHODS, SCALE_DISTRIBUTIONS, Config, KernelEstimationConfig, ScaleConfig)
from zssr_tf.errors import ZSSRError, ZSSRWarning


def validate(config: Config) -> None:
    """Range and consistency checks; raises ZSSRError with the key and the fix."""
    m, s, a, t, r = config.model, config.scale, config.augment, config.train, config.run
    loss = config.loss
    checks = [
        (m.depth >= 2, "model.depth must be at least 2 (first and last conv layers)"),
        (m.width >= 1, "model.width must be at least 1"),
        (m.init_variance > 0, "model.init_variance must be > 0"),
        (m.input_noise_std >= 0, "model.input_noise_std must be >= 0 (0 adds no noise to the network input)"),
        (m.init_weights in INIT_WEIGHTS_NAMES or m.init_weights.endswith(".npz"),
         f"model.init_weights is {m.init_weights!r}; use none (random init), warm_start (the shipped x2 network), "
         "warm_start_blind (the shipped x2 network for blur kernels), auto (a warm start where it fits, else "
         "random) or the path of a .npz weights file "
         "(zssr_tf.warm_start.save_weights writes one)"),
        (len(s.scale_factors) >= 1, "scale.scale_factors needs at least one step, e.g. [[2.0, 2.0]]"),
        (s.downscale_method in RESIZE_METHODS, f"scale.downscale_method must be one of {RESIZE_METHODS}"),
        (s.upscale_method in RESIZE_METHODS, f"scale.upscale_method must be one of {RESIZE_METHODS}"),
        (s.kernel_alignment in KERNEL_ALIGNMENTS,
         f"scale.kernel_alignment is {s.kernel_alignment!r}; use one of {KERNEL_ALIGNMENTS}"),
        (a.noise_std == "auto" or a.noise_std >= 0,
         f"augment.noise_std is {a.noise_std}; it must be >= 0 (0 for clean images) or auto "
         "(estimated from the image)"),
        (a.jpeg_quality in ("none", "auto") or 1 <= a.jpeg_quality <= 100,
         f"augment.jpeg_quality is {a.jpeg_quality}; use a JPEG quality in 1..100, auto (the input JPEG's) or none"),
        (a.jpeg_subsampling == "auto" or a.jpeg_subsampling in JPEG_SUBSAMPLINGS,
         f"augment.jpeg_subsampling is {a.jpeg_subsampling!r}; use one of 444, 422, 420 (4:4:4, 4:2:2, 4:2:0 "
         "chroma) or auto (the input JPEG's, else 420)"),
        (a.crop_size >= 8, f"augment.crop_size is {a.crop_size}; use at least 8 (128 is the default)"),
        (0 <= a.augment_leave_as_is_probability <= 1, "augment.augment_leave_as_is_probability must be in [0, 1]"),
        (0 <= a.augment_no_interpolate_probability <= 1, "augment.augment_no_interpolate_probability must be in [0, 1]"),
        (a.augment_leave_as_is_probability + a.augment_no_interpolate_probability <= 1,
         "augment.augment_leave_as_is_probability + augment_no_interpolate_probability must be <= 1"),
        (0 < a.augment_min_scale <= 1, "augment.augment_min_scale must be in (0, 1]"),
        (a.augment_scale_diff_sigma >= 0, "augment.augment_scale_diff_sigma must be >= 0"),
        (a.augment_shear_sigma >= 0, "augment.augment_shear_sigma must be >= 0"),
        (a.augment_min_father_side >= 0, "augment.augment_min_father_side must be >= 0 pixels (0 = no limit)"),
        (a.augment_scale_distribution in SCALE_DISTRIBUTIONS,
         f"augment.augment_scale_distribution is {a.augment_scale_distribution!r}; use one of {SCALE_DISTRIBUTIONS}"),
        (t.learning_rate > 0, "train.learning_rate must be > 0"),
        (0 <= t.adam_beta_1 < 1, "train.adam_beta_1 must be in [0, 1)"),
        (t.learning_rate_schedule in LEARNING_RATE_SCHEDULES,
         f"train.learning_rate_schedule is {t.learning_rate_schedule!r}; use one of {LEARNING_RATE_SCHEDULES}"),
        (t.learning_rate_step_every >= 1, "train.learning_rate_step_every must be >= 1 iteration"),
        (0 < t.learning_rate_step_factor <= 1, "train.learning_rate_step_factor must be in (0, 1]"),
        (t.min_learning_rate >= 0, "train.min_learning_rate must be >= 0"),
        (t.max_iters >= 1, "train.max_iters must be >= 1"),
        (t.min_iters >= 0, "train.min_iters must be >= 0"),
        (t.learning_rate_change_ratio > 0, "train.learning_rate_change_ratio must be > 0"),
        (t.learning_rate_policy_check_every >= 1, "train.learning_rate_policy_check_every must be >= 1"),
        (t.run_test_every >= 1, "train.run_test_every must be >= 1"),
        (t.learning_rate_slope_range >= 3 * t.run_test_every,
         "train.learning_rate_slope_range must cover at least three tests (>= 3 * run_test_every): "
         "a line fit with the slope's standard error needs at least 3 tests"),
        (not t.legacy_slope_std or t.learning_rate_slope_range >= 5 * t.run_test_every,
         "train.legacy_slope_std needs a line fit of at least 5 tests: "
         "learning_rate_slope_range >= 5 * run_test_every"),
        (t.reconstruction_test in RECONSTRUCTION_TEST_MODES,
         f"train.reconstruction_test is {t.reconstruction_test!r}; use one of {RECONSTRUCTION_TEST_MODES}"),
        (t.reconstruction_test_pixels >= 64 * 64,
         "train.reconstruction_test_pixels must be at least 4096 (one 64x64 crop)"),
        (t.gt_test_every >= 0, "train.gt_test_every must be >= 0 (0: no ground-truth curves, final scores only)"),
        (t.precision in PRECISIONS, f"train.precision is {t.precision!r}; use one of {PRECISIONS}"),
        (loss.l1_weight >= 0 and loss.adversarial_weight >= 0 and loss.perceptual_weight >= 0,
         "loss.l1_weight, loss.adversarial_weight and loss.perceptual_weight must be >= 0"),
        (loss.gan or loss.l1_weight == 1,
         "loss.l1_weight weighs L1 against the adversarial and perceptual terms: with both at 0 keep it at 1"),
        (loss.discriminator_width >= 1, "loss.discriminator_width must be >= 1"),
        (loss.discriminator_learning_rate > 0, "loss.discriminator_learning_rate must be > 0"),
        (0 <= loss.discriminator_beta_1 < 1, "loss.discriminator_beta_1 must be in [0, 1)"),
        (bool(loss.perceptual_weights.strip()),
         "loss.perceptual_weights must be 'imagenet' or the path of a VGG16 weights file"),
        ((loss.lpips_vgg_weights is None) == (loss.lpips_heads is None),
         "loss.lpips_vgg_weights and loss.lpips_heads go together: give both files for the LPIPS-like metric, "
         "or neither"),
        (loss.loss_map in LOSS_MAPS, f"loss.loss_map is {loss.loss_map!r}; use one of {LOSS_MAPS}"),
        (loss.loss_map == "none" or not loss.gan,
         "loss.loss_map: gradient weights ZSSR's L1 loss, which the GAN training (adversarial or perceptual "
         "weight > 0) does not use: set loss_map=none or both weights to 0"),
        (all(n >= 0 for n in config.test.back_projection_iters), "test.back_projection_iters must be >= 0"),
        (config.test.tile_size == 0 or config.test.tile_size >= 32,
         "test.tile_size must be 0 (chosen from available memory) or at least 32 pixels"),
        (r.backend in BACKENDS, f"run.backend is {r.backend!r}; use one of {', '.join(BACKENDS)}"),
        (config.sequence.carry_over in CARRY_OVER_MODES,
         f"sequence.carry_over is {config.sequence.carry_over!r}; use one of {CARRY_OVER_MODES}"),
        (config.sequence.carry_over_max_iters >= 1,
         "sequence.carry_over_max_iters must be >= 1 (iterations of every image after the first)"),
        (config.sequence.reestimate_ratio >= 1,
         "sequence.reestimate_ratio must be >= 1 (1: re-estimate whenever the carried kernel fits the next "
         "image any worse)"),
        (r.progress_every >= 0, "run.progress_every must be >= 0 (0 turns the progress display off)"),
        (r.time_budget is None or r.time_budget > 0,
         f"run.time_budget is {r.time_budget}; give the seconds the run may take (> 0), or null for no budget"),
        (r.time_budget is None or config.sequence.carry_over == "none",
         "run.time_budget (--time-budget) chooses each image's lengths, sequence.carry_over sets those of every "
         "image after the first: use one of them"),
        (r.register_model is None or (r.register_model.strip() and r.log_model),
         "run.register_model must be a model name (and needs run.log_model: true), or null"),
    ]
    for ok, message in checks + _kernel_estimation_checks(config.kernel_estimation):
        if not ok:
            raise ZSSRError(message)
    for i, (sy, sx) in enumerate(s.scale_factors):
        if sy < 1 or sx < 1:
            raise ZSSRError(f"scale.scale_factors step {i} is {[sy, sx]}: every factor must be >= 1 (upscaling)")
    last = s.scale_factors[-1]
    if max(last) <= 1:
        raise ZSSRError(f"scale.scale_factors: the last step {list(last)} must upscale (a factor > 1), e.g. [2.0, 2.0]")
    if a.crop_size < 2 * math.ceil(max(last)):
        raise ZSSRError(
            f"augment.crop_size {a.crop_size} is too small for scale {list(last)}: "
            f"use at least {2 * math.ceil(max(last))} so the LR son keeps 2 pixels per side"
        )
    n_bp, n_steps = len(config.test.back_projection_iters), len(s.scale_factors)
    if n_bp not in (1, n_steps):
        raise ZSSRError(
            f"test.back_projection_iters has {n_bp} values for {n_steps} scale steps: "
            f"give one value, or one per step"
        )
    if loss.adversarial_weight > 0 and (a.crop_size < 64 or a.augment_min_father_side < 64):
        raise ZSSRError(f"the discriminator (loss.adversarial_weight > 0) needs fathers of at least 64 pixels "
                        f"(four stride-2 blocks and a 4x4 head): set augment.crop_size >= 64 (now {a.crop_size}) and "
                        f"augment.augment_min_father_side >= 64 (now {a.augment_min_father_side}), as the zsrgan "
                        f"preset does")
    unknown_base = [list(b) for b in s.base_change_sfs if b not in s.scale_factors]
    if unknown_base:
        raise ZSSRError(f"scale.base_change_sfs {unknown_base} must each be one of scale.scale_factors")
    if s.kernel_alignment == "direct":
        _check_direct_steps(s)
    first_check = first_policy_check(t)
    if first_check >= t.max_iters and t.learning_rate_schedule == "policy":  # the other schedules have no checks
        test_every = min(t.run_test_every, max(1, t.max_iters // 20))
        short = dataclasses.replace(
            t, min_iters=t.max_iters // 4, run_test_every=test_every,
            learning_rate_slope_range=min(t.learning_rate_slope_range, 5 * test_every),
            learning_rate_policy_check_every=min(t.learning_rate_policy_check_every, max(1, t.max_iters // 10)))
        changed = " ".join(f"{key}={getattr(short, key)}" for key in
                           ("min_iters", "learning_rate_policy_check_every", "run_test_every", "learning_rate_slope_range")
                           if getattr(short, key) != getattr(t, key))
        fix = f"; for short runs lower them too, e.g. {changed}" if first_policy_check(short) < t.max_iters else ""
        warnings.warn(f"train.max_iters is {t.max_iters} but the learning-rate policy first checks at iteration "
                      f"{first_check} (train.min_iters {t.min_iters}, learning_rate_policy_check_every "
                      f"{t.learning_rate_policy_check_every}, and {tests_needed(t)} reconstruction tests every "
                      f"run_test_every {t.run_test_every} to fit learning_rate_slope_range "
                      f"{t.learning_rate_slope_range}): the learning rate stays at {t.learning_rate:g}{fix}",
                      ZSSRWarning, stacklevel=3)


def _kernel_estimation_checks(k: KernelEstimationConfig) -> list[tuple[bool, str]]:
    section = "kernel_estimation"
    fkp = k.method == "fkp"
    receptive_field = sum(k.generator_structure) - len(k.generator_structure) + 1
    return [
        (k.kernel in KERNEL_SOURCES, f"{section}.kernel is {k.kernel!r}; use one of {KERNEL_SOURCES}"),
        (k.method in KERNEL_ESTIMATION_METHODS,
         f"{section}.method is {k.method!r}; use one of {KERNEL_ESTIMATION_METHODS}"),
        (isinstance(k.estimation_iters, numbers.Integral) and k.estimation_iters >= 1,
         f"{section}.estimation_iters must be a whole number >= 1 or auto "
         f"({_auto_values('estimation_iters')}), got {k.estimation_iters!r}"),
        (isinstance(k.estimation_runs, numbers.Integral) and k.estimation_runs >= 1,
         f"{section}.estimation_runs must be a whole number >= 1 (1 in the paper) or auto "
         f"({_auto_values('estimation_runs')}), got {k.estimation_runs!r}"),
        (k.estimation_learning_rate > 0, f"{section}.estimation_learning_rate must be > 0"),
        (0 <= k.estimation_beta_1 < 1, f"{section}.estimation_beta_1 must be in [0, 1)"),
        (k.estimation_learning_rate_drop_every >= 1, f"{section}.estimation_learning_rate_drop_every must be >= 1"),
        (k.estimation_shave >= 0, f"{section}.estimation_shave must be >= 0 (0 for real images)"),
        (k.estimation_precision in ESTIMATION_PRECISIONS,
         f"{section}.estimation_precision is {k.estimation_precision!r}; use one of {ESTIMATION_PRECISIONS}"),
        # The generator's settings are KernelGAN's alone; under fkp the prior's kernel size takes
        # their place (checked with the prior file, estimator.check_estimation_inputs).
        (fkp or (len(k.generator_structure) >= 2 and all(n >= 1 and n % 2 == 1 for n in k.generator_structure)),
         f"{section}.generator_structure must list >= 2 odd kernel sizes, e.g. [7, 5, 3, 1, 1, 1]"),
        (fkp or k.generator_structure[-1:] == (1,),
         f"{section}.generator_structure must end with a 1x1 layer (the strided one)"),
        (fkp or k.generator_width >= 1, f"{section}.generator_width must be >= 1"),
        (k.generator_crop_size % 2 == 0 and (fkp or k.generator_crop_size >= receptive_field + 2),
         f"{section}.generator_crop_size must be even and at least the generator's kernel size + 2 "
         f"({receptive_field + 2})"),
        (k.init_gain > 0, f"{section}.init_gain must be > 0"),
        (k.patch_discriminator_layers >= 2, f"{section}.patch_discriminator_layers must be >= 2"),
        (k.patch_discriminator_width >= 1, f"{section}.patch_discriminator_width must be >= 1"),
        (k.patch_discriminator_kernel_size >= 1
         and (fkp or (k.generator_crop_size - receptive_field + 1) // 2 >= k.patch_discriminator_kernel_size),
         f"{section}.patch_discriminator_kernel_size must be >= 1 and fit in the generator's output"),
        (k.bicubic_target in BICUBIC_TARGETS, f"{section}.bicubic_target is {k.bicubic_target!r}; use one of {BICUBIC_TARGETS}"),
        (k.bicubic_weight >= 0 and k.bicubic_min_weight >= 0, f"{section}.bicubic_weight and bicubic_min_weight must be >= 0"),
        (k.bicubic_similar_threshold > 0, f"{section}.bicubic_similar_threshold must be > 0"),
        (k.bicubic_decay_every >= 1, f"{section}.bicubic_decay_every must be >= 1"),
        (k.bicubic_decay_factor > 1, f"{section}.bicubic_decay_factor must be > 1"),
        (min(k.sum_to_one_weight, k.boundaries_weight, k.centralization_weight, k.sparsity_weight) >= 0,
         f"{section}: the constraint weights must be >= 0"),
        (k.d_noise_std >= 0, f"{section}.d_noise_std must be >= 0"),
        (k.kernel_keep_taps >= 1, f"{section}.kernel_keep_taps must be >= 1 (40 in the paper)"),
        (k.collapse_check_iters >= 0,
         f"{section}.collapse_check_iters must be >= 0 (0: no run is stopped early as collapsed), "
         f"got {k.collapse_check_iters}"),
        (k.kernel_stop_every >= 1, f"{section}.kernel_stop_every must be >= 1 iteration, got {k.kernel_stop_every}"),
        (k.kernel_stop_tolerance >= 0,
         f"{section}.kernel_stop_tolerance must be >= 0 (0: every run goes to estimation_iters), "
         f"got {k.kernel_stop_tolerance:g}"),
        (k.runs_agree_tolerance >= 0,
         f"{section}.runs_agree_tolerance must be >= 0 (0: always estimation_runs runs), "
         f"got {k.runs_agree_tolerance:g}"),
        (k.latent_learning_rate > 0, f"{section}.latent_learning_rate must be > 0"),
        (k.prior_range_weight >= 0, f"{section}.prior_range_weight must be >= 0 (0: no penalty)"),
        (isinstance(k.estimate_variance_scale, numbers.Real) and 0.1 <= k.estimate_variance_scale <= 1,
         f"{section}.estimate_variance_scale must be in [0.1, 1] (1: the estimate as it is; < 1 narrows it) or auto "
         f"({_auto_values('estimate_variance_scale')}), got {k.estimate_variance_scale!r}"),
    ]


def _auto_values(key: str) -> str:
    """What "auto" means for a kernel-estimation key, for messages: "kernelgan 3000, fkp 500"."""
    return ", ".join(f"{method} {value:g}" for method, value in AUTO_BY_METHOD[key].items())


def _check_direct_steps(s: ScaleConfig) -> None:
    """Under "direct" every step downscales its input by whole factors (after base changes)."""
    for i, relative in enumerate(relative_scale_factors(s)):
        if any(abs(f - round(f)) > 1e-9 for f in relative):
            raise ZSSRError(
                f"scale.kernel_alignment 'direct' puts LR pixel i on HR pixel s*i, which needs whole-number "
                f"factors; scale step {i} is {[round(f, 6) for f in relative]} relative to its input. Use whole "
                "factors (e.g. [[2, 2]] or [[2, 2], [4, 4]]) or kernel_alignment: block_centre")
