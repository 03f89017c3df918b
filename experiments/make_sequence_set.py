"""Make the many-image benchmarks: a frame sequence and a photo album, both degraded with ONE kernel.

    python experiments/make_sequence_set.py OUT_DIR [--frames 20] [--album 10] [--hr-size 192]
        [--step 6] [--noise 0.004] [--scale 2] [--seed 0]

- `OUT_DIR/sequence/`: `--frames` frames made by sliding an `--hr-size` square window over
  scikit-image's `astronaut` photo, `--step` HR pixels right and down per frame (neighbouring
  frames share most of their content, as a slow pan in a video or a drifting time-lapse).
- `OUT_DIR/album/`: `--album` different photos shipped with scikit-image, each centre-cropped to
  `--hr-size` (an album from one scanner: other content, the same degradation).

Every HR crop is blurred with the same DIV2KRK-style anisotropic kernel (drawn with `--seed`,
`degradation.random_anisotropic_kernel`), subsampled x`--scale` (block-centre, as DIV2KRK),
given Gaussian noise of std `--noise` ([0, 1] scale) and written as 8-bit PNG:
`<set>/lr_x<scale>/frame_<k>.png` (or `<photo>.png`), the HR crops as `<set>/hr/...`, the kernel as
`kernel.npy` and `manifest.json` (window positions, kernel parameters, noise, seed). The same
arguments give the same files. Nothing is downloaded: the photos ship inside scikit-image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from skimage import data as skdata

from zssr_tf.degradation import degrade, random_anisotropic_kernel
from zssr_tf.image_io import ImageInfo, write_image

# RGB photos that ship with scikit-image (no download), at least 256 px on each side.
ALBUM_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "immunohistochemistry",
                "retina", "colorwheel", "logo", "hubble_deep_field", "cat")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--frames", type=int, default=20, help="frames in the sequence (default 20)")
    parser.add_argument("--album", type=int, default=10, help="photos in the album (default 10)")
    parser.add_argument("--hr-size", type=int, default=192, help="side of every HR crop in pixels (default 192)")
    parser.add_argument("--step", type=int, default=6, help="HR pixels the window moves per frame (default 6)")
    parser.add_argument("--noise", type=float, default=0.004, help="Gaussian noise std on the LR images (default 0.004 ~ 1/255)")
    parser.add_argument("--scale", type=int, default=2, help="whole-number downscaling factor (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    kernel, params = random_anisotropic_kernel(rng, size=11)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    np.save(args.out_dir / "kernel.npy", kernel)
    pan = _photo("astronaut")
    if (args.frames - 1) * args.step + args.hr_size > min(pan.shape[:2]):
        parser.error(f"{args.frames} frames of {args.hr_size} px moving {args.step} px do not fit the "
                     f"{pan.shape[0]}x{pan.shape[1]} photo: lower --frames, --step or --hr-size")
    sequence = {f"frame_{k:03d}": pan[k * args.step:k * args.step + args.hr_size,
                                      k * args.step:k * args.step + args.hr_size] for k in range(args.frames)}
    album = {}
    for name in ALBUM_PHOTOS:
        photo = _photo(name)
        if photo is not None and min(photo.shape[:2]) >= args.hr_size and len(album) < args.album:
            album[name] = _centre_crop(photo, args.hr_size)
    manifest = {"kernel": params, "kernel_file": "kernel.npy", "scale": args.scale, "alignment": "block_centre",
                "noise_std": args.noise, "seed": args.seed, "hr_size": args.hr_size,
                "sequence": {"photo": "astronaut", "step": args.step, "frames": list(sequence)},
                "album": list(album)}
    for set_name, crops in (("sequence", sequence), ("album", album)):
        for name, hr in crops.items():
            lr = degrade(hr, kernel, args.scale, "block_centre", args.noise, rng)
            _write(args.out_dir / set_name / "hr" / f"{name}.png", hr)
            _write(args.out_dir / set_name / f"lr_x{args.scale}" / f"{name}.png", lr)
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(sequence)} frames and {len(album)} album photos to {args.out_dir}")
    return 0


def _photo(name: str) -> np.ndarray | None:
    """A scikit-image sample photo as float32 RGB (H, W, 3) in [0, 1], or None when this
    scikit-image lacks it or it is not RGB."""
    loader = getattr(skdata, name, None)
    if loader is None:
        return None
    image = np.asarray(loader())
    if image.ndim != 3 or image.shape[2] < 3:
        return None
    return (image[..., :3] / 255.0).astype(np.float32)


def _centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return image[top:top + side, left:left + side]


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, image, ImageInfo(str(path), 8, image.shape[2], image.shape[0], image.shape[1]))


if __name__ == "__main__":
    sys.exit(main())
