"""Cost of one KernelGAN iteration (one G and one D step), today's step against the previous one,
side by side in one process.

    python experiments/bench_kernelgan_step.py [--image PATH] [--iters 200] [--repeats 3]
    python experiments/bench_kernelgan_step.py --estimate baboon bridge comic [--seeds 0 1]

The previous step is kept here as a local reference (`PreviousKernelGAN`): it extracted G's
kernel by pushing a delta through G's 64-channel layers, made G's output and the bicubic
reference with single-channel stride-2 convolutions, and its discriminator's 1x1 layers were
Conv2D layers. Both start from the same seed, so their weights are equal. Their values and
kernels in the first 2 of 20 warm-up iterations on the same inputs are compared (float rounding
only: the largest difference relative to the largest value; `COMPARED` says why only 2). Then
both train on the same `--iters` inputs of the image (KernelGAN's own crops and noise,
bicubic-phase weights), alternating which goes first, `--repeats` times. Prints the median ms
per iteration of each and the ratio previous / today; writes
experiments/results/kernelgan_step_<device>.json. Compare numbers only within one run of this
script: the cores' load changes between runs.

With --estimate, whole estimations instead: on each named krk14 image (`bench_blind.make_case`,
whole images) one KernelGAN run (`estimation_runs=1`, the default settings otherwise) per seed,
with the previous step and with today's, alternating; prints each kernel's distance to the true
kernel (`kernels.kernel_distance`; "collapsed" for a run stopped as collapsed) and the means over
the cases both finished. The GAN is chaotic (see `COMPARED`), so single runs differ either way;
only a systematic difference counts. Writes experiments/results/kernelgan_step_estimates.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from bench_blind import make_case  # noqa: E402
from common import benchmark_data_dir, device_kind, write_json  # noqa: E402
from zssr_tf import backend  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernel_estimation import KernelEstimationError, estimate_kernel, estimator  # noqa: E402
from zssr_tf.kernel_estimation import constraints as C  # noqa: E402
from zssr_tf.kernel_estimation.crops import training_inputs  # noqa: E402
from zssr_tf.kernel_estimation.estimator import KernelGAN  # noqa: E402
from zssr_tf.kernel_estimation.inputs import prepare_image  # noqa: E402
from zssr_tf.kernel_estimation.networks import discriminator_step, generator_kernel_size, glorot_normal  # noqa: E402
from zssr_tf.kernels import bicubic_kernel, kernel_distance  # noqa: E402

WARMUP = 20
# Steps whose results are compared: from identical weights the two agree to float rounding, but a
# few steps on, Adam's steps on near-zero gradients amplify rounding (the previous step on an input
# changed by 1e-7 drifts as fast), so only the first ones say whether the maths are the same.
COMPARED = 2


def delta_kernel(generator):
    """The previous `extract_kernel`: a delta through G's layers without the stride, flipped."""
    size = generator_kernel_size([layer.kernel.shape[0] for layer in generator.layers])
    x = ops.pad(ops.ones((1, 1, 1, 1), "float32"), [[0, 0], [size - 1, size - 1], [size - 1, size - 1], [0, 0]])
    for layer in generator.layers:
        x = ops.conv(x, ops.cast(layer.kernel, "float32"), strides=1, padding="valid")
    return ops.flip(x[0, :, :, 0], axis=(0, 1))


def conv_downscale(images, kernel):
    """The previous `downscale_with_generator_kernel`: channels as a batch, one stride-2 conv."""
    out = ops.conv(ops.transpose(images, [3, 1, 2, 0]), kernel[:, :, None, None], strides=2, padding="valid")
    return ops.transpose(out, [3, 1, 2, 0])


def conv_bicubic_loss(generated, images, target):
    """The previous `bicubic_loss`: the 8x8 bicubic kernel as a stride-2 conv over a padded crop."""
    out_size = generated.shape[1]
    padded = ops.pad(ops.transpose(images, [3, 1, 2, 0]), [[0, 0], [3, 3], [3, 3], [0, 0]])
    down = ops.transpose(ops.conv(padded, ops.convert_to_tensor(bicubic_kernel(2)[:, :, None, None], "float32"),
                                  strides=2, padding="valid"), [3, 1, 2, 0])
    crop = (down.shape[1] - out_size) // 2
    down = down[:, crop:crop + out_size, crop:crop + out_size, :]
    if target == "channel_sum":
        down = ops.broadcast_to(ops.sum(down, axis=-1, keepdims=True), ops.shape(down))
    return ops.mean(ops.square(generated - down))


