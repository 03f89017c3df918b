import numpy as np

from zssr_tf.augment import FatherSampler
from zssr_tf.config import AugmentConfig
from zssr_tf.data import PairMaker, make_dataset


def _pair_maker(seed: int, channels: int = 3) -> PairMaker:
    image = np.random.default_rng(123).random((24, 28, channels)).astype(np.float32)
    return PairMaker(sources=(image,), base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=16)),
                     scale_factor=(2.0, 2.0), kernel="cubic", noise_std=0.0, upscale_method="cubic", seed=seed)


def _first(seed: int, n: int = 5, start_index: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    dataset = make_dataset(_pair_maker(seed), channels=3, start_index=start_index)
    return [(son.numpy(), father.numpy()) for son, father in dataset.take(n)]


def test_elements_are_float32_batches_of_one_pair():
    for channels in (1, 3):
        dataset = make_dataset(_pair_maker(0, channels), channels=channels)
        assert dataset.element_spec[0].shape.as_list() == [1, None, None, channels]
        for son, father in dataset.take(5):
            assert son.dtype == father.dtype == "float32"
            assert son.shape == father.shape
            assert son.shape[0] == 1 and son.shape[3] == channels
            assert 1 <= son.shape[1] <= 16 and 1 <= son.shape[2] <= 16
            assert 0 <= float(father.numpy().min()) and float(father.numpy().max()) <= 1


def test_same_seed_same_stream_other_seed_differs():
    first, again, other = _first(7), _first(7), _first(8)
    for (son_a, father_a), (son_b, father_b) in zip(first, again):
        np.testing.assert_array_equal(son_a, son_b)
        np.testing.assert_array_equal(father_a, father_b)
    assert not all(a.shape == b.shape and np.array_equal(a, b) for (_, a), (_, b) in zip(first, other))


def test_elements_differ_from_each_other():
    fathers = [father for _, father in _first(0, n=6)]
    for i in range(len(fathers)):
        for j in range(i + 1, len(fathers)):
            assert fathers[i].shape != fathers[j].shape or not np.array_equal(fathers[i], fathers[j]), (i, j)


def test_start_index_shifts_stream():
    shifted = _first(3, n=2, start_index=3)
    unshifted = _first(3, n=5)
    for (son_a, father_a), (son_b, father_b) in zip(shifted, unshifted[3:]):
        np.testing.assert_array_equal(son_a, son_b)
        np.testing.assert_array_equal(father_a, father_b)
    assert not np.array_equal(shifted[0][1], unshifted[0][1])
