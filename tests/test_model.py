import math

import keras
import numpy as np
import pytest

from zssr_tf.model import build_zssr_net


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def test_any_spatial_size_keeps_shape():
    model = build_zssr_net(depth=3, width=8, channels=3)
    for shape in [(17, 23), (8, 8), (31, 5)]:
        x = np.random.default_rng(0).random((2, *shape, 3)).astype(np.float32)
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == x.shape
        assert not np.allclose(y, x)


def test_zero_residual_layer_is_identity():
    model = build_zssr_net(depth=3, width=8, channels=3)
    residual = model.get_layer("residual")
    residual.set_weights([np.zeros_like(w) for w in residual.get_weights()])
    x = np.random.default_rng(0).random((1, 17, 23, 3)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)


def test_init_std_follows_fan_in():
    keras.utils.set_random_seed(0)
    init_variance = 0.1
    model = build_zssr_net(depth=3, width=64, channels=3, init_variance=init_variance)
    first, hidden, last = (keras.ops.convert_to_numpy(c.kernel) for c in _convs(model))
    assert np.std(hidden) == pytest.approx(math.sqrt(init_variance / (9 * 64)), rel=0.1)
    assert np.std(first) == pytest.approx(math.sqrt(init_variance / (9 * 3)), rel=0.1)
    assert np.std(last) == pytest.approx(math.sqrt(init_variance / (9 * 64)), rel=0.1)
    assert abs(np.mean(hidden)) < 0.1 * np.std(hidden)


def test_mixed_bfloat16_policy():
    model = build_zssr_net(depth=3, width=8, channels=3, dtype_policy="mixed_bfloat16")
    convs = _convs(model)
    for layer in convs[:-1]:
        assert layer.compute_dtype == "bfloat16"
        assert layer.variable_dtype == "float32"
    assert convs[-1].compute_dtype == "float32"
    hidden = keras.Model(model.input, convs[-2].output)
    x = np.random.default_rng(0).random((1, 12, 12, 3)).astype(np.float32)
    assert keras.backend.standardize_dtype(hidden(x).dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(model(x).dtype) == "float32"


def test_no_biases():
    model = build_zssr_net(depth=3, width=8, channels=3)
    convs = _convs(model)
    assert len(convs) == 3
    assert all(not layer.use_bias and len(layer.weights) == 1 for layer in convs)
    assert len(model.trainable_weights) == 3
    assert model.count_params() == 9 * (3 * 8 + 8 * 8 + 8 * 3)
