"""Typed, frozen configuration loaded from YAML plus `key=value` overrides, validated once.

A config file has one mapping per section (`model`, `scale`, `augment`, `train`, `loss`, `test`,
`kernel_estimation`, `sequence`, `run`) whose keys keep the paper's names (`scale_factors`,
`noise_std`, `crop_size`, ...). Every key can also be given without its section (`noise_std: 0.02`,
`noise_std=0.02` on the command line) because key names are unique across sections. A file may start from another with
`base: other.yaml` (a path relative to the file, or the name of a shipped preset).

The package: `schema` (the dataclasses and their allowed values), `loading` (YAML, `base:`,
overrides, presets, save), `validation`, `derived` (numbers that follow from the settings) and
`labels` (settings in words and file names). Its public names are importable from here.
"""

from zssr_tf.config.derived import first_policy_check, relative_scale_factors, scale_step_bases
from zssr_tf.config.labels import describe_schedule, format_scale, output_stem
from zssr_tf.config.loading import (PRESETS_DIR, build_config, load_config, parse_overrides, read_yaml_mapping,
                                    save_config, suggest)
from zssr_tf.config.schema import (AUTO_BY_METHOD, CARRY_OVER_MODES, KEY_TO_SECTION, RECONSTRUCTION_TEST_MODES,
                                   SECTIONS, WARM_START_NETWORK, AugmentConfig, Config, KernelEstimationConfig,
                                   LossConfig, ModelConfig, RunConfig, ScaleConfig, SequenceConfig, TestConfig,
                                   TrainConfig, is_warm_start_scale, resolve_init_weights)
from zssr_tf.config.validation import validate

__all__ = [
    "AUTO_BY_METHOD", "CARRY_OVER_MODES", "KEY_TO_SECTION", "PRESETS_DIR", "RECONSTRUCTION_TEST_MODES", "SECTIONS",
    "WARM_START_NETWORK", "AugmentConfig", "Config", "KernelEstimationConfig", "LossConfig", "ModelConfig",
    "RunConfig", "ScaleConfig", "SequenceConfig", "TestConfig", "TrainConfig", "build_config", "describe_schedule",
    "first_policy_check", "format_scale", "is_warm_start_scale", "load_config", "output_stem", "parse_overrides",
    "read_yaml_mapping", "relative_scale_factors", "resolve_init_weights", "save_config", "scale_step_bases", "suggest", "validate",
]
