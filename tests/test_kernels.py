"""Kernel files, validation and re-centring: a given kernel degrades a test pattern as expected."""

import numpy as np
import pytest
from scipy import io as scipy_io
from scipy import ndimage

from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, kernel_distance, load_kernel, recenter_kernel
from zssr_tf.resize import imresize


def test_mat_and_npy_files_load(tmp_path):
    kernel = gaussian_kernel(13, 1.5, 2.5, angle=0.4)
    scipy_io.savemat(tmp_path / "k.mat", {"Kernel": kernel})
    np.save(tmp_path / "k.npy", kernel)
    np.testing.assert_allclose(load_kernel(tmp_path / "k.mat"), kernel)
    np.testing.assert_allclose(load_kernel(tmp_path / "k.npy"), kernel)


@pytest.mark.parametrize("variables", [{"kernel": "k"}, {"Kernel": "k", "other": "k"},
                                       {"kernel": "k", "k2": "k"}, {"my_blur": "k", "label": "text"},
                                       {"my_blur": "k", "weights": "vector"}])
def test_mat_kernel_variable_rules(tmp_path, variables):
    """`Kernel`, else `kernel`, else the only 2-D numeric variable, whatever its name."""
    kernel = gaussian_kernel(9, 1.1, 2.0, angle=0.3)
    values = {"k": kernel, "text": "not a kernel", "vector": np.ones(5) / 5}
    scipy_io.savemat(tmp_path / "k.mat", {name: values[v] for name, v in variables.items()})
    np.testing.assert_allclose(load_kernel(tmp_path / "k.mat"), kernel)


def test_mat_with_several_candidates_names_them(tmp_path):
    scipy_io.savemat(tmp_path / "k.mat", {"k_x2": gaussian_kernel(9, 1.0), "k_x4": gaussian_kernel(17, 2.0)})
    with pytest.raises(ZSSRError, match=r"several 2-D variables \['k_x2', 'k_x4'\].*name it Kernel"):
        load_kernel(tmp_path / "k.mat")


@pytest.mark.parametrize("content, message", [
    ({"K": np.ones((3, 3, 3)) / 27}, "no 2-D numeric variable"),
    ({"Kernel": np.ones((3, 3, 3)) / 27}, "2-D"),
    ({"Kernel": np.ones((3, 3))}, "sums to 9"),
    ({"Kernel": np.zeros((5, 5))}, "all zeros"),
    ({"Kernel": -gaussian_kernel(5, 1.0)}, "sums to -1"),
])
def test_bad_kernel_files_are_refused(tmp_path, content, message):
    scipy_io.savemat(tmp_path / "bad.mat", content)
    with pytest.raises(ZSSRError, match=message):
        load_kernel(tmp_path / "bad.mat")


def test_zero_or_negative_sum_message_does_not_suggest_dividing(tmp_path):
    for kernel in (np.zeros((5, 5)), -gaussian_kernel(5, 1.0), np.array([[1.0, -1.0]])):
        np.save(tmp_path / "k.npy", kernel)
        with pytest.raises(ZSSRError) as err:
            load_kernel(tmp_path / "k.npy")
        assert "kernel.sum()" not in str(err.value) and "normalise" not in str(err.value)


def test_missing_and_unreadable_kernel_files(tmp_path):
    with pytest.raises(ZSSRError, match="not found"):
        load_kernel(tmp_path / "none.mat")
    (tmp_path / "junk.mat").write_text("not a mat file")
    with pytest.raises(ZSSRError, match="cannot be read"):
        load_kernel(tmp_path / "junk.mat")


def test_recentred_kernel_puts_outputs_at_block_centres():
    """On a linear ramp, any symmetric kernel must give the value at each sf x sf block centre."""
    ramp = np.add.outer(np.arange(64.0), 2 * np.arange(64.0)).astype(np.float32) / 200
    for kernel in (gaussian_kernel(13, 1.7), gaussian_kernel(12, 1.0), bicubic_kernel(2)):
        small = imresize(ramp, 0.5, kernel=recenter_kernel(kernel, (2, 2)))
        centres = np.arange(32) * 2 + 0.5
        expected = np.add.outer(centres, 2 * centres) / 200
        np.testing.assert_allclose(small[6:-6, 6:-6], expected[6:-6, 6:-6], atol=2e-4)


def test_off_centre_kernel_is_recentred():
    kernel = np.zeros((15, 15))
    kernel[2:7, 3:8] = gaussian_kernel(5, 1.0)  # centre of mass far from the middle
    image = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    centred = np.zeros((15, 15))
    centred[5:10, 5:10] = gaussian_kernel(5, 1.0)
    a = imresize(image, 0.5, kernel=recenter_kernel(kernel, 2))
    b = imresize(image, 0.5, kernel=recenter_kernel(centred, 2))
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_numeric_bicubic_kernel_reproduces_matlab_lr(shared_data_dir):
    hr, _, _ = read_image(shared_data_dir / "set5/hr/butterfly.png")
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    small = imresize(hr, 0.5, kernel=recenter_kernel(bicubic_kernel(2), (2, 2)))
    inner = (slice(8, -8), slice(8, -8))
    mse = np.mean((np.round(small[inner] * 255) - np.round(lr[inner] * 255)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 50


def test_gaussian_kernel_attenuates_stripes_as_theory_says():
    """A Gaussian of std s scales a cosine of period P by exp(-2 pi^2 s^2 / P^2)."""
    period = 8
    x = np.arange(128)
    stripes = np.tile(0.5 + 0.5 * np.cos(2 * np.pi * x / period), (128, 1)).astype(np.float32)
    sigmas = (0.5, 1.0, 2.0)
    contrast = [np.ptp(imresize(stripes, 0.5, kernel=recenter_kernel(gaussian_kernel(21, s), 2))[8:-8, 8:-8])
                for s in sigmas]
    for sigma, measured in zip(sigmas[1:], contrast[1:]):
        expected = np.exp(-2 * np.pi**2 * (sigma**2 - sigmas[0] ** 2) / period**2)
        assert measured / contrast[0] == pytest.approx(expected, rel=0.03)


def test_kernel_distance_ignores_scale_padding_and_shift_but_not_shape():
    kernel = gaussian_kernel(13, 2.0, 0.9, 0.4)
    moved = np.pad(3 * kernel, ((0, 4), (2, 6)))  # other sum, other size, centre moved off the middle
    assert kernel_distance(kernel, moved) < 1e-4
    # A sub-pixel shift (cubic spline, lossy on so narrow a kernel) is nearer than a small change of shape.
    shifted = ndimage.shift(np.pad(kernel, 3), (0.3, -0.4), order=3)
    assert kernel_distance(kernel, shifted) < 0.5 * kernel_distance(kernel, gaussian_kernel(13, 2.0, 1.0, 0.4))
    wider = gaussian_kernel(13, 2.5, 0.9, 0.4)
    assert kernel_distance(kernel, wider) == pytest.approx(kernel_distance(wider, kernel))
    assert kernel_distance(kernel, wider) > 0.01
    # Farther from an isotropic kernel than a nearer ellipse is.
    round_kernel = gaussian_kernel(13, 1.5)
    assert kernel_distance(round_kernel, gaussian_kernel(13, 1.6, 1.4)) < kernel_distance(round_kernel, kernel)
