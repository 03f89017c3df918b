"""The MATLAB-compatible resize against the MATLAB-made LR images of Set5 and Set14."""

import numpy as np
import pytest

from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.resize import fix_scale_and_shape, imresize


def psnr_8bit(a: np.ndarray, b: np.ndarray) -> float:
    a8, b8 = (np.round(np.clip(x, 0, 1) * 255) for x in (a, b))
    return 10 * np.log10(255**2 / np.mean((a8 - b8) ** 2))


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_downscale_matches_matlab(shared_data_dir, scale):
    scores = []
    for hr_path in sorted(shared_data_dir.glob("set*/hr/*.png")):
        lr, _, _ = read_image(hr_path.parent.parent / f"lr_x{scale}" / hr_path.name)
        hr, _, _ = read_image(hr_path)
        hr = hr[: scale * lr.shape[0], : scale * lr.shape[1]]
        scores.append(psnr_8bit(imresize(hr, 1 / scale), lr))
    # 19 with the full Set5/Set14, 6 (Set5 and the gray bridge) with the shipped subset.
    assert len(scores) == len(list(shared_data_dir.glob("set*/hr/*.png"))) >= 6
    print(f"x{scale}: mean {np.mean(scores):.2f} dB, min {np.min(scores):.2f} dB")
    assert np.mean(scores) >= 55.0
    assert np.min(scores) >= 48.0


def test_scale_and_shape_both_given():
    """A 9-pixel father at sf 2 has a 5-pixel son; back up it must be 9 pixels at scale exactly 2."""
    assert fix_scale_and_shape((9, 9), scale_factor=0.5)[1] == (5, 5)
    son = imresize(np.random.default_rng(0).random((9, 9, 3)), scale_factor=0.5)
    up = imresize(son, scale_factor=2, output_shape=(9, 9))
    assert up.shape == (9, 9, 3)
    # The first 8 pixels are at exactly the same positions as a 10-pixel upscale's first 8.
    np.testing.assert_allclose(up[:7, :7], imresize(son, scale_factor=2)[:7, :7], atol=1e-6)


def test_constant_and_linear_images_are_preserved():
    constant = np.full((20, 30, 3), 0.3, np.float32)
    np.testing.assert_allclose(imresize(constant, 0.5), 0.3, atol=1e-6)
    np.testing.assert_allclose(imresize(constant, (1.5, 2.0)), 0.3, atol=1e-6)
    # Bicubic (a = -0.5) reproduces a linear ramp exactly away from the mirrored borders.
    ramp = np.tile(np.arange(40, dtype=np.float32), (8, 1))
    up = imresize(ramp, scale_factor=(1, 2))
    expected = (np.arange(80) + 0.5) / 2 - 0.5  # output pixel centres in input coordinates
    np.testing.assert_allclose(up[0, 4:-4], expected[4:-4], atol=1e-4)


def test_non_square_output_shape_and_grayscale():
    gray = np.random.default_rng(1).random((10, 12)).astype(np.float32)
    assert imresize(gray, scale_factor=(1.5, 2.0)).shape == (15, 24)


def test_numeric_kernel_refuses_upscaling_and_an_offset():
    """A numeric kernel's grid is set by its alignment, not by `offset`: a non-zero one is an
    error naming the fix rather than silently ignored."""
    image = np.random.default_rng(0).random((20, 20, 3)).astype(np.float32)
    kernel = np.full((3, 3), 1 / 9)
    assert imresize(image, 0.5, kernel=kernel, offset=(0.0, 0.0)).shape == (10, 10, 3)
    with pytest.raises(ZSSRError, match="align_kernel and pass offset=\\(0, 0\\)"):
        imresize(image, 0.5, kernel=kernel, offset=(0.25, 0.0))
    with pytest.raises(ZSSRError, match="can only downscale"):
        imresize(image, 2, kernel=kernel)
