"""Pretrain the warm starts shipped in zssr_tf/weights/: `warm_start_x2.npz` (bicubic sons,
`model.init_weights=warm_start`) and `warm_start_blind_x2.npz` (sons made by random blur kernels,
`model.init_weights=warm_start_blind`).

    python experiments/pretrain_warm_start.py [--kernels bicubic|random] [--photo] [--method plain|reptile]
        [--steps 1000] [--batch 8] [--crop 64] [--seed 0] [--eval-every 250]
        [--inner-steps 5] [--init none|warm_start|PATH] [--out PATH]

`--kernels bicubic` (the default) made warm_start_x2.npz (39 minutes on 2 CPU cores shared with
two other trainings, 2.3 s per step; output in experiments/results/warm_start_pretrain.txt).
`--photo` (with `--out`: no photo warm start is shipped) also gives every son Gaussian noise (std
U(0, 10/255), 75 % of sons) and a JPEG round trip (quality U{40..95}, 60 %), as a phone shot's;
measured in experiments/reports/real-photos.md and not shipped.
`--kernels random` makes every pair's son with its own kernel (`random_son_kernel`): a
DIV2KRK-style anisotropic Gaussian (`degradation.random_anisotropic_kernel`), a round Gaussian,
or MATLAB's bicubic kernel, under either subsampling convention (block centre or direct), and
the network input is the cubic upscale on that convention's grid, as ZSSR trains with a given
or estimated kernel. `--method reptile` is first-order meta-learning (Reptile, Nichol, Achiam &
Schulman 2018; the idea behind MZSR, Soh et al., CVPR 2020): `--inner-steps` Adam steps on
batches of one kernel, then the weights move a fraction (1 falling linearly to 0) of the way
to the adapted ones; `--steps` counts inner steps, so both methods see as many batches.

The default ZSSR network (default config: 8 conv layers, 64 filters, RGB) learns x2 SR on the
photographs scikit-image ships inside its package folder (`skimage/data`, read from disk: nothing
is downloaded; gray ones repeated to RGB). Training pairs are made as ZSSR makes its father/son
pairs, with the package's own code: an HR father crop, its LR son by the configured MATLAB-bicubic
downscale (`augment.father_to_son`), the network input by the configured cubic upscale
(`augment.interpolate_son`); the network learns the residual over that upscale, with L1 loss.
Fathers: a random crop of a random image, half of them shrunk first by a factor drawn from
[MIN_SCALE, 1] (MATLAB's antialiased bicubic), under a random dihedral transform. Adam with a
cosine-decaying learning rate, a batch of crops per step. Seeded (NumPy and TensorFlow).

`chelsea` is held out: its PSNR-Y at x2 (the package's evaluation protocol) against the plain
cubic upscale is printed every --eval-every steps and, at the end, for the weights as written
(float16) and read back; with `--kernels random`, the mean over HELD_OUT_KERNELS (seeded
kernels of every kind, both conventions). No Set5/Set14 image is used: they are the benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import skimage  # noqa: E402

from zssr_tf.augment import dihedral, father_to_son, interpolate_son, random_crop  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.degradation import random_anisotropic_kernel  # noqa: E402
from zssr_tf.hashing import file_sha256  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernels import align_kernel, bicubic_kernel, gaussian_kernel, upscale_offset  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.model import build_zssr_net  # noqa: E402
from zssr_tf.precision import resolve_precision  # noqa: E402
from zssr_tf.resize import imresize  # noqa: E402
from zssr_tf.warm_start import WARM_START, WARM_START_BLIND, read_init_weights, save_weights, set_init_weights  # noqa: E402

SKIMAGE_DATA = Path(skimage.__file__).resolve().parent / "data"
# The photographs in skimage/data, colour and gray. Left out: synthetic or binary images (color,
# logo, chessboard_*, horse, phantom, cell, microaneurysms), clock_motion (blurred on purpose),
# motorcycle_right (the other view of motorcycle_left), retina and hubble_deep_field (mostly black).
TRAIN_IMAGES = ("astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "ihc.png",
                "camera.png", "coins.png", "moon.png", "page.png", "text.png", "brick.png", "grass.png",
                "gravel.png")
HELD_OUT = "chelsea.png"
SCALE = (2.0, 2.0)
MIN_SCALE = 0.5  # as augment_min_scale: fathers shrunk to at most half size
SHRINK_PROBABILITY = 0.5
PEAK_LEARNING_RATE = 1e-3  # ZSSR's Adam rate
FINAL_RATE_FRACTION = 0.01  # the cosine decays to 1e-5
# --kernels random: the share of each kind of son kernel, and of the direct convention.
BICUBIC_SHARE, ROUND_SHARE = 0.2, 0.2  # the rest are DIV2KRK-style anisotropic Gaussians
ROUND_VARIANCE_RANGE = (0.4, 5.0)      # px^2, as the anisotropic ones' U(0.6, 5) widened a little
DIRECT_SHARE = 0.5
HELD_OUT_KERNELS = 6  # --kernels random: held-out scores average over this many seeded kernels
# --photo: the share of sons with noise (std U(0, NOISE_MAX)) and with JPEG (quality U{40..95}).
NOISE_SHARE, NOISE_MAX = 0.75, 10 / 255
JPEG_SHARE, JPEG_QUALITY_RANGE = 0.6, (40, 95)


def random_son_kernel(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """One son kernel for `--kernels random`, aligned for x2 (`kernels.align_kernel`), and the
    matching upscale offset (`kernels.upscale_offset`): (float64 kernel, (dy, dx))."""
    draw = rng.random()
    if draw < BICUBIC_SHARE:
        kernel = bicubic_kernel(2)
    elif draw < BICUBIC_SHARE + ROUND_SHARE:
        sigma = float(np.sqrt(rng.uniform(*ROUND_VARIANCE_RANGE)))
        kernel = gaussian_kernel(11, sigma)
    else:
        kernel = random_anisotropic_kernel(rng)[0]
    alignment = "direct" if rng.random() < DIRECT_SHARE else "block_centre"
    return align_kernel(kernel, SCALE, alignment), upscale_offset(SCALE, alignment)


def read_rgb(name: str) -> np.ndarray:
    """skimage/data/`name` as float32 (h, w, 3) in [0, 1], gray repeated to three channels."""
    image = read_image(SKIMAGE_DATA / name)[0]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def make_father(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A (crop, crop, 3) HR father: a random crop of `image`, taken from the image shrunk by a
    factor in [MIN_SCALE, 1] with probability SHRINK_PROBABILITY, under a random dihedral transform."""
    scale = rng.uniform(MIN_SCALE, 1.0) if rng.random() < SHRINK_PROBABILITY else 1.0
    side = round(crop / scale)
    father = random_crop(image, side, rng)
    if side != crop:  # only the window is shrunk: the same as cropping the shrunk image
        father = np.clip(imresize(father, scale_factor=crop / side, output_shape=(crop, crop)), 0, 1)
    return dihedral(father, int(rng.integers(8)))


