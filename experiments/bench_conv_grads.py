"""Where a training step's time goes: one 64->64 3x3 convolution of the ZSSR net on a
128x128 crop (batch 1), its forward pass and its two gradients, in float32 and bfloat16.

    python experiments/bench_conv_grads.py [--repeats 5]

Also times the weight gradient computed as 9 shifted matrix products (the one alternative to
TF's kernel that needs no custom op), to show whether replacing TF's kernel would pay.
Prints ms per call (median over repeats of 20 calls) and GFLOP/s; writes
experiments/results/conv_grads_<cpu|gpu>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import device_kind, write_json  # noqa: E402

SIZE, WIDTH = 128, 64
GFLOP = 2 * SIZE * SIZE * 9 * WIDTH * WIDTH / 1e9  # one pass of one layer


def variants(dtype: tf.DType) -> dict:
    rng = tf.random.Generator.from_seed(0)
    x = tf.cast(rng.normal([1, SIZE, SIZE, WIDTH]), dtype)
    w = tf.cast(rng.normal([3, 3, WIDTH, WIDTH]) * 0.05, dtype)
    dy = tf.cast(rng.normal([1, SIZE, SIZE, WIDTH]), dtype)

    @tf.function
    def forward():
        return tf.nn.conv2d(x, w, 1, "SAME")

    @tf.function
    def input_gradient():
        return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                              strides=[1, 1, 1, 1], padding="SAME")

    @tf.function
    def weight_gradient():
        return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                               strides=[1, 1, 1, 1], padding="SAME")

    @tf.function
    def weight_gradient_as_matmuls():
        padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        grad_out = tf.reshape(dy, [-1, WIDTH])
        taps = [tf.matmul(tf.reshape(padded[:, i:i + SIZE, j:j + SIZE], [-1, WIDTH]), grad_out, transpose_a=True)
                for i in range(3) for j in range(3)]
        return tf.reshape(tf.stack(taps), [3, 3, WIDTH, WIDTH])

    reference = tf.cast(weight_gradient(), tf.float32)
    mine = tf.cast(weight_gradient_as_matmuls(), tf.float32)
    error = float(tf.norm(reference - mine) / tf.norm(reference))
    assert error < 1e-2, f"matmul weight gradient differs from TF's by {error:.2e}"
    return {"forward": forward, "input gradient": input_gradient, "weight gradient": weight_gradient,
            "weight gradient as 9 matmuls": weight_gradient_as_matmuls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report: dict = {}
    print("| dtype | operation | ms / call | GFLOP/s |\n|---|---|---|---|")
    for dtype in (tf.float32, tf.bfloat16):
        functions = variants(dtype)
        for function in functions.values():
            function().numpy()  # trace and warm up
        samples = {name: [] for name in functions}
        for _ in range(args.repeats):  # alternate the variants so drifts in machine load hit all alike
            for name, function in functions.items():
                start = time.perf_counter()
                for _ in range(20):
                    result = function()
                result.numpy()
                samples[name].append(1000 * (time.perf_counter() - start) / 20)
        for name, values in samples.items():
            ms = float(np.median(values))
            report[f"{dtype.name} {name}"] = {"ms": ms, "gflop_per_s": GFLOP / ms * 1000}
            print(f"| {dtype.name} | {name} | {ms:.2f} | {GFLOP / ms * 1000:.0f} |", flush=True)
    write_json(f"conv_grads_{device_kind()}", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
