"""Typed, frozen configuration loaded from YAML plus `key=value` overrides, validated once.

A config file has one mapping per section (`model`, `scale`, `augment`, `train`, `loss`, `test`,
`kernel_estimation`, `run`) whose keys keep the paper's names (`scale_factors`, `noise_std`, `crop_size`, ...). Every key
can also be given without its section (`noise_std: 0.02`, `noise_std=0.02` on the command
line) because key names are unique across sections. A file may start from another with
`base: other.yaml` (a path relative to the file, or the name of a shipped preset).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import yaml

from zssr_tf.errors import ZSSRError, ZSSRWarning

if TYPE_CHECKING:
    from zssr_tf.image_io import ImageInfo

PRESETS_DIR = Path(__file__).resolve().parent / "configs"
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
RESIZE_METHODS = ("cubic", "linear", "lanczos2", "lanczos3", "box")
KERNEL_ALIGNMENTS = ("block_centre", "direct")
LEARNING_RATE_SCHEDULES = ("policy", "step", "cosine")
RECONSTRUCTION_TEST_MODES = ("auto", "full", "crops")
SCALE_DISTRIBUTIONS = ("uniform", "area")
LOSS_MAPS = ("none", "gradient")
KERNEL_SOURCES = ("given", "estimate")
KERNEL_ESTIMATION_METHODS = ("kernelgan", "fkp")
# What "auto" means per estimation method (experiments/README.md, "Blind SR"):
# estimation_iters: KernelGAN's paper value; FKP's latent search stopped early, where ZSSR
# scored better on the krk14 benchmark (its kernel drifts off the true one when trained on).
# estimation_runs: KernelGAN's single estimates vary in shape from seed to seed, and the mean of
# 5 brought ZSSR on round blur within 1 dB of the true kernel where the mean of 3 did not; FKP's
# prior already keeps each run Gaussian, and 3 runs is what was measured for it.
# estimate_variance_scale: FKP's estimates come out too wide more often than too narrow, and a
# kernel too wide costs ZSSR far more than one too narrow; KernelGAN's is left as it is.
AUTO_BY_METHOD = {"estimation_iters": {"kernelgan": 3000, "fkp": 500},
                  "estimation_runs": {"kernelgan": 5, "fkp": 3},
                  "estimate_variance_scale": {"kernelgan": 1.0, "fkp": 0.667}}
# The network the shipped warm start (`warm_start.WARM_START`) was trained as, and the
# `model.init_weights` values that are not a file.
WARM_START_NETWORK = {"depth": 8, "width": 64, "scale": (2.0, 2.0)}
INIT_WEIGHTS_NAMES = ("none", "warm_start", "auto")
BICUBIC_TARGETS = ("channel_sum", "per_channel")
ESTIMATION_PRECISIONS = ("float32", "mixed_bfloat16")

ScalePair = tuple[float, float]


@dataclass(frozen=True)
class ModelConfig:
    """The network: `depth` 3x3 conv layers of `width` filters with a global skip, and where its
    weights start: `init_weights` "none" (random, N(0, init_variance / fan_in)), "warm_start"
    (the x2 network shipped in the package), "auto" (the warm start where it fits the network and
    the first scale step is x2, else random; `Config` resolves it, see
    `resolve_init_weights`) or the path of a .npz (see `warm_start`)."""

    depth: int = 8
    width: int = 64
    init_variance: float = 0.1
    input_noise_std: float = 0.0
    init_weights: str = "auto"


@dataclass(frozen=True)
class ScaleConfig:
    """Scale steps (gradual SR when more than one), resize methods, base changes, and how a
    given numeric kernel degrades: `kernel_alignment` "block_centre" (LR pixel i at the centre of
    HR block i: MATLAB imresize, the official ZSSR, DIV2KRK) or "direct" (LR pixel i on HR pixel
    s*i: MZSR's test sets, ZSRGAN's data; whole factors only); `kernel_symmetry` lets rotations
    and the self-ensemble use the dihedral transforms a given kernel is symmetric under."""

    scale_factors: tuple[ScalePair, ...] = ((2.0, 2.0),)
    base_change_sfs: tuple[ScalePair, ...] = ()
    downscale_method: str = "cubic"
    upscale_method: str = "cubic"
    init_net_for_each_sf: bool = False
    kernel_alignment: str = "block_centre"
    kernel_symmetry: bool = True


@dataclass(frozen=True)
class AugmentConfig:
    """How HR fathers are sampled from the sources and degraded into LR sons."""

    crop_size: int = 128
    noise_std: float = 0.0
    augment_leave_as_is_probability: float = 0.05
    augment_no_interpolate_probability: float = 0.45
    augment_min_scale: float = 0.5
    augment_scale_diff_sigma: float = 0.25
    augment_shear_sigma: float = 0.1
    augment_allow_rotation: bool = True
    augment_min_father_side: int = 0
    augment_scale_distribution: str = "uniform"
    augment_dihedral_batch: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, learning-rate policy and stopping rule."""

    learning_rate: float = 1e-3
    adam_beta_1: float = 0.9
    learning_rate_schedule: str = "cosine"
    learning_rate_step_every: int = 500
    learning_rate_step_factor: float = 0.5
    min_learning_rate: float = 9e-6
    max_iters: int = 800
    min_iters: int = 256
    learning_rate_change_ratio: float = 1.5
    learning_rate_policy_check_every: int = 60
    learning_rate_slope_range: int = 256
    run_test_every: int = 50
    legacy_slope_std: bool = False
    reconstruction_test: str = "auto"
    reconstruction_test_pixels: int = 512 * 512
    gt_test_every: int = 200
    precision: str = "auto"
    jit_compile: bool = False


