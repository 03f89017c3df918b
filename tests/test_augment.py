import math

import numpy as np
import pytest
from scipy.optimize import least_squares

from zssr_tf.augment import (FatherSampler, dihedral, father_to_son, interpolate_son, kernel_symmetries,
                             random_crop, undo_dihedral)
from zssr_tf.config import AugmentConfig
from zssr_tf.degradation import random_anisotropic_kernel
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, is_isotropic

AFFINE_ONLY = dict(augment_leave_as_is_probability=0.0, augment_no_interpolate_probability=0.0)


def _smooth(y, x):
    """A smooth test pattern in [0.3, 0.7], defined at any (fractional) pixel position."""
    return 0.5 + 0.2 * np.sin(2 * np.pi * x / 37) * np.cos(2 * np.pi * y / 29)


def _crop_position(image, crop):
    """(top, left) of `crop` inside `image`, found from its unique values."""
    (top,), (left,) = np.nonzero(image[..., 0] == crop[0, 0, 0])
    return int(top), int(left)


def test_undo_dihedral_inverts_dihedral():
    image = np.random.default_rng(0).random((5, 7, 3))
    for k in range(8):
        transformed = dihedral(image, k)
        assert transformed.shape == ((5, 7, 3) if k % 2 == 0 else (7, 5, 3))
        np.testing.assert_array_equal(undo_dihedral(transformed, k), image)


def test_dihedral_transforms_are_distinct():
    image = np.arange(9.0).reshape(3, 3)
    transforms = [dihedral(image, k) for k in range(8)]
    for i in range(8):
        for j in range(i + 1, 8):
            assert not np.array_equal(transforms[i], transforms[j]), (i, j)


def test_random_crop_is_a_subarray():
    image = np.arange(20 * 30 * 2, dtype=np.float32).reshape(20, 30, 2)
    rng = np.random.default_rng(0)
    positions = set()
    for _ in range(20):
        crop = random_crop(image, 8, rng)
        assert crop.shape == (8, 8, 2)
        top, left = _crop_position(image, crop)
        np.testing.assert_array_equal(crop, image[top:top + 8, left:left + 8])
        positions.add((top, left))
    assert len(positions) > 1


def test_random_crop_of_small_image_is_smaller():
    image = np.random.default_rng(0).random((5, 12, 3))
    crop = random_crop(image, 8, np.random.default_rng(1))
    assert crop.shape == (5, 8, 3)


def test_leave_as_is_father_is_exact_crop():
    image = np.arange(40 * 40 * 3, dtype=np.float32).reshape(40, 40, 3) / (40 * 40 * 3)
    sampler = FatherSampler(AugmentConfig(crop_size=16, augment_leave_as_is_probability=1.0))
    for seed in range(5):
        father = sampler.sample([image, np.zeros((80, 80, 3))], [1.0, 2.0], np.random.default_rng(seed))
        top, left = _crop_position(image, father)
        np.testing.assert_array_equal(father, image[top:top + 16, left:left + 16])


def test_no_interpolate_father_is_dihedral_of_crop():
    image = np.arange(40 * 40 * 3, dtype=np.float32).reshape(40, 40, 3) / (40 * 40 * 3)
    sampler = FatherSampler(AugmentConfig(crop_size=16, augment_leave_as_is_probability=0.0,
                                          augment_no_interpolate_probability=1.0))
    used = set()
    for seed in range(12):
        father = sampler.sample([image], [1.0], np.random.default_rng(seed))
        matches = []
        for k in range(8):
            crop = undo_dihedral(father, k)
            top, left = _crop_position(image, crop)
            if np.array_equal(father, dihedral(image[top:top + 16, left:left + 16], k)):
                matches.append(k)
        assert len(matches) == 1
        used.add(matches[0])
    assert len(used) > 1


def test_no_interpolate_fathers_come_from_larger_sources_by_drawn_scale():
    """Gradual mode: a scale drawn in [0.5, 1.5] picks the x1.5 output when it is above 1,
    i.e. for half of the dihedral fathers, which are exact crops of whichever source."""
    small, large = np.full((40, 40, 3), 0.25, np.float32), np.full((60, 60, 3), 0.75, np.float32)
    sampler = FatherSampler(AugmentConfig(crop_size=16, augment_leave_as_is_probability=0.0,
                                          augment_no_interpolate_probability=1.0))
    rng = np.random.default_rng(0)
    values = [float(np.unique(sampler.sample([small, large], [1.0, 1.5], rng))[0]) for _ in range(400)]
    assert set(values) == {0.25, 0.75}
    assert 0.42 < values.count(0.75) / len(values) < 0.58


def test_affine_fathers_fit_crop_and_range():
    rng = np.random.default_rng(0)
    image = rng.random((48, 48, 3)).astype(np.float32)
    sampler = FatherSampler(AugmentConfig(crop_size=24, **AFFINE_ONLY))
    shapes = set()
    for _ in range(30):
        father = sampler.sample([image], [1.0], rng)
        assert father.dtype == np.float32 and father.shape[2] == 3
        assert max(father.shape[:2]) <= 24
        assert father.min() >= 0 and father.max() <= 1
        shapes.add(father.shape)
    assert len(shapes) > 1


def test_affine_father_of_small_source_is_smaller():
    rng = np.random.default_rng(0)
    image = rng.random((12, 12, 3)).astype(np.float32)
    sampler = FatherSampler(AugmentConfig(crop_size=32, **AFFINE_ONLY))
    for _ in range(30):
        assert max(sampler.sample([image], [1.0], rng).shape[:2]) < 32


