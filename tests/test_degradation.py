"""The reference blur + subsample of degraded benchmark sets, and the set generator script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import io as scipy_io

from zssr_tf.augment import father_to_son
from zssr_tf.degradation import degrade, random_anisotropic_kernel
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.kernels import align_kernel, gaussian_kernel, load_kernel

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("alignment, first", [("direct", 0.0), ("block_centre", 0.5)])
def test_each_convention_puts_lr_pixel_i_where_it_says(alignment, first):
    """On a ramp any symmetric kernel returns the ramp's value at the LR pixel's HR position:
    s*i (direct) or s*i + (s-1)/2 (block centre)."""
    ramp = np.add.outer(np.arange(60.0), 3 * np.arange(60.0)) / 300
    lr = degrade(ramp, gaussian_kernel(9, 1.2), 2, alignment)
    positions = 2 * np.arange(30) + first
    np.testing.assert_allclose(lr[5:-5, 5:-5], (np.add.outer(positions, 3 * positions) / 300)[5:-5, 5:-5],
                               atol=1e-6)


def test_impulses_land_where_each_convention_says():
    """A centred kernel and an HR impulse: under direct, one at (10, 14) peaks on LR pixel (5, 7)
    and one at (11, 15) is shared equally by LR pixels 5 and 6 on each axis; under block centre
    LR pixel (5, 7) sits at HR (10.5, 14.5), so both impulses give it the same value."""
    def impulse(y, x):
        image = np.zeros((32, 32))
        image[y, x] = 1.0
        return image

    kernel = gaussian_kernel(7, 0.8)
    direct = degrade(impulse(10, 14), kernel, 2, "direct")
    assert np.unravel_index(np.argmax(direct), direct.shape) == (5, 7)
    between = degrade(impulse(11, 15), kernel, 2, "direct")
    assert between[5, 7] == pytest.approx(between[6, 8], rel=1e-5)
    assert between[5, 7] == pytest.approx(between[5, 8], rel=1e-5)
    first, second = (degrade(impulse(y, x), kernel, 2, "block_centre") for y, x in ((10, 14), (11, 15)))
    assert first[5, 7] == pytest.approx(second[5, 7], rel=1e-3)
    assert first[5, 7] > 2 * max(first[4, 7], first[5, 6])


def test_non_square_whole_factors_and_fractional_refusal():
    image = np.random.default_rng(0).random((24, 36, 3))
    assert degrade(image, gaussian_kernel(7, 1.0), (2, 3), "direct").shape == (12, 12, 3)
    with pytest.raises(ZSSRError, match="whole-number"):
        degrade(image, gaussian_kernel(7, 1.0), 1.5, "direct")


@pytest.mark.parametrize("alignment", ["direct", "block_centre"])
@pytest.mark.parametrize("kernel", [gaussian_kernel(21, 2.0), gaussian_kernel(11, 0.8, 2.5, 0.7)])
def test_pipeline_son_equals_generator(shared_data_dir, alignment, kernel):
    """A son made by the training pipeline from an HR crop is the crop degraded by the
    generator's function with the same convention (odd crop sizes included)."""
    hr, _, _ = read_image(shared_data_dir / "set5/hr/bird.png")
    for crop in (hr[40:168, 60:188], hr[11:82, 3:100]):
        son = father_to_son(crop, (2, 2), align_kernel(kernel, (2, 2), alignment), 0.0, np.random.default_rng(0))
        np.testing.assert_allclose(son, degrade(crop, kernel, 2, alignment), atol=1e-6)