@dataclass(frozen=True)
class LossConfig:
    """The training loss: L1 plus, for ZSRGAN, adversarial and VGG16 perceptual terms; the
    discriminator's settings; the weight files of the perceptual network and of the optional
    LPIPS-like metric; the per-pixel weighting of L1 (`loss_map`). With both extra weights at 0
    the training is plain ZSSR."""

    l1_weight: float = 1.0
    adversarial_weight: float = 0.0
    perceptual_weight: float = 0.0
    perceptual_weights: str = "imagenet"
    discriminator_width: int = 64
    discriminator_learning_rate: float = 1e-3
    discriminator_beta_1: float = 0.5
    lpips_vgg_weights: str | None = None
    lpips_heads: str | None = None
    loss_map: str = "none"

    @property
    def gan(self) -> bool:
        """True when the training needs the GAN path (an adversarial or perceptual term)."""
        return self.adversarial_weight > 0 or self.perceptual_weight > 0


@dataclass(frozen=True)
class TestConfig:
    """The final test: geometric self-ensemble and back-projection."""

    __test__ = False  # not a pytest test class

    output_flip: bool = True
    back_projection_iters: tuple[int, ...] = (10,)
    tile_size: int = 0


@dataclass(frozen=True)
class KernelEstimationConfig:
    """Blind SR: the image's own x2 downscaling kernel, estimated from the image before ZSSR
    (KernelGAN, Bell-Kligler, Shocher & Irani, NeurIPS 2019; values are the paper code's)."""

    kernel: str = "given"  # "given": downscale_method or --kernel files; "estimate": estimate first
    method: str = "kernelgan"  # "fkp": search a kernel prior's latent space (kernel_estimation/fkp.py)
    estimation_iters: int | str = "auto"  # "auto": AUTO_BY_METHOD["estimation_iters"][method]
    estimation_runs: int | str = "auto"  # "auto": AUTO_BY_METHOD["estimation_runs"][method]
    estimation_learning_rate: float = 2e-4
    estimation_beta_1: float = 0.5
    estimation_learning_rate_drop_every: int = 750
    estimation_shave: int = 10
    estimation_precision: str = "float32"
    generator_structure: tuple[int, ...] = (7, 5, 3, 1, 1, 1)
    generator_width: int = 64
    generator_crop_size: int = 64
    init_gain: float = 0.1
    patch_discriminator_layers: int = 7
    patch_discriminator_width: int = 64
    patch_discriminator_kernel_size: int = 7
    bicubic_target: str = "per_channel"
    bicubic_weight: float = 5.0
    bicubic_min_weight: float = 5e-6
    bicubic_similar_threshold: float = 0.4
    bicubic_decay_every: int = 200
    bicubic_decay_factor: float = 100.0
    sum_to_one_weight: float = 0.5
    boundaries_weight: float = 0.5
    centralization_weight: float = 1.0
    sparsity_weight: float = 5.0
    d_noise_std: float = 1 / 255
    accumulate_d_noise: bool = False
    kernel_keep_taps: int = 40
    prior_weights: str = "auto"  # method fkp: the kernel prior's .npz; "auto" = the shipped x2 prior
    latent_learning_rate: float = 2e-3  # method fkp: Adam's learning rate for the latent (FKP: 5e-4)
    prior_range_weight: float = 0.0  # method fkp: weight of the penalty on variance past the prior's range
    # the estimate's covariance times this (postprocess.scale_kernel_variance); "auto": per method
    estimate_variance_scale: float | str = "auto"

    def __post_init__(self):
        # "auto" is resolved here, so every KernelEstimationConfig holds the number it runs and
        # logs; an unknown method is left for `validate` to name. A resolved number stays: to
        # change `method` of a built config with `dataclasses.replace`, pass these keys as
        # "auto" again (a saved config.yaml holds the numbers of the method it ran).
        for key, per_method in AUTO_BY_METHOD.items():
            if getattr(self, key) == "auto" and self.method in per_method:
                object.__setattr__(self, key, per_method[self.method])