def previous_discriminator(c, channels: int, seed: int) -> keras.Sequential:
    """The previous `build_patch_discriminator`: every layer a Conv2D, the 1x1 ones too."""

    def conv(filters: int, size: int, index: int) -> keras.layers.Layer:
        return keras.layers.SpectralNormalization(keras.layers.Conv2D(
            filters, size, padding="valid", kernel_initializer=glorot_normal(c.init_gain, seed + 100 + index),
            dtype=c.estimation_precision), power_iterations=1, dtype=c.estimation_precision,
            name=f"d_conv_{index + 1}")

    width, precision = c.patch_discriminator_width, c.estimation_precision
    stack = [keras.Input((None, None, channels)), conv(width, c.patch_discriminator_kernel_size, 0)]
    for i in range(1, c.patch_discriminator_layers - 1):
        gamma = keras.initializers.RandomNormal(1.0, 0.02, seed=seed + 200 + i)
        stack += [conv(width, 1, i), keras.layers.BatchNormalization(gamma_initializer=gamma, dtype=precision,
                                                                     name=f"d_norm_{i}"),
                  keras.layers.ReLU(dtype=precision)]
    stack += [conv(1, 1, c.patch_discriminator_layers - 1), keras.layers.Activation("sigmoid", dtype="float32")]
    return keras.Sequential(stack, name="patch_discriminator")