def photo_degradation(rng: np.random.Generator) -> tuple[float, int | None]:
    """`--photo`: a son's (noise std in [0, 1] units, JPEG quality or None), drawn as a phone
    shot's might be: noise in NOISE_SHARE of sons, JPEG in JPEG_SHARE."""
    noise = float(rng.uniform(0, NOISE_MAX)) if rng.random() < NOISE_SHARE else 0.0
    quality = int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1)) if rng.random() < JPEG_SHARE else None
    return noise, quality


def make_pair(father: np.ndarray, kernel, offset, config, rng: np.random.Generator,
              photo: bool = False) -> np.ndarray:
    """The interpolated son (float32, father's shape) of `father`: downscaled x2 with `kernel`
    ("cubic" or an aligned numeric kernel), with `photo` given noise and JPEG
    (`photo_degradation`), cubic-upscaled back on the grid `offset`."""
    noise, quality = photo_degradation(rng) if photo else (0.0, None)
    lr_son = father_to_son(father, SCALE, kernel, noise, rng, quality)
    return interpolate_son(lr_son, SCALE, father.shape[:2], config.scale.upscale_method, offset)


def make_batch(images: list[np.ndarray], batch: int, crop: int, config, rng: np.random.Generator,
               kernels: str, task_kernel=None, photo: bool = False):
    """([batch, crop, crop, 3] interpolated sons, [batch, crop, crop, 3] fathers), float32 in [0, 1].
    `kernels` "bicubic": MATLAB-bicubic sons; "random": a `random_son_kernel` per pair, or the
    one `task_kernel` (kernel, offset) for the whole batch (a Reptile task)."""
    sons, fathers = [], []
    for _ in range(batch):
        father = make_father(images[int(rng.integers(len(images)))], crop, rng)
        if kernels == "bicubic":
            kernel, offset = config.scale.downscale_method, (0.0, 0.0)
        else:
            kernel, offset = task_kernel or random_son_kernel(rng)
        sons.append(make_pair(father, kernel, offset, config, rng, photo))
        fathers.append(father)
    return np.stack(sons), np.stack(fathers)


def held_out_pairs(config, kernels: str, photo: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(cubic upscale of an x2 LR image, HR image)] of HELD_OUT, its sides cropped to even:
    one bicubic pair, or with `kernels` "random" one per seeded held-out kernel (each with
    seeded noise and JPEG with `photo`)."""
    hr = read_rgb(HELD_OUT)
    hr = hr[:hr.shape[0] // 2 * 2, :hr.shape[1] // 2 * 2]
    rng = np.random.default_rng(12345)  # held-out kernels: a stream of their own
    if kernels == "bicubic":
        return [(make_pair(hr, config.scale.downscale_method, (0.0, 0.0), config, rng, photo), hr)]
    return [(make_pair(hr, *random_son_kernel(rng), config, rng, photo), hr) for _ in range(HELD_OUT_KERNELS)]


def held_out_psnr(network: keras.Model, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean PSNR-Y (dB) of the network's x2 outputs against the HR image (evaluation protocol)."""
    scores = []
    for upscaled, hr in pairs:
        sr = np.clip(keras.ops.convert_to_numpy(network(upscaled[None], training=False))[0], 0, 1)
        scores.append(evaluate(sr, hr, SCALE)["psnr"])
    return float(np.mean(scores))


