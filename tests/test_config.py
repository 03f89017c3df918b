"""Config loading: defaults, presets, bases, overrides, YAML number traps and validation errors."""

import dataclasses
import warnings
from types import SimpleNamespace

import pytest

from zssr_tf.config import (AUTO_BY_METHOD, PRESETS_DIR, Config, KernelEstimationConfig, ModelConfig, load_config,
                             save_config)
from zssr_tf.errors import ZSSRError, ZSSRWarning


def test_paper_preset_matches_the_paper():
    config = load_config("paper")
    assert config.scale.scale_factors == ((2.0, 2.0),)
    assert (config.model.depth, config.model.width, config.model.init_variance) == (8, 64, 0.1)
    assert config.model.init_weights == "none"
    assert (config.augment.crop_size, config.augment.noise_std) == (128, 0.0)
    assert (config.train.learning_rate, config.train.min_learning_rate, config.train.max_iters) == (1e-3, 9e-6, 3000)
    assert config.train.learning_rate_schedule == "policy"
    assert config.back_projection_per_step == (10,)


def test_default_is_the_paper_from_the_warm_start_with_a_cosine_decay():
    paper, default = load_config("paper"), load_config()
    assert load_config("default") == default  # default.yaml mirrors the dataclass defaults
    assert default.model.init_weights == "warm_start"  # "auto" resolved: the shipped network fits
    assert (default.train.learning_rate_schedule, default.train.max_iters) == ("cosine", 800)
    assert dataclasses.replace(default, model=paper.model, train=paper.train) == paper  # nothing else differs
    assert dataclasses.replace(default.train, learning_rate_schedule="policy", max_iters=3000) == paper.train


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], "warm_start"),
    (["model.depth=3"], "none"),  # the shipped network does not fit
    (["model.width=32"], "none"),
    (["scale_factors=[[4.0, 4.0]]"], "none"),  # trained for x2 only
    (["scale_factors=[[2.0, 2.0], [4.0, 4.0]]", "base_change_sfs=[[2.0, 2.0]]"], "warm_start"),  # first step x2
    (["init_weights=none"], "none"),
    (["model.depth=3", "init_weights=warm_start"], "warm_start"),  # explicit: checked (and refused) at run time
])
def test_auto_init_weights_resolves_where_the_warm_start_fits(overrides, expected):
    assert load_config(None, overrides).model.init_weights == expected


def test_auto_init_weights_resolves_in_every_config():
    assert Config().model.init_weights == "warm_start"  # built directly, without load_config
    assert Config(model=ModelConfig(depth=3)).model.init_weights == "none"
    default = load_config()
    replaced = dataclasses.replace(default, model=dataclasses.replace(default.model, init_weights="auto", width=16))
    assert replaced.model.init_weights == "none"


GIVEN_KERNEL = {"augment.augment_allow_rotation": False, "test.output_flip": False, "test.back_projection_iters": (2,),
                "model.init_weights": "warm_start_blind", "train.learning_rate_schedule": "cosine",
                "train.max_iters": 400}
REAL_AUGMENTATION = {"augment.noise_std": 0.0125, "augment.augment_allow_rotation": False,
                     "augment.augment_scale_diff_sigma": 0.0, "augment.augment_shear_sigma": 0.0,
                     "augment.augment_min_scale": 0.75}