@dataclass(frozen=True)
class RunConfig:
    """Where results go, how they are tracked, reproducibility and display."""

    seed: int = 0
    output_dir: str = "outputs"
    experiment_name: str = "zssr"
    tracking_uri: str | None = None
    progress_every: int = 50
    log_model: bool = True
    register_model: str | None = None
    system_metrics: bool = True


@dataclass(frozen=True)
class Config:
    """All settings of one ZSSR run. Build with `load_config`; never mutate (it is frozen)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    test: TestConfig = field(default_factory=TestConfig)
    kernel_estimation: KernelEstimationConfig = field(default_factory=KernelEstimationConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        # model.init_weights "auto" depends on the scale steps too: resolved here, so that every
        # Config (loaded, built directly or `dataclasses.replace`d) holds the weights it runs with.
        first_step = self.scale.scale_factors[0] if self.scale.scale_factors else None
        init_weights = resolve_init_weights(self.model, first_step)
        if init_weights != self.model.init_weights:
            object.__setattr__(self, "model", dataclasses.replace(self.model, init_weights=init_weights))

    @property
    def method_name(self) -> str:
        """"ZSRGAN" when the loss has an adversarial or perceptual term, else "ZSSR" (labels)."""
        return "ZSRGAN" if self.loss.gan else "ZSSR"

    @property
    def back_projection_per_step(self) -> tuple[int, ...]:
        """Back-projection iterations for each scale step (one value applies to all steps)."""
        iters = self.test.back_projection_iters
        return iters * len(self.scale.scale_factors) if len(iters) == 1 else iters

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The config as plain YAML-able nested dicts (tuples become lists)."""
        return _to_plain(dataclasses.asdict(self))

    def flat(self) -> dict[str, Any]:
        """`section.key -> value` pairs, e.g. for logging as run parameters."""
        return {f"{s}.{k}": v for s, keys in self.to_dict().items() for k, v in keys.items()}


def resolve_init_weights(model: ModelConfig, first_step: tuple[float, float] | None) -> str:
    """`model.init_weights` with "auto" resolved: "warm_start" when the shipped network fits the
    configured one (`model.depth` 8, `model.width` 64) and the first scale step `first_step`
    (vertical, horizontal; None when there is none) is x2, the scale it was trained for; else
    "none" (random init). Any other value is returned as it is."""
    if model.init_weights != "auto":
        return model.init_weights
    fits = (model.depth, model.width) == (WARM_START_NETWORK["depth"], WARM_START_NETWORK["width"])
    return "warm_start" if fits and is_warm_start_scale(first_step) else "none"


