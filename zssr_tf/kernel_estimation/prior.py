"""A kernel prior: a normalising flow over x2 blur kernels (FKP: Liang, Zhang, Gool & Timofte,
"Flow-based Kernel Prior with Application to Blind Super-Resolution", CVPR 2021).

The flow maps a K x K kernel, in the logit space below, one-to-one onto a K^2-d standard normal
latent. Trained on synthetic anisotropic Gaussian kernels (`sample_training_kernels`, no images),
it turns kernel estimation into a search over latents (`fkp.py`): every latent decodes to a
plausible anisotropic kernel, which KernelGAN's free linear generator cannot promise.

Architecture (RealNVP, Dinh, Sohl-Dickstein & Bengio, ICLR 2017, sized as FKP sizes it for x2):
`blocks` affine coupling layers whose masks alternate between the even and the odd taps, each
followed by a batch-norm flow layer. A coupling keeps the masked taps and moves the others,
u = x_m + (1 - m) * (x - t(x_m)) * exp(-s(x_m)), where the scale net s is Dense-tanh-Dense-tanh-Dense
and the translation net t the same with ReLU. Kernels enter the flow as
x = logit(alpha + (1 - 2 alpha) * k / normalization) and leave it through the inverse map.

The weights are a .npz file (`save_prior` / `load_prior`): the flow's variables in order plus its
sizes and the kernel space it was trained on. The package ships one for x2 (`prior_file.PRIOR_X2`, written
by experiments/train_kernel_prior.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from zssr_tf.errors import ZSSRError
from zssr_tf.kernel_estimation.prior_file import META_KEYS, PRIOR_FIX, read_prior_file, resolve_prior_path

ALPHA = 1e-6  # keeps the logit finite at k = 0 and k = normalization
# Training kernels' covariance eigenvalues, px^2: FKP's x2 range, 0.175 * 2 to 2.5 * 2. It
# contains DIV2KRK's U(0.6, 5) (degradation.random_anisotropic_kernel).
VARIANCE_RANGE = (0.35, 5.0)
DEQUANTIZATION = 1 / 720  # uniform noise added to training kernels in [0, 1] units (FKP's value)


def anisotropic_gaussians(variances: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """Kernels of anisotropic Gaussians centred on the middle tap, each normalised to sum 1.

    variances: (N, 2) covariance eigenvalues in px^2 (> 0); angles: (N,) radians, the turn of
    the first eigenvector from the x axis; size: odd side. Returns (N, size, size) float64.
    `kernels.gaussian_kernel` draws one such kernel; this is the vectorised form for training.
    """
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    along, across = c * x + s * y, -s * x + c * y
    exponent = along ** 2 / variances[:, 0, None, None] + across ** 2 / variances[:, 1, None, None]
    kernels = np.exp(-0.5 * exponent)
    return kernels / kernels.sum(axis=(1, 2), keepdims=True)


def sample_training_kernels(rng: np.random.Generator, count: int, size: int = 11,
                            variance_range=VARIANCE_RANGE) -> np.ndarray:
    """`count` random kernels as FKP trains its prior: both variances ~ U(variance_range) px^2,
    angle ~ U(0, pi), no noise. Returns (count, size, size) float64, each summing to 1."""
    variances = rng.uniform(*variance_range, size=(count, 2))
    return anisotropic_gaussians(variances, rng.uniform(0, math.pi, count), size)


def kernel_normalization(size: int = 11, variance_range=VARIANCE_RANGE) -> float:
    """The largest tap any training kernel can have (the sharpest, round one's) plus 0.01: kernels
    divided by it lie in [0, 1) before the logit (FKP's choice)."""
    low = variance_range[0]
    return float(anisotropic_gaussians(np.array([[low, low]]), np.zeros(1), size).max()) + 0.01


class _Coupling(keras.layers.Layer):
    """One affine coupling layer (RealNVP): the taps where `mask` is 1 are kept, the others scaled
    and shifted by functions of the kept ones. forward: (N, D) data -> ((N, D) latent, (N,)
    log|det|); inverse: (N, D) latent -> (N, D) data."""

    def __init__(self, size: int, hidden: int, mask: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.mask = ops.convert_to_tensor(mask, "float32")
        self.scale_net = keras.Sequential([keras.layers.Dense(hidden, "tanh"), keras.layers.Dense(hidden, "tanh"),
                                           keras.layers.Dense(size)])
        self.shift_net = keras.Sequential([keras.layers.Dense(hidden, "relu"), keras.layers.Dense(hidden, "relu"),
                                           keras.layers.Dense(size)])

    def build(self, input_shape):
        self.scale_net.build(input_shape)
        self.shift_net.build(input_shape)

    def forward(self, x):
        kept = x * self.mask
        log_scale, shift = self.scale_net(kept), self.shift_net(kept)
        u = kept + (1 - self.mask) * (x - shift) * ops.exp(-log_scale)
        return u, -ops.sum((1 - self.mask) * log_scale, axis=1)

    def inverse(self, u):
        kept = u * self.mask
        log_scale, shift = self.scale_net(kept), self.shift_net(kept)
        return kept + (1 - self.mask) * (u * ops.exp(log_scale) + shift)


class _FlowBatchNorm(keras.layers.Layer):
    """Batch normalisation as an invertible flow layer (RealNVP §3.7): batch statistics while
    training (they also update the moving ones), the moving statistics otherwise."""

    def __init__(self, size: int, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.size, self.momentum, self.epsilon = size, momentum, epsilon

    def build(self, input_shape):
        self.log_gamma = self.add_weight(shape=(self.size,), initializer="zeros", name="log_gamma")
        self.beta = self.add_weight(shape=(self.size,), initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=(self.size,), initializer="zeros", trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=(self.size,), initializer="ones", trainable=False,
                                               name="moving_variance")

    def forward(self, x, training: bool = False):
        if training:
            mean, variance = ops.moments(x, axes=[0])
            self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance + (1 - self.momentum) * variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        y = ops.exp(self.log_gamma) * (x - mean) / ops.sqrt(variance + self.epsilon) + self.beta
        log_det = ops.sum(self.log_gamma - 0.5 * ops.log(variance + self.epsilon))
        return y, log_det * ops.ones_like(y[:, 0])

    def inverse(self, y):
        return (y - self.beta) * ops.exp(-self.log_gamma) * ops.sqrt(self.moving_variance + self.epsilon) \
            + self.moving_mean


class KernelPrior(keras.Model):
    """The flow between K x K kernels and K^2-d standard normal latents (module docstring).

    `kernel_size` odd (11 for x2), `blocks` coupling + batch-norm pairs (5), `hidden` units of
    the coupling nets (15), `normalization` (None: `kernel_normalization` of `variance_range`),
    `variance_range` (low, high) px^2 of the training kernels (stored with the weights, used for
    `normalization`). Float32 throughout; batch (N, K^2) tensors in and out.
    """

    def __init__(self, kernel_size: int = 11, blocks: int = 5, hidden: int = 15, normalization: float | None = None,
                 variance_range=VARIANCE_RANGE, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.blocks, self.hidden = kernel_size, blocks, hidden
        self.variance_range = tuple(float(v) for v in variance_range)
        self.normalization = (kernel_normalization(kernel_size, variance_range) if normalization is None
                              else float(normalization))
        size = self.latent_size
        mask = (np.arange(size) % 2).astype(np.float32)
        self.flow_layers = []
        for i in range(blocks):
            self.flow_layers += [_Coupling(size, hidden, mask, name=f"coupling_{i}"),
                                 _FlowBatchNorm(size, name=f"flow_norm_{i}")]
            mask = 1 - mask
        for layer in self.flow_layers:
            layer.build((None, size))

    @property
    def latent_size(self) -> int:
        """K^2: the dimension of a flattened kernel and of its latent."""
        return self.kernel_size ** 2

    def forward(self, x, training: bool = False):
        """Flow-space kernels (N, K^2) -> latents (N, K^2) and log|det du/dx| (N,)."""
        log_det = ops.zeros_like(x[:, 0])
        for layer in self.flow_layers:
            x, step = layer.forward(x, training=training) if isinstance(layer, _FlowBatchNorm) else layer.forward(x)
            log_det += step
        return x, log_det

    def inverse(self, u):
        """Latents (N, K^2) -> flow-space kernels (N, K^2) (moving batch-norm statistics)."""
        for layer in reversed(self.flow_layers):
            u = layer.inverse(u)
        return u

    def log_prob(self, x, training: bool = False):
        """log p(x) of flow-space kernels (N, K^2) under the flow with a standard normal base (N,)."""
        u, log_det = self.forward(x, training=training)
        return ops.sum(-0.5 * ops.square(u), axis=1) - 0.5 * self.latent_size * math.log(2 * math.pi) + log_det

    def to_flow_space(self, kernels: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """(N, K, K) kernels -> (N, K^2) float32 flow inputs: clipped at 0, divided by
        `normalization`, plus uniform noise of up to DEQUANTIZATION when `rng` is given (as in
        training), clipped to [0, 1] (a tap above `normalization`, sharper than any training
        kernel, saturates), then logit(ALPHA + (1 - 2 ALPHA) k): finite, |x| <= 13.8."""
        k = np.clip(np.asarray(kernels, np.float64), 0, None).reshape(len(kernels), -1) / self.normalization
        if rng is not None:
            k = k + rng.uniform(0, DEQUANTIZATION, k.shape)
        k = ALPHA + (1 - 2 * ALPHA) * np.clip(k, 0, 1)  # taps above `normalization` (none in training) saturate
        return np.log(k / (1 - k)).astype(np.float32)

    def to_kernels(self, x):
        """Flow-space kernels (N, K^2) -> (N, K, K) kernels: float32 backend-tensor taps in
        [-ALPHA x normalization, normalization] (the inverse of `to_flow_space` without its noise),
        not renormalised: decoded kernels sum to about 1."""
        k = (ops.sigmoid(x) - ALPHA) / (1 - 2 * ALPHA) * self.normalization
        return ops.reshape(k, (-1, self.kernel_size, self.kernel_size))

    def decode(self, latents):
        """Latents (N, K^2) -> kernels (N, K, K): `to_kernels(inverse(latents))`. Differentiable."""
        return self.to_kernels(self.inverse(latents))


def save_prior(prior: KernelPrior, path: str | Path) -> Path:
    """Write `prior`'s variables (in order, float32) and sizes to the .npz `path`; returns it."""
    path = Path(path)
    arrays = {f"v{i}": np.asarray(ops.convert_to_numpy(v), np.float32) for i, v in enumerate(prior.variables)}
    meta = dict(zip(META_KEYS, (prior.kernel_size, prior.blocks, prior.hidden, prior.normalization,
                                 *prior.variance_range)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:  # np.savez(path) would append .npz to another suffix
        np.savez(file, **arrays, **{k: np.asarray(v) for k, v in meta.items()})
    return path


def load_prior(prior_weights: str | Path = "auto") -> KernelPrior:
    """The KernelPrior stored at `prior_weights` ("auto" = the shipped x2 prior, or a .npz written
    by `save_prior`). Raises ZSSRError naming the fix for every fault `read_prior_file` finds and
    for weights that do not fit the sizes the file names."""
    meta, stored = read_prior_file(prior_weights)
    prior = KernelPrior(int(meta["kernel_size"]), int(meta["blocks"]), int(meta["hidden"]),
                        meta["normalization"], (meta["variance_low"], meta["variance_high"]))
    variables = prior.variables
    shapes = [tuple(stored.get(f"v{i}", np.empty(0)).shape) for i in range(len(variables))]
    if len(stored) != len(variables) or shapes != [tuple(v.shape) for v in variables]:
        raise ZSSRError(f"kernel prior {resolve_prior_path(str(prior_weights))}: its weights do not fit the flow "
                        f"its sizes describe; {PRIOR_FIX}")
    for i, variable in enumerate(variables):
        variable.assign(stored[f"v{i}"])
    return prior