# Each shipped preset: the preset it builds on and every value it changes (its YAML's header and
# DESIGN.md §1 say why). Nothing else may differ from the base.
PRESETS = {
    "paper": ("default", {"model.init_weights": "none", "train.learning_rate_schedule": "policy",
                          "train.max_iters": 3000}),
    "fast": ("default", {"model.init_weights": "warm_start", "train.max_iters": 400}),
    "gradual_x2": ("paper", {
        "scale.scale_factors": ((1.0, 1.5), (1.5, 1.0), (1.5, 1.5), (1.5, 2.0), (2.0, 1.5), (2.0, 2.0)),
        "test.back_projection_iters": (6, 6, 8, 10, 10, 12)}),
    "given_kernel": ("paper", GIVEN_KERNEL),
    "real": ("paper", {**REAL_AUGMENTATION, "test.output_flip": False, "test.back_projection_iters": (0,)}),
    "x4": ("paper", {"scale.scale_factors": ((2.0, 2.0), (4.0, 4.0)), "scale.base_change_sfs": ((2.0, 2.0),),
                     "test.back_projection_iters": (10, 10)}),
    "blind": ("paper", {**GIVEN_KERNEL, "kernel_estimation.kernel": "estimate", "train.max_iters": 200,
                        "augment.augment_leave_as_is_probability": 1.0,
                        "augment.augment_no_interpolate_probability": 0.0, "loss.loss_map": "gradient"}),
    "blind_real": ("blind", {"kernel_estimation.estimation_shave": 0, "augment.noise_std": 0.0125,
                             "test.back_projection_iters": (0,)}),
    "photo": ("blind_real", {"augment.noise_std": "auto", "augment.jpeg_quality": "auto"}),
    "zsrgan": ("paper", {
        "scale.kernel_symmetry": False, "model.input_noise_std": 0.05,
        "augment.augment_leave_as_is_probability": 0.0, "augment.augment_no_interpolate_probability": 0.0,
        "augment.augment_min_scale": 0.05, "augment.augment_min_father_side": 64,
        "augment.augment_scale_distribution": "area", "augment.augment_scale_diff_sigma": 0.0,
        "augment.augment_shear_sigma": 0.0, "augment.augment_allow_rotation": False,
        "augment.augment_dihedral_batch": True, "train.adam_beta_1": 0.5, "train.learning_rate_schedule": "step",
        "train.learning_rate_step_every": 500, "train.learning_rate_step_factor": 0.5, "train.max_iters": 2000,
        "loss.adversarial_weight": 1.0, "loss.perceptual_weight": 1.0, "test.output_flip": False,
        "test.back_projection_iters": (0,)}),
}


def _flat(config: Config) -> dict:
    """`config` as {"section.key": value}."""
    return {f"{section}.{key}": value for section, values in dataclasses.asdict(config).items()
            for key, value in values.items()}


def test_every_shipped_preset_is_checked():
    assert sorted(PRESETS) == sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p.stem != "default")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_sets_what_it_documents_and_nothing_else(preset):
    base, changes = PRESETS[preset]
    expected = _flat(load_config(base))
    assert set(changes) <= set(expected)  # the table names real keys
    expected.update(changes)
    assert _flat(load_config(preset)) == expected


def test_gradual_preset_extends_the_paper_preset():
    config = load_config("gradual_x2")
    assert config.scale.scale_factors[0] == (1.0, 1.5) and config.scale.scale_factors[-1] == (2.0, 2.0)
    assert config.back_projection_per_step == (6, 6, 8, 10, 10, 12)
    assert config.model.depth == 8  # inherited from the base


def test_base_relative_to_file_and_override_precedence(tmp_path):
    (tmp_path / "parent.yaml").write_text("augment:\n  noise_std: 0.01\n  crop_size: 64\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nnoise_std: 0.02\n")
    config = load_config(tmp_path / "child.yaml", ["augment.crop_size=96"])
    assert config.augment.noise_std == 0.02  # child beats parent
    assert config.augment.crop_size == 96  # command line beats both


@pytest.mark.parametrize("text", ["1e-4", "1.0e-4", "0.0001", 1e-4])
def test_numbers_load_as_numbers_however_written(text):
    assert load_config(overrides=[f"learning_rate={text}"]).train.learning_rate == pytest.approx(1e-4)


