"""Pretrain the warm start shipped as zssr_tf/weights/warm_start_x2.npz (`model.init_weights=warm_start`).

    python experiments/pretrain_warm_start.py [--steps 1000] [--batch 8] [--crop 64] [--seed 0]
        [--eval-every 250] [--out zssr_tf/weights/warm_start_x2.npz]

The defaults made the shipped file (39 minutes on 2 CPU cores shared with two other
trainings, 2.3 s per step; output in experiments/results/warm_start_pretrain.txt).

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
(float16) and read back. No Set5/Set14 image is used: they are the benchmark.
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
from zssr_tf.hashing import file_sha256  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.model import build_zssr_net  # noqa: E402
from zssr_tf.precision import resolve_precision  # noqa: E402
from zssr_tf.resize import imresize  # noqa: E402
from zssr_tf.warm_start import WARM_START, read_init_weights, save_weights, set_init_weights  # noqa: E402

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


def make_batch(images: list[np.ndarray], batch: int, crop: int, config, rng: np.random.Generator):
    """([batch, crop, crop, 3] interpolated sons, [batch, crop, crop, 3] fathers), float32 in [0, 1]."""
    sons, fathers = [], []
    for _ in range(batch):
        father = make_father(images[int(rng.integers(len(images)))], crop, rng)
        lr_son = father_to_son(father, SCALE, config.scale.downscale_method, 0.0, rng)
        sons.append(interpolate_son(lr_son, SCALE, father.shape[:2], config.scale.upscale_method))
        fathers.append(father)
    return np.stack(sons), np.stack(fathers)


def held_out_pair(config) -> tuple[np.ndarray, np.ndarray]:
    """(cubic upscale of the x2 LR image, HR image) of HELD_OUT, its sides cropped to even."""
    hr = read_rgb(HELD_OUT)
    hr = hr[:hr.shape[0] // 2 * 2, :hr.shape[1] // 2 * 2]
    lr = father_to_son(hr, SCALE, config.scale.downscale_method, 0.0, np.random.default_rng(0))
    return interpolate_son(lr, SCALE, hr.shape[:2], config.scale.upscale_method), hr


def held_out_psnr(network: keras.Model, upscaled: np.ndarray, hr: np.ndarray) -> float:
    """PSNR-Y (dB) of the network's x2 output against the HR image (evaluation protocol)."""
    sr = np.clip(keras.ops.convert_to_numpy(network(upscaled[None], training=False))[0], 0, 1)
    return evaluate(sr, hr, SCALE)["psnr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8, help="crops per step")
    parser.add_argument("--crop", type=int, default=64, help="HR father side (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--out", type=Path, default=WARM_START)
    args = parser.parse_args()

    config = load_config()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = [read_rgb(name) for name in TRAIN_IMAGES]
    upscaled, hr = held_out_pair(config)
    precision = resolve_precision(config.train.precision)
    m = config.model
    network = build_zssr_net(m.depth, m.width, 3, m.init_variance, dtype_policy=precision)
    schedule = keras.optimizers.schedules.CosineDecay(PEAK_LEARNING_RATE, args.steps, alpha=FINAL_RATE_FRACTION)
    network.compile(optimizer=keras.optimizers.Adam(schedule), loss="mean_absolute_error")

    bicubic = evaluate(upscaled, hr, SCALE)["psnr"]
    print(f"training on {len(images)} images of {SKIMAGE_DATA}: {', '.join(TRAIN_IMAGES)}")
    print(f"x{SCALE[0]:g}, depth {m.depth}, width {m.width}, {precision}; {args.steps} steps of {args.batch} "
          f"{args.crop}x{args.crop} crops, Adam, cosine from {PEAK_LEARNING_RATE:g} to "
          f"{PEAK_LEARNING_RATE * FINAL_RATE_FRACTION:g}, seed {args.seed}")
    print(f"held out {HELD_OUT} ({hr.shape[1]}x{hr.shape[0]}): bicubic PSNR-Y {bicubic:.2f} dB", flush=True)
    start, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        sons, fathers = make_batch(images, args.batch, args.crop, config, rng)
        losses.append(float(network.train_on_batch(sons, fathers)))
        if step % args.eval_every == 0 or step == args.steps:
            psnr = held_out_psnr(network, upscaled, hr)
            print(f"step {step:5d}  L1 {np.mean(losses):.5f}  rate {float(schedule(step)):.2e}  held-out PSNR-Y "
                  f"{psnr:.2f} dB ({psnr - bicubic:+.2f} vs bicubic)  {time.perf_counter() - start:.0f} s", flush=True)
            losses = []

    path = save_weights(network, args.out)
    reread = build_zssr_net(m.depth, m.width, 3, m.init_variance)
    set_init_weights(reread, read_init_weights(dataclasses.replace(m, init_weights=str(path)), 3))
    psnr = held_out_psnr(reread, upscaled, hr)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, float16, sha256 {file_sha256(path)[:16]}): "
          f"held-out {HELD_OUT} PSNR-Y {psnr:.2f} dB, bicubic {bicubic:.2f} dB ({psnr - bicubic:+.2f} dB)")


if __name__ == "__main__":
    main()
