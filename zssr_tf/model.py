"""The image-specific network: a plain conv stack that learns the residual over interpolation."""

from __future__ import annotations

import math

import keras


def build_zssr_net(depth: int = 8, width: int = 64, channels: int = 3, init_variance: float = 0.1,
                   dtype_policy: str = "float32", input_noise_std: float = 0.0) -> keras.Model:
    """Fully convolutional ZSSR net on any (None, None, channels) input.

    `depth` 3x3 conv layers without biases (as in the paper's code), `width` filters, ReLU on
    all but the last, which is linear with `channels` outputs; output = input + convs(input).
    Weights ~ N(0, init_variance / fan_in). Under a mixed `dtype_policy` the convs compute in
    low precision while the last layer and the skip addition stay float32.
    `input_noise_std` > 0 adds Gaussian noise of that std (in [0, 1] units) to the input of the
    conv stack, not to the skip, during training only (ZSRGAN, Lee et al. 2021; its reference
    code also adds it at test time, which only blurs the output).
    """
    inputs = keras.Input(shape=(None, None, channels), name="interpolated_lr")
    x = inputs
    if input_noise_std > 0:
        x = keras.layers.GaussianNoise(input_noise_std, name="input_noise")(x)
    in_channels = channels
    for i in range(depth):
        last = i == depth - 1
        x = keras.layers.Conv2D(
            channels if last else width,
            3,
            padding="same",
            use_bias=False,
            activation=None if last else "relu",
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=math.sqrt(init_variance / (9 * in_channels))),
            dtype="float32" if last else dtype_policy,
            name="residual" if last else f"conv_{i + 1}",
        )(x)
        in_channels = width
    outputs = keras.layers.Add(dtype="float32", name="global_skip")([inputs, x])
    return keras.Model(inputs, outputs, name="zssr")
