"""The tf.data pipeline of (interpolated LR son, HR father) training pairs, made on the fly.

Element i is drawn from its own random stream seeded by (seed, i), so the pairs do not depend
on how many are made in parallel or in which order the parallel calls finish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from zssr_tf.augment import FatherSampler, father_to_son, interpolate_son


@dataclass(frozen=True)
class PairMaker:
    """Everything needed to turn an index into one (network input, target) pair."""

    sources: tuple[np.ndarray, ...]
    base_scales: tuple[float, ...]
    sampler: FatherSampler
    scale_factor: tuple[float, float]
    kernel: str | np.ndarray
    noise_std: float
    upscale_method: str
    seed: int
    upscale_offset: tuple[float, float] = (0.0, 0.0)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair number `index`: (interpolated son, father), both float32 (h, w, C) in [0, 1]."""
        rng = np.random.default_rng((self.seed, int(index)))
        hr_father = self.sampler.sample(list(self.sources), list(self.base_scales), rng)
        lr_son = father_to_son(hr_father, self.scale_factor, self.kernel, self.noise_std, rng)
        son = interpolate_son(lr_son, self.scale_factor, hr_father.shape[:2], self.upscale_method, self.upscale_offset)
        return son, hr_father


def make_dataset(pair_maker: PairMaker, channels: int, start_index: int = 0) -> tf.data.Dataset:
    """An endless dataset of batches of one pair: ([1, h, w, C] son, [1, h, w, C] father).

    Pairs are made by `num_parallel_calls=AUTOTUNE` workers and prefetched, so training never
    waits on augmentation. `start_index` continues the random streams (e.g. in a later step).
    """

    def make(index):
        son, father = tf.numpy_function(pair_maker, [index], (tf.float32, tf.float32), stateful=False)
        son.set_shape([None, None, channels])
        father.set_shape([None, None, channels])
        return son[tf.newaxis], father[tf.newaxis]

    return (
        tf.data.Dataset.counter(start=start_index)
        .map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