def reptile_update(network: keras.Model, start: list[np.ndarray], fraction: float) -> None:
    """Reptile's outer step: move the weights from `start` `fraction` of the way to the adapted
    weights the network holds now."""
    adapted = network.get_weights()
    network.set_weights([w0 + fraction * (w1 - w0) for w0, w1 in zip(start, adapted)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8, help="crops per step")
    parser.add_argument("--crop", type=int, default=64, help="HR father side (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--kernels", choices=("bicubic", "random"), default="bicubic",
                        help="sons by MATLAB's bicubic kernel, or by random blur kernels (the blind warm start)")
    parser.add_argument("--photo", action="store_true",
                        help="sons also get noise and JPEG compression (photo_degradation): a warm start for photos")
    parser.add_argument("--method", choices=("plain", "reptile"), default="plain")
    parser.add_argument("--inner-steps", type=int, default=5, help="reptile: Adam steps per kernel")
    parser.add_argument("--init", default="none",
                        help="initial weights: none (random) or a model.init_weights value (warm_start, a .npz)")
    parser.add_argument("--out", type=Path, help="default: the shipped file for --kernels")
    args = parser.parse_args()
    if args.photo and args.out is None:  # never over a shipped warm start
        parser.error("--photo needs --out: no photo warm start is shipped")
    out = args.out or (WARM_START if args.kernels == "bicubic" else WARM_START_BLIND)

    config = load_config()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = [read_rgb(name) for name in TRAIN_IMAGES]
    held_out = held_out_pairs(config, args.kernels, args.photo)
    precision = resolve_precision(config.train.precision)
    m = config.model
    network = build_zssr_net(m.depth, m.width, 3, m.init_variance, dtype_policy=precision)
    initial = read_init_weights(dataclasses.replace(m, init_weights=args.init), 3)
    if initial is not None:
        set_init_weights(network, initial)
    schedule = keras.optimizers.schedules.CosineDecay(PEAK_LEARNING_RATE, args.steps, alpha=FINAL_RATE_FRACTION)
    network.compile(optimizer=keras.optimizers.Adam(schedule), loss="mean_absolute_error")

    bicubic = float(np.mean([evaluate(upscaled, hr, SCALE)["psnr"] for upscaled, hr in held_out]))
    print(f"training on {len(images)} images of {SKIMAGE_DATA}: {', '.join(TRAIN_IMAGES)}")
    print(f"x{SCALE[0]:g}, depth {m.depth}, width {m.width}, {precision}; {args.steps} steps of {args.batch} "
          f"{args.crop}x{args.crop} crops, Adam, cosine from {PEAK_LEARNING_RATE:g} to "
          f"{PEAK_LEARNING_RATE * FINAL_RATE_FRACTION:g}, seed {args.seed}; sons: {args.kernels} kernels, "
          f"{args.method}" + (", noise and JPEG" if args.photo else "")
          + (f" ({args.inner_steps} steps per kernel)" if args.method == "reptile" else "")
          + f"; initial weights: {args.init}")
    print(f"held out {HELD_OUT} ({len(held_out)} LR image(s)): cubic upscale PSNR-Y {bicubic:.2f} dB", flush=True)
    start, losses = time.perf_counter(), []
    outer_start = network.get_weights()
    for step in range(1, args.steps + 1):
        task_step = (step - 1) % args.inner_steps
        if args.method == "reptile" and task_step == 0:
            task_kernel = random_son_kernel(rng) if args.kernels == "random" else None
        sons, fathers = make_batch(images, args.batch, args.crop, config, rng, args.kernels,
                                   task_kernel if args.method == "reptile" else None, args.photo)
        losses.append(float(network.train_on_batch(sons, fathers)))
        if args.method == "reptile" and task_step == args.inner_steps - 1:
            reptile_update(network, outer_start, 1.0 - (step - 1) / args.steps)
            outer_start = network.get_weights()
        if step % args.eval_every == 0 or step == args.steps:
            psnr = held_out_psnr(network, held_out)
            print(f"step {step:5d}  L1 {np.mean(losses):.5f}  rate {float(schedule(step)):.2e}  held-out PSNR-Y "
                  f"{psnr:.2f} dB ({psnr - bicubic:+.2f} vs bicubic)  {time.perf_counter() - start:.0f} s", flush=True)
            losses = []

    path = save_weights(network, out)
    reread = build_zssr_net(m.depth, m.width, 3, m.init_variance)
    set_init_weights(reread, read_init_weights(dataclasses.replace(m, init_weights=str(path)), 3))
    psnr = held_out_psnr(reread, held_out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, float16, sha256 {file_sha256(path)[:16]}): "
          f"held-out {HELD_OUT} PSNR-Y {psnr:.2f} dB, cubic upscale {bicubic:.2f} dB ({psnr - bicubic:+.2f} dB)")


if __name__ == "__main__":
    main()