def test_yaml_file_with_exponent_without_dot(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  learning_rate: 1e-4\n  min_learning_rate: 5e-7\n")
    config = load_config(tmp_path / "c.yaml")
    assert isinstance(config.train.learning_rate, float) and config.train.min_learning_rate == 5e-7


def test_scalar_scale_factor_becomes_a_pair():
    assert load_config(overrides=["scale_factors=[2, [1.5, 2]]"]).scale.scale_factors == ((2.0, 2.0), (1.5, 2.0))


def test_saved_config_reloads_equal(tmp_path):
    config = load_config("gradual_x2", ["noise_std=0.03"])
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


@pytest.mark.parametrize("override, message", [
    ("nois_std=0.1", "did you mean 'noise_std'"),
    ("train.crop_size=64", "belongs in section 'augment'"),
    ("trian.max_iters=5", "did you mean 'train'"),
    ("noise_std=lots", "must be a number"),
    ("noise_std=-0.1", "noise_std is -0.1"),
    ("max_iters=10.5", "whole number"),
    ("output_flip=maybe", "true or false"),
    ("scale_factors=[[2, 2], [1, 1]]", "must upscale"),
    ("scale_factors=[[0.5, 0.5]]", "must be >= 1"),
    ("crop_size=2", "crop_size"),
    ("precision=fp8", "precision"),
    ("back_projection_iters=[1, 2]", "2 values for 1 scale steps"),
    ("noise_std", "key=value"),
    ("learning_rate_schedule=linear", "learning_rate_schedule is 'linear'"),
    ("reconstruction_test=tiles", "reconstruction_test is 'tiles'"),
    ("reconstruction_test_pixels=100", "at least 4096"),
    ("gt_test_every=-1", "gt_test_every must be >= 0"),
    ("learning_rate_slope_range=100", "a line fit with the slope's standard error needs at least 3 tests"),
])
def test_bad_values_name_the_key_and_fix(override, message):
    with pytest.raises(ZSSRError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(overrides=[override])


def test_legacy_slope_std_needs_five_tests_in_the_fit():
    assert load_config(overrides=["legacy_slope_std=true"]).train.legacy_slope_std  # 256 // 50 = 5 tests
    with pytest.raises(ZSSRError, match="at least 5 tests"):
        load_config(overrides=["legacy_slope_std=true", "learning_rate_slope_range=200"])


def test_crop_too_small_for_scale():
    with pytest.raises(ZSSRError, match="too small for scale"):
        load_config(overrides=["scale_factors=[[8, 8]]", "crop_size=12"])


def test_missing_file_lists_presets():
    with pytest.raises(ZSSRError, match="not found.*gradual_x2"):
        load_config("no_such_config.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ZSSRError, match="bad.yaml is not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_config_is_frozen():
    with pytest.raises(Exception):
        load_config().train.max_iters = 5


def test_kernel_alignment_values_and_whole_factors_under_direct():
    assert load_config().scale.kernel_alignment == "block_centre" and load_config().scale.kernel_symmetry
    assert load_config(overrides=["kernel_alignment=direct", "scale_factors=[[2, 3]]"]).scale.kernel_alignment == "direct"
    with pytest.raises(ZSSRError, match="kernel_alignment is 'centre'; use one of"):
        load_config(overrides=["kernel_alignment=centre"])
    with pytest.raises(ZSSRError, match="whole-number factors; scale step 0 is \\[1.0, 1.5\\]"):
        load_config("gradual_x2", ["kernel_alignment=direct"])
    # After a base change at x2, a x3 step is x1.5 of its input: refused; x4 is x2: fine.
    with pytest.raises(ZSSRError, match="scale step 1 is \\[1.5, 1.5\\]"):
        load_config(overrides=["kernel_alignment=direct", "scale_factors=[[2, 2], [3, 3]]", "base_change_sfs=[[2, 2]]"])
    load_config(overrides=["kernel_alignment=direct", "scale_factors=[[2, 2], [4, 4]]", "base_change_sfs=[[2, 2]]"])
@pytest.mark.parametrize("max_iters, warns", [(120, True), (299, True), (300, False), (3000, False)])
def test_max_iters_before_the_first_policy_check_warns(max_iters, warns):
    # With min_iters 256 and a check every 60 iterations the policy first acts at iteration 299.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config("paper", [f"max_iters={max_iters}"])
    messages = [str(w.message) for w in caught if "learning-rate policy" in str(w.message)]
    assert bool(messages) == warns
    assert all(w.category is ZSSRWarning for w in caught if "learning-rate policy" in str(w.message))
    if warns:
        assert f"max_iters is {max_iters}" in messages[0] and "iteration 299" in messages[0]
        assert "min_iters=" in messages[0]  # the fix


def test_first_policy_check_is_where_the_policy_first_can_drop():
    from zssr_tf.callbacks import LearningRatePolicy
    from zssr_tf.config import TrainConfig, first_policy_check

    # (min_iters, check every, slope range, test every): the last two cases wait for enough tests.
    for min_iters, every, slope_range, test_every in ((256, 60, 4, 1), (30, 12, 4, 1), (5, 5, 4, 1), (59, 60, 4, 1),
                                                      (20, 30, 256, 50), (5, 5, 100, 10)):
        policy = LearningRatePolicy(check_every=every, min_iters=min_iters, slope_range=slope_range,
                                    run_test_every=test_every)
        policy.set_model(SimpleNamespace(optimizer=SimpleNamespace(learning_rate=_Rate())))
        policy.on_train_begin()
        for batch in range(1000):  # a rising error: the policy drops at its first check
            policy.on_train_batch_end(batch, {"reconstruction_error": float(batch)} if batch % test_every == 0 else {})
            if policy.drops:
                break
        assert policy.drops[0] == first_policy_check(TrainConfig(
            min_iters=min_iters, learning_rate_policy_check_every=every, learning_rate_slope_range=slope_range,
            run_test_every=test_every))


class _Rate:
    def __init__(self):
        self.value = 1e-3

    def __float__(self):
        return self.value

    def assign(self, value):
        self.value = value


def test_kernelgan_only_generator_settings_do_not_block_fkp():
    with pytest.raises(ZSSRError, match="generator_structure must end with a 1x1 layer"):
        load_config("blind", ["generator_structure=[61,3]"])
    assert load_config("blind", ["method=fkp", "generator_structure=[61,3]"]).kernel_estimation.method == "fkp"


@pytest.mark.parametrize("overrides, method", [([], "kernelgan"), (["method=fkp"], "fkp"),
                                               (["method=kernelgan", "estimation_iters=auto"], "kernelgan")])
def test_auto_estimation_settings_resolve_per_method(overrides, method):
    for config in (load_config("blind", overrides).kernel_estimation, KernelEstimationConfig(method=method)):
        assert config.estimation_iters == AUTO_BY_METHOD["estimation_iters"][method]
        assert config.estimation_runs == AUTO_BY_METHOD["estimation_runs"][method]
        assert config.estimate_variance_scale == AUTO_BY_METHOD["estimate_variance_scale"][method]
    explicit = load_config("blind", [*overrides, "estimation_iters=1500", "estimation_runs=2",
                                     "estimate_variance_scale=1"]).kernel_estimation
    assert (explicit.estimation_iters, explicit.estimation_runs, explicit.estimate_variance_scale) == (1500, 2, 1.0)


@pytest.mark.parametrize("override, message", [
    ("estimation_iters=lots", "estimation_iters must be a whole number or auto"),
    ("estimation_iters=0", "estimation_iters must be a whole number >= 1 or auto"),
    ("estimation_iters=12.5", "estimation_iters must be a whole number or auto"),
    ("estimation_runs=0", "estimation_runs must be a whole number >= 1 \\(1 in the paper\\) or auto \\(kernelgan 5, fkp 3\\)"),
    ("estimation_runs=many", "estimation_runs must be a whole number or auto"),
    ("estimate_variance_scale=wide", "estimate_variance_scale must be a number or auto"),
    ("estimate_variance_scale=0", "estimate_variance_scale must be in \\[0.1, 1\\]"),
    ("estimate_variance_scale=1.5", "estimate_variance_scale must be in \\[0.1, 1\\]"),
])
def test_estimation_settings_other_than_a_number_or_auto_are_refused(override, message):
    with pytest.raises(ZSSRError, match=message):
        load_config("blind", [override])
