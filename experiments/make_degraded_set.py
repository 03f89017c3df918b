"""Make a degraded benchmark set from a folder of HR images: blur, subsample, optional noise.

    python experiments/make_degraded_set.py HR_DIR OUT_DIR --scale 2 --alignment direct \\
        (--sigma 2.0 [--size 21] | --sigma 1.0 3.0 --angle 0.5 | --variance 2.0 | --random-anisotropic |
         --kernel FILE) \\
        [--noise 0.01 | --noise-levels 0 2 5 10 --jpeg-qualities none 90 70 50 [--per-cell 2]] [--seed 0]

Writes OUT_DIR/lr_x<scale>/<name>.png (8-bit), OUT_DIR/kernels/<name>.{npy,mat} (the raw kernel;
.mat with the variable Kernel, as DIV2KRK), and OUT_DIR/manifest.{json,csv} (image, kernel file,
variances and sigmas of the Gaussian's axes, angle, alignment, scale, noise, JPEG quality, seed). The same arguments give the same files.

MZSR's Set5 "g2.0" (21x21 centred Gaussian, every 2nd pixel from (0, 0)); its 2.0 is the
Gaussian's variance (sigma = 1.414), as in the kernel code MZSR builds on (cov = diag(lambda_1,
lambda_2)): with it the bicubic PSNR-Y of all five images matches MZSR's set to 0.01 dB, with
sigma = 2.0 it is 1-1.7 dB lower (experiments/reports/given-kernels.md):
    python experiments/make_degraded_set.py ../shared/data/set5/hr experiments/data/set5_g2.0_direct \\
        --scale 2 --alignment direct --variance 2.0 --size 21
A DIV2KRK-like x2 set (random 11x11 anisotropic kernels whose covariance eigenvalues are
U(0.6, 5) px^2, as DIV2KRK's generator; block-centre as KernelGAN's):
    python experiments/make_degraded_set.py HR_DIR OUT --scale 2 --alignment block_centre --random-anisotropic

Photo-like sets: `--noise-levels` (Gaussian noise stds in 8-bit levels, /255) and
`--jpeg-qualities` (`none`: a PNG; else a JPEG written by Pillow at that IJG quality, 4:2:0) make
a grid of cells, noise x quality; `--per-cell N` (default 2) images are dealt to each cell from
the HR images shuffled with the seed (cycling through them, so each is used about equally, each
time with its own draw of the kernel and noise). The LR image of a cell is
`<stem>_n<noise>_q<quality>.png|.jpg`; the manifest adds noise_level (/255) and jpeg_quality.
Set5 + Set14 (19 images) on the 4 x 4 grid above gives 32 LR images, 2 per cell:
    python experiments/make_degraded_set.py HR_DIR OUT --random-anisotropic \
        --noise-levels 0 2 5 10 --jpeg-qualities none 90 70 50
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import io as scipy_io

from zssr_tf.degradation import degrade, random_anisotropic_kernel
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image, write_image
from zssr_tf.kernels import ALIGNMENTS, gaussian_kernel, load_kernel

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
KERNEL_PARAMETERS = ["variance_1", "variance_2", "sigma_1", "sigma_2", "angle"]  # the Gaussian's, when it is one
COLUMNS = ["image", "lr", "kernel_npy", "kernel_mat", *KERNEL_PARAMETERS, "kernel_source", "alignment", "scale",
           "noise_std", "noise_level", "jpeg_quality", "seed"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hr_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=int, default=2, help="whole-number downscaling factor (default 2)")
    parser.add_argument("--alignment", choices=ALIGNMENTS, default="block_centre",
                        help="where LR pixel i sits: block_centre (MATLAB, DIV2KRK) or direct (HR pixel s*i)")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--sigma", type=float, nargs="+", metavar="S",
                      help="Gaussian std in HR pixels: one value (isotropic) or two (sigma_1 sigma_2)")
    kind.add_argument("--variance", type=float, nargs="+", metavar="V",
                      help="Gaussian variance in HR pixels squared (sigma = sqrt(V)): one or two values")
    kind.add_argument("--random-anisotropic", action="store_true",
                      help="a new DIV2KRK-style kernel per image (covariance eigenvalues U(0.6, 5) px^2, random "
                           "angle, 25%% tap noise)")
    kind.add_argument("--kernel", type=Path, help="one kernel file (.mat or .npy) for every image")
    parser.add_argument("--angle", type=float, default=0.0, help="rotation of an anisotropic --sigma kernel, radians")
    parser.add_argument("--size", type=int, default=None,
                        help="kernel side, odd (default: 21 for --sigma, 11 for --random-anisotropic, as DIV2KRK x2)")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to the LR images ([0, 1] scale)")
    parser.add_argument("--noise-levels", type=float, nargs="+", metavar="L",
                        help="a grid of noise levels, stds in 8-bit levels (/255): with --jpeg-qualities, cells")
    parser.add_argument("--jpeg-qualities", nargs="+", metavar="Q", default=None,
                        help="a grid of JPEG qualities (1..100, or none for a PNG)")
    parser.add_argument("--per-cell", type=int, default=2, help="images per noise x quality cell (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rows = make_set(args)
    except ZSSRError as err:
        print(f"make_degraded_set: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} LR images, kernels and manifest.json/.csv to {args.out_dir}")
    return 0


def make_set(args: argparse.Namespace) -> list[dict]:
    """Degrade every image of args.hr_dir; write LR images, kernels and the manifest. Returns the rows."""
    hr_paths = sorted(p for p in args.hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not hr_paths:
        raise ZSSRError(f"no images in {args.hr_dir}")
    for name in ("sigma", "variance"):
        values = getattr(args, name)
        if values is not None and (len(values) > 2 or min(values) <= 0):
            raise ZSSRError(f"--{name} takes one positive value (isotropic) or two (one per axis)")
    lr_dir, kernel_dir = args.out_dir / f"lr_x{args.scale}", args.out_dir / "kernels"
    lr_dir.mkdir(parents=True, exist_ok=True)
    kernel_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rows = []
    for hr_path, stem, noise_level, quality in _items(args, hr_paths, rng):
        kernel, params, source = _kernel_for_image(args, rng)
        hr, _, info = read_image(hr_path)  # an alpha channel is not degraded
        noise_std = args.noise if noise_level is None else noise_level / 255
        lr = degrade(hr, kernel, args.scale, args.alignment, noise_std, rng)
        lr_path = lr_dir / f"{stem}.{'png' if quality is None else 'jpg'}"
        if quality is None:
            write_image(lr_path, lr, replace(info, bit_depth=8))
        else:
            _write_jpeg(lr_path, lr, quality)
        npy_path, mat_path = kernel_dir / f"{stem}.npy", kernel_dir / f"{stem}.mat"
        np.save(npy_path, kernel)
        scipy_io.savemat(mat_path, {"Kernel": kernel})
        rows.append({"image": hr_path.name, "lr": str(lr_path.relative_to(args.out_dir)),
                     "kernel_npy": str(npy_path.relative_to(args.out_dir)),
                     "kernel_mat": str(mat_path.relative_to(args.out_dir)), **params, "kernel_source": source,
                     "alignment": args.alignment, "scale": args.scale, "noise_std": noise_std,
                     "noise_level": "" if noise_level is None else noise_level,
                     "jpeg_quality": "none" if quality is None else quality, "seed": args.seed})
    (args.out_dir / "manifest.json").write_text(json.dumps(rows, indent=1) + "\n")
    with open(args.out_dir / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _items(args: argparse.Namespace, hr_paths: list[Path], rng: np.random.Generator
           ) -> list[tuple[Path, str, float | None, int | None]]:
    """(HR path, output stem, noise level /255 or None, JPEG quality or None) per LR image: one per
    HR image without a grid; else `args.per_cell` per noise x quality cell, dealt from the HR
    images shuffled by `rng`, cycling. Raises ZSSRError for a bad grid."""
    if args.noise_levels is None and args.jpeg_qualities is None:
        return [(path, path.stem, None, None) for path in hr_paths]
    if args.noise:
        raise ZSSRError("--noise is one level for every image; with a grid give --noise-levels instead")
    levels = args.noise_levels or [0.0]
    qualities = [_quality(q) for q in (args.jpeg_qualities or ["none"])]
    if min(levels) < 0 or args.per_cell < 1:
        raise ZSSRError("--noise-levels must be >= 0 and --per-cell >= 1")
    order = [hr_paths[i] for i in rng.permutation(len(hr_paths))]
    cells = [(level, quality) for level in levels for quality in qualities]
    items = []
    for n in range(len(cells) * args.per_cell):
        level, quality = cells[n // args.per_cell]
        path = order[n % len(order)]
        items.append((path, f"{path.stem}_n{level:g}_q{quality or 'none'}", level, quality))
    return items


def _quality(text: str) -> int | None:
    if text == "none":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ZSSRError(f"--jpeg-qualities takes qualities 1..100 or none, got {text!r}")
    return int(text)


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """`image` (h, w, C) float in [0, 1] as an 8-bit JPEG at IJG `quality`, 4:2:0 (Pillow's default)."""
    from PIL import Image

    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels).save(
        path, "JPEG", quality=quality)


def _kernel_for_image(args: argparse.Namespace, rng: np.random.Generator) -> tuple[np.ndarray, dict, str]:
    """(raw kernel, {variance_1, variance_2, sigma_1, sigma_2, angle} or empty values, a description
    of where it came from)."""
    if args.kernel is not None:
        return load_kernel(args.kernel), dict.fromkeys(KERNEL_PARAMETERS, ""), str(args.kernel)
    if args.random_anisotropic:
        kernel, params = random_anisotropic_kernel(rng, size=args.size or 11)
        return kernel, params, "random_anisotropic"
    sigmas = args.sigma if args.sigma is not None else [float(np.sqrt(v)) for v in args.variance]
    sigma_1, sigma_2 = (sigmas * 2)[:2]
    size = args.size or 21
    return gaussian_kernel(size, sigma_1, sigma_2, args.angle), {
        "variance_1": sigma_1**2, "variance_2": sigma_2**2, "sigma_1": sigma_1, "sigma_2": sigma_2,
        "angle": args.angle}, f"gaussian {size}x{size}"


if __name__ == "__main__":
    sys.exit(main())
