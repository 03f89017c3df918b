"""Checks made before training: ground truth against the input and the steps, settings."""

import numpy as np
import pytest

from zssr_tf.checks import check_ground_truth, check_inputs, final_output_shape, setting_warnings
from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError


@pytest.mark.parametrize("overrides, expected", [
    ([], (40, 60)),
    (["scale_factors=[[1.5, 1.5], [2, 2]]"], (40, 60)),
    (["scale_factors=[[2, 2], [4, 4]]", "base_change_sfs=[[2, 2]]"], (80, 120)),
    (["scale_factors=[[1.5, 2]]"], (30, 60)),
    (["scale_factors=[[3, 3]]"], (60, 90)),
])
def test_final_output_shape_follows_the_steps(overrides, expected):
    assert final_output_shape((20, 30), load_config(overrides=overrides)) == expected


def test_ground_truth_within_the_shave_passes_and_beyond_fails():
    config = load_config()
    image = np.zeros((20, 30, 3), np.float32)
    check_ground_truth(np.zeros((41, 61, 3)), image.shape, config)  # an odd HR side: modcrop rounding
    with pytest.raises(ZSSRError, match=r"37x40 pixels, but the x2 output of the 30x20 input is 60x40"):
        check_ground_truth(np.zeros((40, 37, 3)), image.shape, config)


def test_gray_ground_truth_for_rgb_input_fails():
    with pytest.raises(ZSSRError, match="is gray but the input is RGB"):
        check_inputs(load_config(), np.zeros((20, 30, 3)), gt=np.zeros((40, 60)))


def test_learning_rate_warning_only_far_outside_the_range():
    assert setting_warnings(load_config(overrides=["learning_rate=1e-3"])) == []
    assert setting_warnings(load_config(overrides=["learning_rate=5e-2"])) == []  # outside, but not far
    assert setting_warnings(load_config(overrides=["learning_rate=1e-7"]))[0].endswith("not move")
    assert setting_warnings(load_config(overrides=["learning_rate=50"]))[0].endswith("diverge")