def is_warm_start_scale(step: tuple[float, float] | None) -> bool:
    """Whether a scale step (vertical, horizontal) is the one the shipped warm start was trained for."""
    return step is not None and tuple(step) == WARM_START_NETWORK["scale"]


SECTIONS: dict[str, type] = get_type_hints(Config)
KEY_TO_SECTION: dict[str, str] = {
    f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
}


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (defaults when `path` is None) and apply `key=value` overrides.

    Raises ZSSRError naming the file, key and fix for any unknown key or invalid value.
    """
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        _merge(values, _read_yaml_with_bases(_resolve_config_path(path), seen=()), str(path))
    _merge(values, parse_overrides(overrides), "command line")
    return build_config(values)


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["noise_std=0.02", "train.max_iters=500"]` -> {"noise_std": 0.02, "train.max_iters": 500}.

    Values are parsed as YAML (`yaml.safe_load`), so lists like `[[2,2]]` work; never `eval`.
    """
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ZSSRError(f"override {item!r} is not of the form key=value (e.g. noise_std=0.02)")
        try:
            parsed[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ZSSRError(f"override {item!r}: the value is not valid YAML ({err})") from None
    return parsed


def build_config(values: dict[str, Any]) -> Config:
    """Validate nested or flat `values` (as read from YAML) into a Config."""
    by_section = _group_by_section(values, "config")
    sections = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        kwargs = {
            key: _coerce(f"{section}.{key}", value, hints[key])
            for key, value in by_section.get(section, {}).items()
        }
        sections[section] = cls(**kwargs)
    config = Config(**sections)
    validate(config)
    return config


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML that `load_config` reads back to an equal Config."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


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
         "auto (the warm start where it fits, else random) or the path of a .npz weights file "
         "(zssr_tf.warm_start.save_weights writes one)"),
        (len(s.scale_factors) >= 1, "scale.scale_factors needs at least one step, e.g. [[2.0, 2.0]]"),
        (s.downscale_method in RESIZE_METHODS, f"scale.downscale_method must be one of {RESIZE_METHODS}"),
        (s.upscale_method in RESIZE_METHODS, f"scale.upscale_method must be one of {RESIZE_METHODS}"),
        (s.kernel_alignment in KERNEL_ALIGNMENTS,
         f"scale.kernel_alignment is {s.kernel_alignment!r}; use one of {KERNEL_ALIGNMENTS}"),
        (a.noise_std >= 0, f"augment.noise_std is {a.noise_std}; it must be >= 0 (0 for clean images)"),
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
        (r.progress_every >= 0, "run.progress_every must be >= 0 (0 turns the progress display off)"),
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
                      f"{t.learning_rate_policy_check_every}, and {_tests_needed(t)} reconstruction tests every "
                      f"run_test_every {t.run_test_every} to fit learning_rate_slope_range "
                      f"{t.learning_rate_slope_range}): the learning rate stays at {t.learning_rate:g}{fix}",
                      ZSSRWarning, stacklevel=3)