class PreviousKernelGAN(KernelGAN):
    """KernelGAN with the previous training step and discriminator (the same initial weights)."""

    def __init__(self, config, channels: int, seed: int):
        super().__init__(config, channels, seed)
        keras.utils.set_random_seed(seed)  # the spectral norms' vectors as KernelGAN draws them
        c = self.config
        self.discriminator = previous_discriminator(c, channels, seed)
        self.d_optimizer = keras.optimizers.Adam(c.estimation_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.train_step = backend.compile_step(
            self._train_step, [*self.generator.variables, *self.discriminator.variables, *self.g_optimizer.variables,
                               *self.d_optimizer.variables], jit_compile=True)

    def _train_step(self, g_input, d_real, fake_noise, bicubic_weight, centralization_weight, sparsity_weight):
        c = self.config
        G, D = self.generator, self.discriminator

        def generator_loss():
            kernel = delta_kernel(G)
            generated = conv_downscale(g_input, kernel)
            adversarial = ops.mean(ops.abs(ops.cast(D(generated, training=True), "float32") - 1))
            terms = [conv_bicubic_loss(generated, g_input, c.bicubic_target), C.sum_to_one_loss(kernel),
                     C.boundaries_loss(kernel, self.mask), C.centralization_loss(kernel, self.centre),
                     C.sparsity_loss(kernel)]
            weights = [bicubic_weight, c.sum_to_one_weight, c.boundaries_weight, centralization_weight,
                       sparsity_weight]
            return adversarial + sum(w * t for w, t in zip(weights, terms)), (adversarial, terms, kernel)

        (g_loss, (adversarial, terms, kernel)), grads = backend.value_and_grad(
            generator_loss, G.trainable_variables, D.variables)
        self.g_optimizer.apply(grads, G.trainable_variables)
        fake = conv_downscale(g_input, ops.stop_gradient(delta_kernel(G))) + fake_noise
        d_loss = discriminator_step(D, self.d_optimizer, fake, d_real)
        return ops.stack([g_loss, adversarial, *terms, d_loss, ops.sum(kernel)]), kernel


def step_inputs(image: np.ndarray, config, d_size: int, count: int) -> list[tuple]:
    """`count` iterations' inputs: KernelGAN's crops and noise, and the constraint weights of its
    bicubic phase (5, 0, 0), as float32 arrays."""
    weights = (np.float32(5.0), np.float32(0.0), np.float32(0.0))
    inputs = training_inputs(image, config.kernel_estimation, d_size, np.random.default_rng((0, 10)))
    return [(*crops, *weights) for crops in itertools.islice(inputs, count)]


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| (0 when b is all zero)."""
    scale = float(np.abs(b).max())
    return float(np.abs(a - b).max()) / scale if scale else 0.0


def time_steps(gan: KernelGAN, inputs: list[tuple]) -> float:
    """ms per iteration of `gan.train_step` over `inputs`, waiting for the last result."""
    start = time.perf_counter()
    for args in inputs:
        values, _ = gan.train_step(*args)
    ops.convert_to_numpy(values)
    return 1000 * (time.perf_counter() - start) / len(inputs)


def estimated_distance(step_class: type, lr: np.ndarray, true_kernel: np.ndarray, seed: int) -> float | None:
    """The distance to `true_kernel` of one estimation of `lr` with `seed` whose training step is
    `step_class`'s (None when the run collapsed)."""
    config = load_config(overrides=["estimation_runs=1", f"seed={seed}"])
    estimator.KernelGAN = step_class  # what `estimate_kernel` builds its networks and step with
    try:
        kernel, _ = estimate_kernel(lr, config)
    except KernelEstimationError:
        return None
    finally:
        estimator.KernelGAN = KernelGAN
        keras.backend.clear_session()
    return kernel_distance(kernel, true_kernel)


def compare_estimates(names: list[str], seeds: list[int]) -> int:
    """--estimate: kernel distances of whole estimations with each step, side by side."""
    rows = []
    for name in names:
        lr, _, true_kernel = make_case("krk14", name, 0)
        for seed in seeds:
            row = {"image": name, "seed": seed}
            for label, step_class in (("previous", PreviousKernelGAN), ("today", KernelGAN)):
                row[label] = estimated_distance(step_class, lr, true_kernel, seed)
            rows.append(row)
            print(f"{name:10s} seed {seed}: " + ", ".join(
                f"{label} {'collapsed' if row[label] is None else f'{row[label]:.4f}'}"
                for label in ("previous", "today")), flush=True)
    both = [row for row in rows if row["previous"] is not None and row["today"] is not None]
    means = {label: float(np.mean([row[label] for row in both])) if both else None for label in ("previous", "today")}
    collapsed = {label: sum(row[label] is None for row in rows) for label in ("previous", "today")}
    write_json("kernelgan_step_estimates", {"set": "krk14", "rows": rows, "mean_where_both_finished": means,
                                            "cases_both_finished": len(both), "collapsed": collapsed})
    if both:
        print(f"mean distance over the {len(both)} cases both finished: previous {means['previous']:.4f}, "
              f"today {means['today']:.4f}; collapsed: previous {collapsed['previous']}, today {collapsed['today']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=benchmark_data_dir() / "set5" / "lr_x2" / "baby.png")
    parser.add_argument("--iters", type=int, default=200, help="timed iterations per variant and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--estimate", nargs="+", metavar="NAME",
                        help="krk14 images to estimate with each step instead (kernel distances, not times)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="with --estimate: one run per seed")
    args = parser.parse_args()
    if args.estimate:
        return compare_estimates(args.estimate, args.seeds)
    config = load_config(overrides=["estimation_runs=1", "estimation_iters=100000"])
    c = config.kernel_estimation
    image = prepare_image(read_image(args.image)[0], c.estimation_shave, c.generator_crop_size)
    gans = {"previous": PreviousKernelGAN(config, image.shape[2], 0), "today": KernelGAN(config, image.shape[2], 0)}
    inputs = step_inputs(image, config, gans["today"].d_crop_size, WARMUP + args.iters)
    # Warm-up (tracing, compilation), comparing the two steps' results over the first COMPARED.
    differences = {"values": 0.0, "kernel": 0.0}
    for step, args_ in enumerate(inputs[:WARMUP]):
        (values_a, kernel_a), (values_b, kernel_b) = ([ops.convert_to_numpy(x) for x in gan.train_step(*args_)]
                                                      for gan in gans.values())
        if step < COMPARED:
            differences["values"] = max(differences["values"], relative_difference(values_a, values_b))
            differences["kernel"] = max(differences["kernel"], relative_difference(kernel_a, kernel_b))
    print(f"first {COMPARED} steps, largest |previous - today| / |today|: "
          + ", ".join(f"{k} {v:.1e}" for k, v in differences.items()))
    times: dict[str, list[float]] = {name: [] for name in gans}
    for repeat in range(args.repeats):
        for name in (list(gans) if repeat % 2 == 0 else list(gans)[::-1]):
            times[name].append(time_steps(gans[name], inputs[WARMUP:]))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in times.items()), flush=True)
    medians = {name: float(np.median(v)) for name, v in times.items()}
    report = {"image": args.image.name, "iters": args.iters, "repeats": args.repeats,
              "first_steps_max_relative_difference": differences, "ms_per_iteration": medians, "all_ms": times,
              "ratio_previous_over_today": medians["previous"] / medians["today"]}
    write_json(f"kernelgan_step_{device_kind()}", report)
    for name, value in medians.items():
        print(f"{name:10s} {value:7.2f} ms/iteration (median of {args.repeats})")
    print(f"ratio previous / today: {report['ratio_previous_over_today']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
