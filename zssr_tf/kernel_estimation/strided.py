"""Stride-2 correlations of small images as matrix products (`keras.ops`, any backend).

KernelGAN correlates 64x64 single-channel crops with a 13x13 kernel (its generator's) or an 8x8
one (the bicubic reference) at stride 2. As convolutions with one input and one output channel
these run far under the CPU's speed (in a profile of the training step XLA's convolutions, and
the kernel's gradient, took 0.4-0.8 ms each for ~0.3 M multiply-adds); as a few dense matrix
products with constant 0/1 placement matrices they are several times cheaper
(`experiments/bench_kernelgan_step.py`).
"""

from __future__ import annotations

import numpy as np
from keras import ops


def placement(taps: int, length: int, count: int, first: int = 0) -> np.ndarray:
    """(taps, length, count) float32 0/1: [t, first + 2 j + t, j] = 1 where that index lies in
    [0, length). tensordot(w, placement, 1) lays a `taps`-long 1-D kernel w onto the `length`
    input positions of each of `count` stride-2 outputs, output j starting at `first + 2 j`
    (negative `first`: zero padding, the taps outside the input dropped)."""
    out = np.zeros((taps, length, count), np.float32)
    for t in range(taps):
        for j in range(count):
            if 0 <= first + 2 * j + t < length:
                out[t, first + 2 * j + t, j] = 1
    return out


def correlate_stride2(images, kernel):
    """VALID correlation of every channel of (N, H, W, C) `images` with one (K, K) `kernel`, kept at
    stride 2: (N, (H - K)//2 + 1, (W - K)//2 + 1, C), float32 like the inputs.

    The K input rows of every output row are strided slices; the kernel's rows laid onto the
    columns (`placement`) make one matrix per kernel row, and one product sums them. Its
    gradient with respect to `kernel` is products too.
    """
    size = kernel.shape[0]
    _, height, width, _ = images.shape
    rows_out, cols_out = (height - size) // 2 + 1, (width - size) // 2 + 1
    x = ops.transpose(images, [0, 3, 1, 2])  # (N, C, H, W)
    rows = ops.stack([x[:, :, a:a + 2 * rows_out - 1:2, :] for a in range(size)], axis=3)  # (N, C, h, K, W)
    columns = ops.tensordot(kernel, ops.convert_to_tensor(placement(size, width, cols_out)), axes=1)  # (K, W, w)
    return ops.transpose(ops.tensordot(rows, columns, axes=[[3, 4], [0, 1]]), [0, 2, 3, 1])


def separable_stride2(images, taps, first: int, out_size: int):
    """Every channel of (N, H, W, C) `images` correlated at stride 2 with the separable kernel
    outer(taps, taps), zero outside the image: (N, out_size, out_size, C), output (i, j) starting
    at input (first + 2 i, first + 2 j). Two matrix products (`placement`)."""
    _, height, width, _ = images.shape
    along_rows = ops.convert_to_tensor(np.tensordot(taps, placement(len(taps), height, out_size, first), 1), "float32")
    along_cols = ops.convert_to_tensor(np.tensordot(taps, placement(len(taps), width, out_size, first), 1), "float32")
    down = ops.tensordot(images, along_cols, axes=[[2], [0]])  # (N, H, C, w)
    return ops.transpose(ops.tensordot(down, along_rows, axes=[[1], [0]]), [0, 3, 2, 1])  # (N, h, w, C)
