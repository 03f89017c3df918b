"""ZSRGAN's discriminator: a DCGAN-style stack of stride-2 convolutions ending in a patch map."""

from __future__ import annotations

import keras

BLOCKS = 4


def build_discriminator(channels: int = 3, width: int = 64, dtype_policy: str = "float32") -> keras.Model:
    """The patch discriminator of ZSRGAN (Lee et al. 2021; DCGAN, Radford et al. 2016, less one block).

    Input (N, P, P, `channels`) float32 images in [0, 1] (any P >= 64). Four blocks of a 4x4
    stride-2 convolution (padding 1, no bias), batch norm and LeakyReLU(0.2), with `width`,
    2x, 4x, 8x `width` filters (64 -> 512 by default; batch norm also in the first block), then
    a 4x4 valid convolution to one map and a sigmoid. Output (N, P/16 - 3, P/16 - 3, 1) float32
    probabilities that each patch is real: 5x5 for P = 128, 1x1 for P = 64. Conv weights are
    Xavier-normal; batch norm uses PyTorch's defaults (momentum 0.1, i.e. Keras 0.9, eps 1e-5).
    """
    inputs = keras.Input(shape=(None, None, channels), name="image")
    x = inputs
    for i in range(BLOCKS):
        # Explicit padding 1 then a valid conv: exactly P -> P/2 as in the reference, for any P.
        x = keras.layers.ZeroPadding2D(1, dtype=dtype_policy, name=f"pad_{i + 1}")(x)
        x = keras.layers.Conv2D(width * 2**i, 4, strides=2, use_bias=False, kernel_initializer="glorot_normal",
                                dtype=dtype_policy, name=f"conv_{i + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype_policy, name=f"bn_{i + 1}")(x)
        x = keras.layers.LeakyReLU(0.2, dtype=dtype_policy, name=f"lrelu_{i + 1}")(x)
    outputs = keras.layers.Conv2D(1, 4, use_bias=False, activation="sigmoid", kernel_initializer="glorot_normal",
                                  dtype="float32", name="patch_real")(x)
    return keras.Model(inputs, outputs, name="discriminator")
