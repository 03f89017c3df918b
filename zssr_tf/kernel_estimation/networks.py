"""The two image-specific networks of KernelGAN (Bell-Kligler, Shocher & Irani, NeurIPS 2019).

The generator is a deep *linear* network that downscales x2: it is equivalent to one small
kernel followed by stride-2 subsampling, and that kernel is the estimate. The discriminator is
a fully convolutional patch discriminator that judges 7x7 patches of LR-sized images.
Written with `keras.ops` and `zssr_tf.backend`: they run on TensorFlow and on JAX (BACKENDS).
"""

from __future__ import annotations

import keras
from keras import ops

from zssr_tf import backend
from zssr_tf.kernel_estimation.inputs import BACKENDS  # noqa: F401 (not PyTorch: see there)
from zssr_tf.kernel_estimation.strided import correlate_stride2


def glorot_normal(gain: float, seed: int | None = None) -> keras.initializers.Initializer:
    """Xavier/Glorot normal with a `gain` (std = gain * sqrt(2 / (fan_in + fan_out))), untruncated."""
    return keras.initializers.VarianceScaling(scale=gain**2, mode="fan_avg", distribution="untruncated_normal",
                                              seed=seed)


def build_linear_generator(structure=(7, 5, 3, 1, 1, 1), width: int = 64, init_gain: float = 0.1,
                           seed: int | None = None, dtype_policy: str = "float32") -> keras.Sequential:
    """The linear generator G on single-channel images: (N, H, W, 1) -> (N, (H-K+1)//2, .., 1).

    One conv per entry of `structure` (kernel sizes), `width` channels, VALID padding, no bias,
    no activation; the last layer (1x1, one output channel) has stride 2. Its receptive field
    K = sum(structure) - len(structure) + 1 (13 for the default) is the kernel size. A 64x64
    input gives 26x26. Colour images go through `generate`, which treats channels as a batch.
    """
    layers = []
    for i, size in enumerate(structure):
        last = i == len(structure) - 1
        layers.append(keras.layers.Conv2D(
            1 if last else width, size, strides=2 if last else 1, padding="valid", use_bias=False,
            kernel_initializer=glorot_normal(init_gain, None if seed is None else seed + i),
            dtype=dtype_policy, name=f"g_conv_{i + 1}"))
    return keras.Sequential([keras.Input((None, None, 1)), *layers], name="linear_generator")


def generator_kernel_size(structure) -> int:
    """The generator's receptive field = the side of the kernel it is equivalent to."""
    return sum(structure) - len(structure) + 1


def generate(generator: keras.Model, images):
    """G applied to every channel of (1, H, W, C) images with one shared kernel: (1, h, w, C) float32.
    The definition of G's output; training computes the same through `downscale_with_generator_kernel`.

    The channels become the batch (C, H, W, 1) so that the single-channel G cannot mix them,
    then they are swapped back.
    """
    as_batch = ops.transpose(images, [3, 1, 2, 0])
    return ops.cast(ops.transpose(generator(as_batch), [3, 1, 2, 0]), "float32")


def downscale_with_generator_kernel(images, kernel):
    """What `generate` computes, through G's K x K kernel: (1, H, W, C) -> (1, (H-K)//2+1, .., C).

    G is linear, so G(x) = correlate_valid(x, k)[::2, ::2] with k = `extract_kernel(G)`, and
    the gradients with respect to G's weights are the same through either path (the chain rule
    through a linear map). For the default G and a 64x64 RGB crop this path costs ~3 M
    multiply-adds (1.1 M to extract the kernel, ~2 M for the stride-2 correlation as dense
    matrix products, `strided.correlate_stride2`) against ~1.3 G through G's 64-channel layers,
    ~400x fewer, which is why training uses it.
    """
    return correlate_stride2(images, kernel)


def extract_kernel(generator: keras.Model):
    """The K x K float32 correlation kernel k with G(x) = correlate_valid(x, k)[::2, ::2].

    Composed from the output side: a chain of VALID cross-correlations is one cross-correlation
    whose kernel is the full convolution of theirs (`_compose_pair`), so the last layer's
    kernel is folded into each earlier layer in turn (the 1x1 layers into one 64-vector, then
    the 3x3, 5x5 and 7x7 layers): ~1.1 M multiply-adds for the default (7, 5, 3, 1, 1, 1)
    against ~32 M for pushing a delta through G's 64-channel layers. The stride of the last
    layer only subsamples. Differentiable: call it inside the gradient tape so the kernel
    constraints train G. Uses the float32 weights whatever the layers' compute dtype.
    """
    composed = None  # (k, k, c): the layers after the current one as one kernel per input channel
    for layer in reversed(generator.layers):
        weight = ops.cast(layer.kernel, "float32")
        composed = weight[:, :, :, 0] if composed is None else _compose_pair(weight, composed)
    return composed[:, :, 0]