def first_policy_check(train: TrainConfig) -> int:
    """The first iteration (from 0) at which `callbacks.LearningRatePolicy` may drop the learning
    rate: the first k > min_iters with (k + 1) % learning_rate_policy_check_every == 0 by which the
    reconstruction tests (at 0, run_test_every, ...) number enough for the slope fit."""
    every = train.learning_rate_policy_check_every
    earliest = max(train.min_iters + 1, (_tests_needed(train) - 1) * train.run_test_every)
    return -(-(earliest + 1) // every) * every - 1


def _tests_needed(train: TrainConfig) -> int:
    """How many reconstruction errors the policy's line fit uses (at least 3, see `callbacks.slope_and_std`)."""
    return max(train.learning_rate_slope_range // train.run_test_every, 3)


def describe_schedule(train: TrainConfig) -> str:
    """The learning-rate schedule of `train` in words, for progress lines."""
    if train.learning_rate_schedule == "cosine":
        return f"cosine decay from {train.learning_rate:g} over {train.max_iters} iterations"
    if train.learning_rate_schedule == "step":
        return (f"{train.learning_rate:g}, x{train.learning_rate_step_factor:g} every "
                f"{train.learning_rate_step_every} iterations, at most {train.max_iters}")
    return f"{train.learning_rate:g}, slope/std policy, at most {train.max_iters} iterations"


def format_scale(sf) -> str:
    """'x2' for a square factor (2, 2), 'x1.5x2' for (1.5, 2): in labels, tags and file names."""
    return f"x{sf[0]:g}" if sf[0] == sf[1] else f"x{sf[0]:g}x{sf[1]:g}"


def output_stem(info: ImageInfo, config: Config) -> str:
    """`<input stem>_x<scale>`, e.g. baby_x2 or baby_x1.5x2 for a non-square final step."""
    return f"{Path(info.path).stem}_{format_scale(config.scale.scale_factors[-1])}"


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
        (k.latent_learning_rate > 0, f"{section}.latent_learning_rate must be > 0"),
        (k.prior_range_weight >= 0, f"{section}.prior_range_weight must be >= 0 (0: no penalty)"),
        (isinstance(k.estimate_variance_scale, numbers.Real) and 0.1 <= k.estimate_variance_scale <= 1,
         f"{section}.estimate_variance_scale must be in [0.1, 1] (1: the estimate as it is; < 1 narrows it) or auto "
         f"({_auto_values('estimate_variance_scale')}), got {k.estimate_variance_scale!r}"),
    ]


def _auto_values(key: str) -> str:
    """What "auto" means for a kernel-estimation key, for messages: "kernelgan 3000, fkp 500"."""
    return ", ".join(f"{method} {value:g}" for method, value in AUTO_BY_METHOD[key].items())


def relative_scale_factors(s: ScaleConfig) -> list[tuple[float, float]]:
    """Per scale step, the (sy, sx) factor it upscales its own input by: scale_factors divided by
    the last base change before the step (DESIGN §1.6)."""
    factors, base = [], (1.0, 1.0)
    for sf in s.scale_factors:
        factors.append((sf[0] / base[0], sf[1] / base[1]))
        if sf in s.base_change_sfs:
            base = sf
    return factors


def _check_direct_steps(s: ScaleConfig) -> None:
    """Under "direct" every step downscales its input by whole factors (after base changes)."""
    for i, relative in enumerate(relative_scale_factors(s)):
        if any(abs(f - round(f)) > 1e-9 for f in relative):
            raise ZSSRError(
                f"scale.kernel_alignment 'direct' puts LR pixel i on HR pixel s*i, which needs whole-number "
                f"factors; scale step {i} is {[round(f, 6) for f in relative]} relative to its input. Use whole "
                "factors (e.g. [[2, 2]] or [[2, 2], [4, 4]]) or kernel_alignment: block_centre")


def _resolve_config_path(path: str | Path, relative_to: Path | None = None) -> Path:
    """A config path as given, relative to the including file, or a shipped preset name."""
    candidates = [Path(path)]
    if relative_to is not None:
        candidates.insert(0, relative_to / path)
    candidates += [PRESETS_DIR / str(path), PRESETS_DIR / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    presets = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    raise ZSSRError(f"config file {str(path)!r} not found; give a path to a YAML file or a preset name: {presets}")


def read_yaml_mapping(path: Path, kind: str) -> dict[str, Any]:
    """The mapping a YAML file holds (empty file: {}); ZSSRError naming the `kind` of file
    ("config", "sweep") and the path when it is unreadable, invalid YAML or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ZSSRError(f"{kind} {path} is not valid YAML: {err}") from None
    except OSError as err:
        raise ZSSRError(f"{kind} {path} cannot be read: {err.strerror}") from None
    if not isinstance(data, dict):
        raise ZSSRError(f"{kind} {path} must be a mapping of keys, not {type(data).__name__}")
    return data


def suggest(name: str, valid) -> str:
    """"; did you mean 'x'?" for the closest of `valid` to `name`, else the list of valid names."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {sorted(valid)}"


def _read_yaml_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ZSSRError(f"config {path}: 'base' includes form a cycle ({' -> '.join(map(str, seen))})")
    data = read_yaml_mapping(path, "config")
    merged: dict[str, Any] = {}
    base = data.pop("base", None)
    if base is not None:
        base_path = _resolve_config_path(base, relative_to=path.parent)
        _merge(merged, _read_yaml_with_bases(base_path, seen + (path.resolve(),)), str(base_path))
    _merge(merged, data, str(path))
    return merged


def _merge(into: dict[str, Any], values: dict[str, Any], source: str) -> None:
    """Merge `values` (nested sections, flat keys or dotted keys) into nested `into`."""
    for section, keys in _group_by_section(values, source).items():
        into.setdefault(section, {}).update(keys)


def _group_by_section(values: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        key = str(key)
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ZSSRError(f"{source}: section {key!r} must be a mapping of keys, not {value!r}")
            for sub_key, sub_value in value.items():
                _check_key(str(sub_key), key, source)
                grouped.setdefault(key, {})[str(sub_key)] = sub_value
            continue
        section, _, name = key.rpartition(".")
        if section:
            if section not in SECTIONS:
                raise ZSSRError(f"{source}: unknown section {section!r} in {key!r}{suggest(section, SECTIONS)}")
            _check_key(name, section, source)
        else:
            if name not in KEY_TO_SECTION:
                raise ZSSRError(f"{source}: unknown config key {name!r}{suggest(name, KEY_TO_SECTION)}")
            section = KEY_TO_SECTION[name]
        grouped.setdefault(section, {})[name] = value
    return grouped


def _check_key(key: str, section: str, source: str) -> None:
    if KEY_TO_SECTION.get(key) != section:
        where = f" (it belongs in section {KEY_TO_SECTION[key]!r})" if key in KEY_TO_SECTION else ""
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        raise ZSSRError(f"{source}: unknown key {key!r} in section {section!r}{where}{suggest(key, names)}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Convert a YAML value to the field's type, or raise ZSSRError naming key and value."""
    hint_text = str(hint)
    if value is None:
        if "None" in hint_text:
            return None
        raise ZSSRError(f"{key} needs a value, got nothing")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ZSSRError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        return _to_int(key, value)
    if hint is float:
        return _to_float(key, value)
    if hint_text in ("int | str", "float | str"):  # a number or "auto"
        if value == "auto":
            return value
        try:
            return _to_int(key, value) if hint_text.startswith("int") else _to_float(key, value)
        except ZSSRError:
            kind = "a whole number" if hint_text.startswith("int") else "a number"
            raise ZSSRError(f"{key} must be {kind} or auto, got {value!r}") from None
    if hint is str or hint_text == "str | None":
        if isinstance(value, str):
            return value
        raise ZSSRError(f"{key} must be a string, got {value!r}")
    if hint == tuple[ScalePair, ...]:
        if not isinstance(value, (list, tuple)):
            raise ZSSRError(f"{key} must be a list of scale steps like [[2.0, 2.0]], got {value!r}")
        return tuple(_to_scale_pair(f"{key}[{i}]", v) for i, v in enumerate(value))
    if hint == tuple[int, ...]:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_to_int(key, v) for v in items)
    raise TypeError(f"no coercion for {key} of type {hint_text}")  # a programming error


def _to_float(key: str, value: Any) -> float:
    # PyYAML reads `1e-4` (no dot) as a string: accept any text that is a number.
    if isinstance(value, bool):
        raise ZSSRError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ZSSRError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ZSSRError(f"{key} must be a finite number, got {value!r}")
    return number


def _to_int(key: str, value: Any) -> int:
    number = _to_float(key, value)
    if number != int(number):
        raise ZSSRError(f"{key} must be a whole number, got {value!r}")
    return int(number)


def _to_scale_pair(key: str, value: Any) -> ScalePair:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ZSSRError(f"{key} must be one factor or a pair [vertical, horizontal], got {value!r}")
        return (_to_float(key, value[0]), _to_float(key, value[1]))
    factor = _to_float(key, value)
    return (factor, factor)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