def test_unit_scale_affine_father_is_translated_crop():
    """Without rotation, shear or scaling the affine warp is a sub-pixel shift of a crop."""
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float64)
    image = np.repeat(_smooth(ys, xs)[..., None], 3, axis=2).astype(np.float32)
    sampler = FatherSampler(AugmentConfig(crop_size=24, augment_min_scale=1.0, augment_scale_diff_sigma=0.0,
                                          augment_shear_sigma=0.0, augment_allow_rotation=False, **AFFINE_ONLY))
    grid_y, grid_x = np.mgrid[0:24, 0:24].astype(np.float64)
    for seed in range(3):
        father = sampler.sample([image], [1.0], np.random.default_rng(seed))
        assert father.shape == (24, 24, 3)
        # Fit the shift (oy, ox): father[i, j] = image(i + oy, j + ox).
        best = min(((t, l) for t in range(41) for l in range(41)),
                   key=lambda tl: np.abs(father[..., 0] - image[tl[0]:tl[0] + 24, tl[1]:tl[1] + 24, 0]).max())
        fit = least_squares(lambda o: (_smooth(grid_y + o[0], grid_x + o[1]) - father[..., 0]).ravel(),
                            x0=np.array(best, dtype=np.float64))
        oy, ox = fit.x
        assert -0.5 <= oy <= 40.5 and -0.5 <= ox <= 40.5
        assert np.abs(fit.fun).max() < 2e-3


def test_father_to_son_shape_non_square_sf():
    for shape in [(9, 13), (16, 16), (7, 4)]:
        father = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
        son = father_to_son(father, (1.5, 2.0), "cubic", 0.0, np.random.default_rng(0))
        assert son.shape == (math.ceil(shape[0] / 1.5), math.ceil(shape[1] / 2.0), 3)
        assert son.dtype == np.float32


def test_father_to_son_noise_std():
    father = np.full((64, 64, 3), 0.5, np.float32)
    clean = father_to_son(father, 2, "cubic", 0.0, np.random.default_rng(0))
    noisy = father_to_son(father, 2, "cubic", 0.05, np.random.default_rng(0))
    np.testing.assert_allclose(clean, 0.5, atol=1e-6)
    assert np.std(noisy - clean) == pytest.approx(0.05, rel=0.2)


def test_father_to_son_clips_to_unit_range():
    father = np.full((32, 32, 1), 0.98, np.float32)
    son = father_to_son(father, 2, "cubic", 0.1, np.random.default_rng(0))
    assert son.min() >= 0 and son.max() <= 1
    assert np.any(son == 1.0)


def test_interpolate_son_restores_odd_father_shape():
    for father_shape in [(9, 9), (9, 14), (15, 7)]:
        father = np.random.default_rng(0).random((*father_shape, 3)).astype(np.float32)
        son = father_to_son(father, 2, "cubic", 0.0, np.random.default_rng(0))
        assert son.shape[:2] == tuple(math.ceil(n / 2) for n in father_shape)
        assert interpolate_son(son, 2, father_shape).shape == (*father_shape, 3)


@pytest.mark.parametrize("kernel, symmetries, isotropic", [
    (gaussian_kernel(21, 2.0), tuple(range(8)), True),
    (gaussian_kernel(12, 1.0), tuple(range(8)), None),          # even size: centred between taps
    (bicubic_kernel(2), tuple(range(8)), False),                # square symmetry, not isotropic
    (gaussian_kernel(11, 1.0, 2.0), (0, 2, 4, 6), False),       # axis-aligned ellipse: mirrors, 180
    (gaussian_kernel(11, 1.0, 2.0, 0.3), (0, 2), False),        # rotated ellipse: 180 degrees only
    (random_anisotropic_kernel(np.random.default_rng(0))[0], (0,), False),  # DIV2KRK-style: none
])
def test_kernel_symmetries_and_isotropy(kernel, symmetries, isotropic):
    assert kernel_symmetries(kernel) == symmetries
    if isotropic is not None:  # a narrow even kernel's half-pixel spline shift may exceed the 2% tolerance
        assert is_isotropic(kernel) == isotropic


def test_father_transforms_follow_kernel_symmetries():
    image = np.arange(40 * 40 * 3, dtype=np.float32).reshape(40, 40, 3) / (40 * 40 * 3)
    sampler = FatherSampler(AugmentConfig(crop_size=16, augment_leave_as_is_probability=0.0,
                                          augment_no_interpolate_probability=1.0, augment_allow_rotation=False),
                            kernel_symmetries=(0, 2, 4, 6))
    used = set()
    for seed in range(24):
        father = sampler.sample([image], [1.0], np.random.default_rng(seed))
        for k in range(8):
            top, left = _crop_position(image, undo_dihedral(father, k))
            if np.array_equal(father, dihedral(image[top:top + 16, left:left + 16], k)):
                used.add(k)
    assert used == {0, 2, 4, 6}


def test_default_sampler_draws_are_unchanged():
    """Fathers with rotations allowed do not depend on the kernel fields: the bicubic path's
    random streams are the ones it had before kernel symmetries existed."""
    image = np.random.default_rng(1).random((60, 60, 3)).astype(np.float32)
    augment = AugmentConfig(crop_size=24)
    plain, with_fields = FatherSampler(augment), FatherSampler(augment, kernel_symmetries=(0, 2))
    for seed in range(10):
        np.testing.assert_array_equal(plain.sample([image], [1.0], np.random.default_rng(seed)),
                                      with_fields.sample([image], [1.0], np.random.default_rng(seed)))
