"""The (interpolated LR son, HR father) training pairs, made on the fly: a tf.data pipeline on
TensorFlow, a `keras.utils.PyDataset` on the other Keras backends (`training_dataset` picks).

Element i is drawn from its own random stream seeded by (seed, i), so the pairs do not depend
on how many are made in parallel or in which order the parallel calls finish, nor on the
pipeline that makes them. TensorFlow is imported only by the tf.data pipeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np
from scipy import ndimage

from zssr_tf.backend import backend_name

from zssr_tf.augment import FatherSampler, dihedral_variants, father_to_son, interpolate_son, random_crop

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601 luma
GRADIENT_WINDOW = 5  # box-sum window of the gradient loss map
GRADIENT_BORDER = 3  # pixels zeroed at every border of the gradient loss map


def gradient_loss_map(image: np.ndarray) -> np.ndarray:
    """Per-pixel L1 weights that favour edges (the ZSSR variant of KernelGAN, Bell-Kligler et al.
    2019): gray gradient magnitude of `image` (h, w, C) in [0, 1], summed over 5x5 windows, a
    3-px border zeroed, scaled to mean 1 over the image. (h, w) float32; all ones for a flat image.
    """
    gray = image[..., :3] @ GRAY_WEIGHTS if image.shape[2] == 3 else image[..., 0]
    gy, gx = np.gradient(gray.astype(np.float64))
    weights = ndimage.uniform_filter(np.hypot(gx, gy), GRADIENT_WINDOW, mode="reflect") * GRADIENT_WINDOW**2
    weights[:GRADIENT_BORDER], weights[-GRADIENT_BORDER:] = 0, 0
    weights[:, :GRADIENT_BORDER], weights[:, -GRADIENT_BORDER:] = 0, 0
    weights = np.clip(weights, 0, None)
    mean = weights.mean()
    return (weights / mean if mean > 0 else np.ones_like(weights)).astype(np.float32)


def with_loss_maps(sources: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], float]:
    """Each source (h, w, C) with its `gradient_loss_map` as an extra last channel, so that every
    crop and augmentation of a father applies to its weights too. The maps are divided by their
    common maximum to stay in [0, 1] (augmentation clips to it); returns the sources and that
    maximum, which `PairMaker(loss_map_scale=...)` multiplies back."""
    maps = [gradient_loss_map(source) for source in sources]
    scale = float(max(m.max() for m in maps))
    return tuple(np.concatenate([s, (m / scale)[..., None]], axis=2) for s, m in zip(sources, maps)), scale


@dataclass(frozen=True)
class PairMaker:
    """Everything needed to turn an index into one (network input, target) pair, or with
    `dihedral_batch` into the pairs of the 8 dihedral variants of one square father (ZSRGAN's
    batch).

    With `loss_map_scale` > 0 the sources carry a loss map as their last channel (see
    `with_loss_maps`) and a pair also has the father's per-pixel loss weights. With `jpeg_quality`
    (1..100) every son is JPEG-compressed after its noise (`augment.father_to_son`), with chroma
    `jpeg_subsampling` (444, 422, 420).
    """

    sources: tuple[np.ndarray, ...]
    base_scales: tuple[float, ...]
    sampler: FatherSampler
    scale_factor: tuple[float, float]
    kernel: str | np.ndarray
    noise_std: float
    upscale_method: str
    seed: int
    upscale_offset: tuple[float, float] = (0.0, 0.0)
    dihedral_batch: bool = False
    loss_map_scale: float = 0.0
    jpeg_quality: int | None = None
    jpeg_subsampling: int = 420

    def __call__(self, index: int) -> tuple[np.ndarray, ...]:
        """Pair number `index`: (interpolated son, father), both float32 (h, w, C) in [0, 1], and
        with a loss map the father's weights (h, w, 1) float32; with `dihedral_batch`, each
        (8, s, s, .): a square father cut to its short side s, its 8 dihedral transforms
        (`augment.dihedral_variants`, weights alike) and the son of each transformed father,
        degraded with the step's own kernel and (sy, sx) scale factors (a son made once and
        then transformed would carry a transformed kernel, and scale factors on swapped axes)."""
        rng = np.random.default_rng((self.seed, int(index)))
        hr_father = self.sampler.sample(list(self.sources), list(self.base_scales), rng)
        if not self.dihedral_batch:
            return self._pair(hr_father, rng)
        fathers = dihedral_variants(random_crop(hr_father, min(hr_father.shape[:2]), rng))
        pairs = [self._pair(father, rng) for father in fathers]
        return tuple(np.stack(arrays) for arrays in zip(*pairs))

    def _pair(self, hr_father: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(interpolated son, father[, weights]) of one father (h, w, C[+1 loss-map channel])."""
        weights = None
        if self.loss_map_scale:
            weights = hr_father[..., -1:] * np.float32(self.loss_map_scale)
            hr_father = np.ascontiguousarray(hr_father[..., :-1])
        lr_son = father_to_son(hr_father, self.scale_factor, self.kernel, self.noise_std, rng,
                               self.jpeg_quality, self.jpeg_subsampling)
        son = interpolate_son(lr_son, self.scale_factor, hr_father.shape[:2], self.upscale_method,
                              self.upscale_offset)
        return (son, hr_father) if weights is None else (son, hr_father, weights)


