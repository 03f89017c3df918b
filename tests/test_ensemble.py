import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from zssr_tf.ensemble import back_projection, ensemble_transforms, geometric_self_ensemble
from zssr_tf.resize import imresize


@pytest.fixture
def lr_crop(shared_data_dir) -> np.ndarray:
    """A 48x48 crop of Set5 baby at x2 LR, float32 in [0, 1]."""
    image = np.asarray(Image.open(shared_data_dir / "set5" / "lr_x2" / "baby.png"), dtype=np.float32) / 255
    return image[100:148, 100:148]


def _reconstruction_mse(sr, lr):
    return float(np.mean((imresize(sr, 0.5) - lr) ** 2))


def test_ensemble_transforms():
    assert ensemble_transforms((2.0, 2.0), True) == list(range(8))
    assert ensemble_transforms((1.5, 2.0), True) == [0, 2, 4, 6]
    assert ensemble_transforms((2.0, 2.0), False) == [0]
    assert ensemble_transforms((1.5, 2.0), False) == [0]


def test_back_projection_lowers_reconstruction_error(lr_crop):
    rng = np.random.default_rng(0)
    blurred = ndimage.gaussian_filter(imresize(lr_crop, 2), (1.5, 1.5, 0))
    sr = np.clip(blurred + rng.normal(0, 0.03, blurred.shape), 0, 1).astype(np.float32)
    errors = [_reconstruction_mse(sr, lr_crop)]
    for _ in range(4):
        sr = back_projection(sr, lr_crop, (2, 2))
        assert sr.shape == (96, 96, 3) and sr.min() >= 0 and sr.max() <= 1
        errors.append(_reconstruction_mse(sr, lr_crop))
    assert errors[1] < 0.2 * errors[0]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors


def test_identity_network_ensemble_is_bicubic(lr_crop):
    """Every dihedral transform commutes with a square-sf bicubic resize, so all 8 variants agree."""
    lr = lr_crop[:10, :14]
    shapes = []

    def identity(batch):
        shapes.append(batch.shape)
        return batch

    out = geometric_self_ensemble(identity, lr, (2.0, 2.0), (20, 28), back_projection_iters=0)
    assert out.dtype == np.float32 and out.shape == (20, 28, 3)
    np.testing.assert_allclose(out, np.clip(imresize(lr, 2), 0, 1), atol=1e-5)
    assert shapes == [(1, 20, 28, 3), (1, 28, 20, 3)] * 4


def test_non_square_sf_output_shape(lr_crop):
    lr = lr_crop[:10, :12]
    out = geometric_self_ensemble(lambda x: x, lr, (1.5, 2.0), (15, 24), back_projection_iters=0)
    assert out.shape == (15, 24, 3)
    np.testing.assert_allclose(out, np.clip(imresize(lr, (1.5, 2.0)), 0, 1), atol=1e-5)


def test_tiled_inference_is_seamless():
    """Tiles read with a margin of `depth` pixels reproduce the untiled network output."""
    import tensorflow as tf

    from zssr_tf.ensemble import tiled_predict
    from zssr_tf.model import build_zssr_net

    model = build_zssr_net(depth=4, width=8, channels=3, init_variance=1.0)
    predict = lambda x: model(tf.constant(x), training=False).numpy()  # noqa: E731
    batch = np.random.default_rng(0).random((1, 70, 90, 3)).astype(np.float32)
    whole = predict(batch)
    tiled = tiled_predict(predict, tile_size=32, margin=4)(batch)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # A margin below the receptive field leaves visible seams: the check can fail.
    assert np.abs(tiled_predict(predict, tile_size=32, margin=1)(batch) - whole).max() > 1e-4
