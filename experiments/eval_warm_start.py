"""What the shipped warm start does before any per-image training: PSNR-Y / SSIM-Y of its x2
output (one forward pass over the cubic upscale of the MATLAB-made LR image; no self-ensemble,
no back-projection) against the cubic upscale itself, on Set5 x2.

    python experiments/eval_warm_start.py [--weights warm_start|PATH] [--set set5]

Prints a table; the run of the shipped file is in experiments/results/warm_start_set5_untrained.txt.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zssr_tf.augment import interpolate_son  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.model import build_zssr_net  # noqa: E402
from zssr_tf.warm_start import read_init_weights, set_init_weights  # noqa: E402
from common import benchmark_data_dir  # noqa: E402

SCALE = (2.0, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="warm_start", help="model.init_weights: warm_start or a .npz path")
    parser.add_argument("--set", default="set5", help="benchmark set folder name")
    args = parser.parse_args()

    config = load_config(overrides=[f"init_weights={args.weights}"])
    m = config.model
    network = build_zssr_net(m.depth, m.width, 3, m.init_variance)
    set_init_weights(network, read_init_weights(m, 3))
    folder = benchmark_data_dir() / args.set
    print(f"init_weights={args.weights}, {folder}, x2, untrained on the image")
    print("| image | warm start PSNR-Y | SSIM-Y | cubic PSNR-Y | SSIM-Y | gain (dB) |\n|---|---|---|---|---|---|")
    rows = []
    for path in sorted((folder / "lr_x2").glob("*.png")):
        lr, hr = read_image(path)[0], read_image(folder / "hr" / path.name)[0]
        if lr.shape[2] != 3:
            continue  # the shipped network is for RGB images
        cubic = interpolate_son(lr, SCALE, (2 * lr.shape[0], 2 * lr.shape[1]), config.scale.upscale_method)
        sr = np.clip(keras.ops.convert_to_numpy(network(cubic[None], training=False))[0], 0, 1)
        warm, plain = evaluate(sr, hr, SCALE), evaluate(cubic, hr, SCALE)
        rows.append((warm["psnr"], warm["ssim"], plain["psnr"], plain["ssim"]))
        print(f"| {path.stem} | {warm['psnr']:.2f} | {warm['ssim']:.4f} | {plain['psnr']:.2f} | {plain['ssim']:.4f} "
              f"| {warm['psnr'] - plain['psnr']:+.2f} |", flush=True)
    psnr, ssim, cubic_psnr, cubic_ssim = np.mean(rows, axis=0)
    print(f"| **mean** | **{psnr:.2f}** | {ssim:.4f} | {cubic_psnr:.2f} | {cubic_ssim:.4f} | {psnr - cubic_psnr:+.2f} |")


if __name__ == "__main__":
    main()
