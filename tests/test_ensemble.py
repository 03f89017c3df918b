import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from zssr_tf.degradation import degrade
from zssr_tf.ensemble import back_projection, ensemble_transforms, geometric_self_ensemble, reversed_axes
from zssr_tf.image_io import read_image
from zssr_tf.kernels import align_kernel, gaussian_kernel, upscale_offset
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


def test_ensemble_transforms_follow_kernel_symmetries():
    assert ensemble_transforms((2.0, 2.0), False, tuple(range(8))) == list(range(8))
    assert ensemble_transforms((2.0, 2.0), False, (0, 2, 4, 6)) == [0, 2, 4, 6]
    assert ensemble_transforms((2.0, 3.0), False, tuple(range(8))) == [0, 2, 4, 6]
    assert ensemble_transforms((2.0, 2.0), True, (0,)) == list(range(8))  # output_flip: all, as before


@pytest.mark.parametrize("alignment", ["block_centre", "direct"])
@pytest.mark.parametrize("sf, shape", [((2.0, 2.0), (20, 28)), ((3.0, 3.0), (30, 42)), ((2.0, 3.0), (20, 42))])
def test_identity_network_ensemble_is_bicubic_under_both_conventions(lr_crop, alignment, sf, shape):
    """Each variant is upscaled on the grid that lands back on the convention's HR positions, so
    identity networks give the plain upscale on that grid from all transforms."""
    lr = lr_crop[:10, :14]
    out = geometric_self_ensemble(lambda x: x, lr, sf, shape, back_projection_iters=0, alignment=alignment)
    expected = np.clip(imresize(lr, sf, shape, offset=upscale_offset(sf, alignment)), 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    if alignment == "direct":
        # The grids differ by (s-1)/2 HR pixels: the check above can tell them apart.
        assert np.abs(expected - np.clip(imresize(lr, sf, shape), 0, 1)).max() > 0.01


def test_direct_phase_handling_is_needed():
    """Upscaling a mirrored LR image on the unmirrored direct grid misplaces it by s - 1 HR pixels."""
    lr = np.random.default_rng(0).random((12, 12, 1)).astype(np.float32)
    offset = upscale_offset((2, 2), "direct")
    right = imresize(lr, 2, offset=offset)
    wrong = np.fliplr(imresize(np.fliplr(lr), 2, offset=offset))
    fixed = np.fliplr(imresize(np.fliplr(lr), 2, offset=upscale_offset((2, 2), "direct", reversed_axes(4))))
    assert np.abs(wrong - right).max() > 0.1
    np.testing.assert_allclose(fixed, right, atol=1e-6)


def test_default_ensemble_is_unchanged(lr_crop):
    """The block-centre path with its defaults is the ensemble as it was before alignments
    existed (written out here with plain imresize calls): bit-identical."""
    from zssr_tf.augment import dihedral, undo_dihedral

    lr = lr_crop[:16, :20]
    predict = lambda x: np.clip(x * 1.1 - 0.05, 0, 1)  # noqa: E731  (any network-like function)
    sr_variants = []
    for k in range(8):
        variant_shape, variant_sf = ((32, 40), (2.0, 2.0)) if k % 2 == 0 else ((40, 32), (2.0, 2.0))
        up = imresize(dihedral(lr, k), scale_factor=variant_sf, output_shape=variant_shape, kernel="cubic")
        sr = undo_dihedral(np.clip(predict(up[None])[0], 0, 1), k)
        for _ in range(3):
            down = imresize(sr, scale_factor=(0.5, 0.5), output_shape=lr.shape[:2], kernel="cubic")
            sr = np.clip(sr + imresize(lr - down, scale_factor=(2.0, 2.0), output_shape=sr.shape[:2]), 0, 1)
        sr_variants.append(sr)
    median = np.median(np.stack(sr_variants), axis=0).astype(np.float32)
    for _ in range(3):
        down = imresize(median, scale_factor=(0.5, 0.5), output_shape=lr.shape[:2], kernel="cubic")
        median = np.clip(median + imresize(lr - down, scale_factor=(2.0, 2.0), output_shape=median.shape[:2]), 0, 1)
    out = geometric_self_ensemble(predict, lr, (2.0, 2.0), (32, 40), back_projection_iters=3)
    np.testing.assert_array_equal(out, median)


def test_back_projection_with_direct_kernel_lowers_reconstruction_error(shared_data_dir):
    """With the direct-aligned kernel and upscale grid, ||down(SR) - LR|| falls at every step."""
    hr, _, _ = read_image(shared_data_dir / "set5/hr/bird.png")
    hr = hr[60:156, 80:176]
    kernel = gaussian_kernel(21, 1.5)
    lr = degrade(hr, kernel, 2, "direct")
    aligned, offset = align_kernel(kernel, (2, 2), "direct"), upscale_offset((2, 2), "direct")
    sr = np.clip(imresize(lr, 2, offset=offset), 0, 1)

    def error(image):
        return float(np.sqrt(np.mean((imresize(image, 0.5, kernel=aligned) - lr) ** 2)))

    errors = [error(sr)]
    for _ in range(4):
        sr = back_projection(sr, lr, (2, 2), aligned, "cubic", offset)
        errors.append(error(sr))
    assert errors[-1] < 0.5 * errors[0]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
