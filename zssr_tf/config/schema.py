"""The config's schema: one frozen dataclass per section of a config file (`Config` holds them
all), the values its string settings may take, and the "auto" values resolved when a config is
built (`AUTO_BY_METHOD` for kernel estimation, `resolve_init_weights` for the initial weights)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from zssr_tf.backend import BACKENDS

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
RESIZE_METHODS = ("cubic", "linear", "lanczos2", "lanczos3", "box")
KERNEL_ALIGNMENTS = ("block_centre", "direct")
LEARNING_RATE_SCHEDULES = ("policy", "step", "cosine")
RECONSTRUCTION_TEST_MODES = ("auto", "full", "crops")
SCALE_DISTRIBUTIONS = ("uniform", "area")
LOSS_MAPS = ("none", "gradient")
KERNEL_SOURCES = ("given", "estimate")
KERNEL_ESTIMATION_METHODS = ("kernelgan", "fkp")
# What "auto" means per estimation method (experiments/reports/blind-sr.md):
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
# The network the shipped warm starts (`warm_start.WARM_START`, `WARM_START_BLIND`) were trained
# as, and the `model.init_weights` values that are not a file.
WARM_START_NETWORK = {"depth": 8, "width": 64, "scale": (2.0, 2.0)}
INIT_WEIGHTS_NAMES = ("none", "warm_start", "warm_start_blind", "auto")
BICUBIC_TARGETS = ("channel_sum", "per_channel")
ESTIMATION_PRECISIONS = ("float32", "mixed_bfloat16")
CARRY_OVER_MODES = ("none", "weights", "weights_and_kernel")
JPEG_SUBSAMPLINGS = (444, 422, 420)  # chroma subsampling 4:4:4, 4:2:2, 4:2:0
# The words a setting that is otherwise a number may take (by default "auto" alone).
NUMBER_OR_WORDS = {"augment.jpeg_quality": ("none", "auto")}

ScalePair = tuple[float, float]


@dataclass(frozen=True)
class ModelConfig:
    """The network: `depth` 3x3 conv layers of `width` filters with a global skip, and where its
    weights start: `init_weights` "none" (random, N(0, init_variance / fan_in)), "warm_start"
    (the x2 network shipped in the package, trained on bicubic sons), "warm_start_blind" (the
    one trained on sons of random blur kernels), "auto" (a shipped warm start where it fits the
    network and the first scale step is x2, the blind one when the kernel is estimated, else
    random; `Config` resolves it, see `resolve_init_weights`) or the path of a .npz (see
    `warm_start`)."""

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
    """How HR fathers are sampled from the sources and degraded into LR sons: `noise_std` (std of
    the Gaussian noise on sons, [0, 1] units, or "auto": the input's own, estimated), `jpeg_quality`
    ("none", "auto": the input JPEG's IJG quality, or 1..100: sons JPEG-encoded and decoded at it)
    and `jpeg_subsampling` (the sons' chroma: 444, 422, 420, or "auto": the input JPEG's, else 420).
    The "auto" values are resolved per image (`photo.resolve_photo_settings`)."""

    crop_size: int = 128
    noise_std: float | str = 0.0
    jpeg_quality: int | str = "none"
    jpeg_subsampling: int | str = "auto"
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
    # KernelGAN: a run whose raw kernel sum has not reached 0.25 by this iteration is stopped as collapsed (0: never)
    collapse_check_iters: int = 400
    # KernelGAN: once the kernel constraints are on, compare the kernel with its copy this many iterations earlier
    kernel_stop_every: int = 200
    # KernelGAN: stop a run when that kernel distance (kernels.kernel_distance) falls under this (0: never)
    kernel_stop_tolerance: float = 0.005
    # KernelGAN: stop after >= 2 runs once every kept run is this close to their mean (0: run estimation_runs)
    runs_agree_tolerance: float = 0.0
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
class SequenceConfig:
    """Many images in one `zssr train` (a folder, a glob, a TIFF stack, a video): what each image
    after the first takes over from the one before it (`carry_over` "none": nothing, every image
    runs as alone; "weights": its trained network as the initial weights; "weights_and_kernel":
    also, in blind runs, its estimated kernel, re-estimated only when the carried network and
    kernel reconstruct the new image `reestimate_ratio` times worse than they did the image they
    came from), and how long such an image trains (`carry_over_max_iters`, a cosine decay)."""

    carry_over: str = "none"
    carry_over_max_iters: int = 50
    reestimate_ratio: float = 1.5


@dataclass(frozen=True)
class RunConfig:
    """Where results go, how they are tracked, reproducibility and display."""

    seed: int = 0
    backend: str = "tensorflow"  # the Keras backend the command line runs on (BACKENDS)
    tracking: bool = True  # False: no MLflow run (outputs only; MLflow need not be installed)
    output_dir: str = "outputs"
    experiment_name: str = "zssr"
    tracking_uri: str | None = None
    progress_every: int = 50
    log_model: bool = True
    register_model: str | None = None
    system_metrics: bool = True
    # seconds for the whole run; the lengths are chosen to fit (time_budget.py); None: as configured
    time_budget: float | None = None


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
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        # model.init_weights "auto" depends on the scale steps too: resolved here, so that every
        # Config (loaded, built directly or `dataclasses.replace`d) holds the weights it runs with.
        first_step = self.scale.scale_factors[0] if self.scale.scale_factors else None
        init_weights = resolve_init_weights(self.model, first_step, self.kernel_estimation.kernel == "estimate")
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


def resolve_init_weights(model: ModelConfig, first_step: tuple[float, float] | None, blind: bool = False) -> str:
    """`model.init_weights` with "auto" resolved: a shipped warm start when its network fits the
    configured one (`model.depth` 8, `model.width` 64) and the first scale step `first_step`
    (vertical, horizontal; None when there is none) is x2, the scale they were trained for:
    "warm_start_blind" (trained on sons of random blur kernels) when `blind` (the kernel is
    estimated from the image), else "warm_start" (bicubic sons); otherwise "none" (random init).
    Any other value is returned as it is."""
    if model.init_weights != "auto":
        return model.init_weights
    fits = (model.depth, model.width) == (WARM_START_NETWORK["depth"], WARM_START_NETWORK["width"])
    if not (fits and is_warm_start_scale(first_step)):
        return "none"
    return "warm_start_blind" if blind else "warm_start"


def is_warm_start_scale(step: tuple[float, float] | None) -> bool:
    """Whether a scale step (vertical, horizontal) is the one the shipped warm start was trained for."""
    return step is not None and tuple(step) == WARM_START_NETWORK["scale"]


SECTIONS: dict[str, type] = get_type_hints(Config)
KEY_TO_SECTION: dict[str, str] = {
    f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
}


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