def test_random_anisotropic_kernels_are_seeded_and_in_range():
    a, params = random_anisotropic_kernel(np.random.default_rng(3))
    b, _ = random_anisotropic_kernel(np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (11, 11) and a.sum() == pytest.approx(1) and a.min() > 0
    for i in (1, 2):  # DIV2KRK's draws are the covariance's eigenvalues: variances, not stds
        assert 0.6 <= params[f"variance_{i}"] <= 5
        assert params[f"sigma_{i}"] == pytest.approx(np.sqrt(params[f"variance_{i}"]))
    clean = gaussian_kernel(11, params["sigma_1"], params["sigma_2"], params["angle"])
    ratio = a / clean
    assert ratio.max() / ratio.min() <= 1.25 / 0.75 + 1e-9  # at most 25% multiplicative noise per tap
    # The kernel's covariance (before the tap noise) has the drawn variances as eigenvalues.
    wide = gaussian_kernel(41, params["sigma_1"], params["sigma_2"], params["angle"])  # tails kept
    yy, xx = np.mgrid[-20:21, -20:21]
    covariance = np.array([[np.sum(wide * yy * yy), np.sum(wide * yy * xx)],
                           [np.sum(wide * yy * xx), np.sum(wide * xx * xx)]])
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(covariance)),
                               sorted([params["variance_1"], params["variance_2"]]), rtol=1e-6)
    sigmas = np.array([params[f"sigma_{i}"] for _, params in
                       (random_anisotropic_kernel(np.random.default_rng(s)) for s in range(200)) for i in (1, 2)])
    assert sigmas.min() >= np.sqrt(0.6) and sigmas.max() <= np.sqrt(5)
    assert np.mean(sigmas**2) == pytest.approx(2.8, abs=0.2)  # variances uniform on [0.6, 5]: mean 2.8


def test_make_degraded_set_script(tmp_path, shared_data_dir):
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    hr, _, _ = read_image(shared_data_dir / "set5/hr/head.png")
    from zssr_tf.image_io import ImageInfo, write_image

    write_image(hr_dir / "head.png", hr[:64, :48], ImageInfo("head.png", 8, 3, 64, 48))
    out = tmp_path / "out"
    command = [sys.executable, str(REPO / "experiments/make_degraded_set.py"), str(hr_dir), str(out),
               "--scale", "2", "--alignment", "direct", "--variance", "2.0", "--noise", "0.01", "--seed", "4"]
    subprocess.run(command, check=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest[0]["alignment"] == "direct" and manifest[0]["seed"] == 4
    assert manifest[0]["sigma_1"] == pytest.approx(np.sqrt(2.0)) and manifest[0]["variance_1"] == pytest.approx(2.0)
    lr, _, info = read_image(out / "lr_x2/head.png")
    assert lr.shape == (32, 24, 3) and info.bit_depth == 8
    kernel = load_kernel(out / "kernels/head.mat")
    np.testing.assert_allclose(kernel, np.load(out / "kernels/head.npy"))
    assert set(scipy_io.loadmat(out / "kernels/head.mat")) >= {"Kernel"}
    clean = degrade(hr[:64, :48], kernel, 2, "direct")
    noise = lr - clean
    assert 0.005 < noise.std() < 0.015  # the requested noise (8-bit rounding adds ~0.001)


def test_make_degraded_set_grid_of_noise_and_jpeg(tmp_path, shared_data_dir):
    """Every noise x quality cell gets --per-cell images, JPEGs at their quality, all in the manifest."""
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        from make_degraded_set import main as make_set_main
    finally:
        sys.path.remove(str(REPO / "experiments"))
    from zssr_tf.image_io import ImageInfo, write_image
    from zssr_tf.photo import read_jpeg_facts

    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    for name in ("head", "bird", "baby"):
        hr, _, _ = read_image(shared_data_dir / f"set5/hr/{name}.png")
        write_image(hr_dir / f"{name}.png", hr[:96, :96], ImageInfo(f"{name}.png", 8, 3, 96, 96))
    out = tmp_path / "out"
    assert make_set_main([str(hr_dir), str(out), "--random-anisotropic", "--noise-levels", "0", "5",
                          "--jpeg-qualities", "none", "50", "--seed", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    cells = [(row["noise_level"], row["jpeg_quality"]) for row in manifest]
    assert set(cells) == {(0.0, 50), (0.0, "none"), (5.0, 50), (5.0, "none")}
    assert all(cells.count(cell) == 2 for cell in set(cells)) and len({row["image"] for row in manifest}) == 3
    for row in manifest:
        facts = read_jpeg_facts(out / row["lr"])
        assert (facts.quality if facts else "none") == row["jpeg_quality"]
        assert row["noise_std"] == pytest.approx(row["noise_level"] / 255)
        assert (out / row["kernel_npy"]).is_file()
