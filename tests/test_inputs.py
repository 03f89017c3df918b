"""Checks of what ZSSR trains on: ground truth against the input and the steps, settings."""

import numpy as np
import pytest

from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.inputs import check_ground_truth, setting_warnings


def test_ground_truth_within_the_shave_passes_and_beyond_fails():
    config = load_config()
    image = np.zeros((20, 30, 3), np.float32)
    check_ground_truth(np.zeros((41, 61, 3)), image.shape, config)  # an odd HR side: modcrop rounding
    with pytest.raises(ZSSRError, match=r"37x40 pixels, but the x2 output of the 30x20 input is 60x40"):
        check_ground_truth(np.zeros((40, 37, 3)), image.shape, config)


def test_learning_rate_warning_only_far_outside_the_range():
    assert setting_warnings(load_config(overrides=["learning_rate=1e-3"])) == []
    assert setting_warnings(load_config(overrides=["learning_rate=5e-2"])) == []  # outside, but not far
    assert setting_warnings(load_config(overrides=["learning_rate=1e-7"]))[0].endswith("not move")
    assert setting_warnings(load_config(overrides=["learning_rate=50"]))[0].endswith("diverge")
