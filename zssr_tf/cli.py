"""The `zssr` command: `zssr train IMAGE [--config YAML] [--gt GT] [--kernel FILE ...] [key=value ...]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from zssr_tf.errors import ZSSRError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zssr", description="Zero-Shot Super-Resolution of one image.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="super-resolve one image (trains a small CNN on it)",
                                description="Super-resolve IMAGE. Settings come from --config (a YAML "
                                            "file or preset name) and key=value overrides, e.g. noise_std=0.02.")
    train.add_argument("inputs", nargs="*", metavar="IMAGE [key=value ...]",
                       help="input image (PNG, JPEG, TIFF; 8/16-bit, gray/RGB/RGBA), then config overrides "
                            "such as noise_std=0.02 or train.max_iters=500")
    train.add_argument("--demo", action="store_true", help="run on a small demo image shipped with scikit-image")
    train.add_argument("--config", help="YAML config file or preset name (default, gradual_x2, x4, given_kernel, real)")
    train.add_argument("--gt", help="ground-truth HR image: print PSNR/SSIM of ZSSR and bicubic")
    train.add_argument("--kernel", nargs="+", default=None, metavar="FILE",
                       help="downscaling kernel per scale step (.mat with variable Kernel, or .npy)")
    train.add_argument("--out", default=None, help="output folder (default: run.output_dir)")
    train.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may come after options (zssr train a.png --out o noise_std=0.1): argparse
    # leaves those positionals over, so collect them here.
    args, extras = parser.parse_known_args(argv)
    unknown = [e for e in extras if e.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    positionals = args.inputs + extras
    args.overrides = [p for p in positionals if "=" in p and not Path(p).exists()]
    images = [p for p in positionals if p not in args.overrides]
    if len(images) > 1:
        parser.error(f"one input image at a time, got {images}; overrides take the form key=value")
    args.image = images[0] if images else None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return train(args)
    except ZSSRError as err:
        print(f"zssr: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zssr: interrupted", file=sys.stderr)
        return 130


def train(args: argparse.Namespace) -> int:
    import yaml

    from zssr_tf.config import load_config
    from zssr_tf.image_io import read_image
    from zssr_tf.kernels import load_kernel

    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    image_path = _input_path(args)
    image, alpha, info = read_image(image_path)
    gt = read_image(args.gt)[0] if args.gt else None
    kernels = [load_kernel(k) for k in args.kernel] if args.kernel else None

    from zssr_tf.pipeline import super_resolve_file  # imports TensorFlow: after the cheap checks

    out_dir = Path(args.out or config.run.output_dir)
    outcome = super_resolve_file(config, image, alpha, info, out_dir, gt=gt, kernels=kernels)
    print(f"saved {outcome.sr_path} ({outcome.result.sr.shape[1]}x{outcome.result.sr.shape[0]}) "
          f"and {outcome.bicubic_path}")
    if outcome.metrics:
        z, b = outcome.metrics["zssr"], outcome.metrics["bicubic"]
        print(f"PSNR-Y  zssr {z['psnr']:.2f} dB   bicubic {b['psnr']:.2f} dB   gain {z['psnr'] - b['psnr']:+.2f} dB")
        print(f"SSIM-Y  zssr {z['ssim']:.4f}     bicubic {b['ssim']:.4f}")
    return 0


def _input_path(args: argparse.Namespace) -> str:
    if args.demo:
        import skimage

        return str(Path(skimage.__file__).parent / "data" / "chelsea.png")
    if not args.image:
        raise ZSSRError("no input image: give a path (zssr train photo.png) or --demo")
    return args.image


if __name__ == "__main__":
    sys.exit(main())