def make_dataset(pair_maker: PairMaker, channels: int, start_index: int = 0):
    """An endless dataset of batches of one pair: ([1, h, w, C] son, [1, h, w, C] father), or
    of its 8 dihedral variants ([8, s, s, C] each) when `pair_maker.dihedral_batch` is set;
    with a loss map also the father's per-pixel weights ([1, h, w] or [8, s, s]), which Keras
    takes as sample weights.

    Pairs are made by `num_parallel_calls=AUTOTUNE` workers and prefetched, so training never
    waits on augmentation. `start_index` continues the random streams (e.g. in a later step).
    Returns a `tf.data.Dataset` (imports TensorFlow).
    """
    import tensorflow as tf

    weighted = bool(pair_maker.loss_map_scale)

    def make(index):
        types = (tf.float32,) * (3 if weighted else 2)
        arrays = tf.numpy_function(pair_maker, [index], types, stateful=False)
        batch = [8] if pair_maker.dihedral_batch else []
        for array, depth in zip(arrays, (channels, channels, 1)):
            array.set_shape(batch + [None, None, depth])
        if not pair_maker.dihedral_batch:
            arrays = [array[tf.newaxis] for array in arrays]
        return tuple(arrays[:2]) + ((arrays[2][..., 0],) if weighted else ())

    return (
        tf.data.Dataset.counter(start=start_index)
        .map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


class PairDataset(keras.utils.PyDataset):
    """The batches of `make_dataset` as an endless `keras.utils.PyDataset`, for Keras backends
    without tf.data: batch i is `pair_maker(start_index + i)` with a batch axis, the same arrays
    as the tf.data pipeline's element i (float32 numpy; shapes as `make_dataset` says).

    `workers` threads make the batches ahead of training (Keras keeps their order), up to
    `max_queue_size` of them; the random stream of each is its index's, so the pairs do not
    depend on `workers`.
    """

    def __init__(self, pair_maker: PairMaker, start_index: int = 0, workers: int = 1, max_queue_size: int = 8):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.pair_maker = pair_maker
        self.start_index = start_index

    @property
    def num_batches(self) -> None:
        """None: the dataset is endless (training stops at `steps_per_epoch`)."""
        return None

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        """Batch `index`: (son, father[, per-pixel weights]) as `make_dataset` gives them."""
        arrays = self.pair_maker(self.start_index + index)
        if not self.pair_maker.dihedral_batch:
            arrays = tuple(array[None] for array in arrays)
        return tuple(arrays[:2]) + ((arrays[2][..., 0],) if len(arrays) == 3 else ())


def training_dataset(pair_maker: PairMaker, channels: int, start_index: int = 0):
    """The endless training batches for `model.fit` on this process's Keras backend: the tf.data
    pipeline (`make_dataset`) on TensorFlow, a `PairDataset` with one worker thread per CPU core
    (at most 8) on JAX and PyTorch. Both give the same pairs for the same `pair_maker` and
    `start_index`."""
    if backend_name() == "tensorflow":
        return make_dataset(pair_maker, channels, start_index)
    return PairDataset(pair_maker, start_index, workers=min(8, os.cpu_count() or 1))