def _compose_pair(weight, later):
    """The (s + k - 1, s + k - 1, ci) kernel of a VALID correlation with `weight` (s, s, ci, co)
    followed by one with `later` (k, k, co): tap w = sum over u + v = w of weight[u] @ later[v].

    Every product of a tap of each is one matrix product (s, s, ci, k, k); the products are then
    summed at their offsets, shifting the smaller kernel's taps (k^2 or s^2 padded adds).
    """
    outer = ops.tensordot(weight, later, axes=[[3], [2]])
    size = later.shape[0]
    if size > weight.shape[0]:
        outer, size = ops.transpose(outer, [3, 4, 2, 0, 1]), weight.shape[0]
    return sum(ops.pad(outer[:, :, :, a, b], [[a, size - 1 - a], [b, size - 1 - b], [0, 0]])
               for a in range(size) for b in range(size))


def build_patch_discriminator(layers: int = 7, width: int = 64, kernel_size: int = 7, channels: int = 3,
                              init_gain: float = 0.1, seed: int | None = None,
                              dtype_policy: str = "float32") -> keras.Sequential:
    """The patch discriminator D: (1, s, s, C) in [-1, 1] -> (1, s-kernel_size+1, .., 1) in (0, 1).

    A `kernel_size` conv (no activation), then `layers` - 2 blocks of 1x1 conv + BatchNorm +
    ReLU, then a 1x1 conv to one channel and a sigmoid: each output judges one
    kernel_size x kernel_size patch (26 -> 20 for the default). Every conv has a bias and
    spectral normalisation (one power iteration per training call); the 1x1 convs are Dense
    layers on the channels (kernels (width_in, width_out)). Call it with
    `training=True` always: with a batch of one, BatchNorm's statistics are spatial.
    """

    def conv(filters: int, size: int, index: int) -> keras.layers.Layer:
        initializer = glorot_normal(init_gain, None if seed is None else seed + 100 + index)
        # A 1x1 conv as a Dense layer on the channels: the same function and initial weights,
        # and its weight gradient a matrix product (XLA's CPU convolution is far slower there).
        layer = (keras.layers.Dense(filters, kernel_initializer=initializer, dtype=dtype_policy) if size == 1 else
                 keras.layers.Conv2D(filters, size, padding="valid", kernel_initializer=initializer,
                                     dtype=dtype_policy))
        return keras.layers.SpectralNormalization(layer, power_iterations=1, dtype=dtype_policy,
                                                  name=f"d_conv_{index + 1}")

    stack = [keras.Input((None, None, channels)), conv(width, kernel_size, 0)]
    for i in range(1, layers - 1):
        stack += [conv(width, 1, i),
                  keras.layers.BatchNormalization(
                      gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02, seed=None if seed is None else seed + 200 + i),
                      dtype=dtype_policy, name=f"d_norm_{i}"),
                  keras.layers.ReLU(dtype=dtype_policy)]
    stack += [conv(1, 1, layers - 1), keras.layers.Activation("sigmoid", dtype="float32")]
    return keras.Sequential(stack, name="patch_discriminator")


def discriminator_with_optimizer(c, channels: int, seed: int) -> tuple[keras.Sequential, keras.optimizers.Adam]:
    """The patch discriminator that `c` (a KernelEstimationConfig) describes, for `channels`-channel
    crops, seeded, with its built Adam (estimation_learning_rate, estimation_beta_1, beta_2 0.999)."""
    discriminator = build_patch_discriminator(c.patch_discriminator_layers, c.patch_discriminator_width,
                                              c.patch_discriminator_kernel_size, channels, c.init_gain, seed,
                                              c.estimation_precision)
    optimizer = keras.optimizers.Adam(c.estimation_learning_rate, beta_1=c.estimation_beta_1, beta_2=0.999)
    optimizer.build(discriminator.trainable_variables)
    return discriminator, optimizer


def discriminator_step(discriminator: keras.Model, optimizer: keras.optimizers.Optimizer, fake, real):
    """One step of KernelGAN's D: L1 of its maps to 0 on `fake` and to 1 on `real` crops
    ((1, d, d, C) in [-1, 1]), averaged; applied with `optimizer`. Returns the float32 D loss."""

    def loss():
        d_fake = ops.cast(discriminator(fake, training=True), "float32")
        d_true = ops.cast(discriminator(real, training=True), "float32")
        return 0.5 * (ops.mean(ops.abs(d_fake)) + ops.mean(ops.abs(d_true - 1))), None

    variables = discriminator.trainable_variables
    (d_loss, _), grads = backend.value_and_grad(loss, variables, discriminator.non_trainable_variables)
    optimizer.apply(grads, variables)
    return d_loss
