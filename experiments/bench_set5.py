"""Run ZSSR on every image of a benchmark set and write a results table.

    python experiments/bench_set5.py [--config default] [--set set5] [--scale 2] [key=value ...]

Reads <set>/lr_x<scale> and hr of the benchmark folder ($ZSSR_DATA, else ../shared/data, else
the Set5 shipped in tests/data; ground truth = top-left crop of hr to scale x LR size), scores by DESIGN §2 (Y channel, shave = scale) and writes
experiments/results/<set>_x<scale>_<config>[_<images>][_<overrides>].{md,csv}: per image PSNR, SSIM, bicubic PSNR/SSIM,
iterations and seconds, and the mean.
"""

from __future__ import annotations

import argparse
import csv
import re
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402
from common import RESULTS, benchmark_data_dir  # noqa: E402

DATA = benchmark_data_dir()
COLUMNS = ["image", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "iterations", "seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default", help="config file or preset name")
    parser.add_argument("--set", default="set5", choices=["set5", "set14"])
    parser.add_argument("--scale", type=int, default=2, choices=[2, 3, 4])
    parser.add_argument("--images", nargs="*", help="only these image names (e.g. baby bird)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    lr_dir, hr_dir = DATA / args.set / f"lr_x{args.scale}", DATA / args.set / "hr"
    rows = []
    for lr_path in sorted(lr_dir.glob("*.png")):
        if args.images and lr_path.stem not in args.images:
            continue
        lr, _, _ = read_image(lr_path)
        hr, _, _ = read_image(hr_dir / lr_path.name)
        gt = hr[: args.scale * lr.shape[0], : args.scale * lr.shape[1]]
        start = time.perf_counter()
        result = ZSSR(config, verbose=False).run(lr, gt=gt)
        seconds = time.perf_counter() - start
        z, b = evaluate(result.sr, gt, args.scale), evaluate(result.bicubic, gt, args.scale)
        rows.append({"image": lr_path.stem, "psnr": z["psnr"], "ssim": z["ssim"], "bicubic_psnr": b["psnr"],
                     "bicubic_ssim": b["ssim"], "iterations": result.iterations, "seconds": seconds})
        print(_format_row(rows[-1]), flush=True)
    if not rows:
        print(f"no images found in {lr_dir}", file=sys.stderr)
        return 1
    mean = {"image": "mean", **{c: sum(r[c] for r in rows) / len(rows) for c in COLUMNS[1:]}}
    print(_format_row(mean))
    # Subsets and overrides get their own file so they never overwrite the full-set table.
    parts = [args.set, f"x{args.scale}", Path(args.config).stem, *(args.images or []), *args.overrides]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / re.sub(r"[^A-Za-z0-9_.=-]+", "-", "_".join(parts))
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows + [mean])
    lines = [f"Set `{args.set}` x{args.scale}, config `{args.config}` {' '.join(args.overrides)}, "
             f"precision {result.precision}", "",
             "| image | PSNR-Y (dB) | SSIM-Y | bicubic PSNR | bicubic SSIM | iterations | seconds |",
             "|---|---|---|---|---|---|---|"]
    lines += [_markdown_row(r) for r in rows + [mean]]
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md and .csv")
    return 0


def _format_row(r: dict) -> str:
    return (f"{r['image']:>10}  PSNR {r['psnr']:.2f}  SSIM {r['ssim']:.4f}  bicubic {r['bicubic_psnr']:.2f} / "
            f"{r['bicubic_ssim']:.4f}  iters {r['iterations']:.0f}  {r['seconds']:.0f} s")


def _markdown_row(r: dict) -> str:
    return (f"| {r['image']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['bicubic_psnr']:.2f} | "
            f"{r['bicubic_ssim']:.4f} | {r['iterations']:.0f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
