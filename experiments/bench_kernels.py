"""ZSSR with the true kernel on a degraded set, under each kernel alignment convention.

    python experiments/bench_kernels.py [--data experiments/data/set5_g2.0_direct] [--config given_kernel]
        [--variant direct --variant block_centre --variant direct:kernel_symmetry=false]
        [--images butterfly head] [key=value ...]

The set comes from experiments/make_degraded_set.py (its manifest.json names each image's LR
file and kernel); the ground truth is the HR image it was made from (--hr, default
../shared/data/set5/hr), cropped to scale x LR size. A variant is `alignment[:key=value,...]`.
Scores by DESIGN §2 (zssr_tf.metrics.evaluate). Bicubic: MATLAB's imresize of the LR image
(block-centre grid, the usual baseline); aligned bicubic: the same upscale on the variant's grid
(what an identity network would return). Writes experiments/results/kernels_<set>_<config>_<variants>[_<overrides>].{csv,md}
after every run, so a stopped benchmark keeps what it finished; rows already in that CSV for
other images are kept (a later run with --images adds to the table, one with the same image
replaces its row; --fresh starts an empty table).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.kernels import load_kernel  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.resize import imresize  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
COLUMNS = ["variant", "image", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "aligned_bicubic_psnr",
           "iterations", "seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "experiments/data/set5_g2.0_direct")
    parser.add_argument("--hr", type=Path, default=ROOT.parent / "shared/data/set5/hr")
    parser.add_argument("--config", default="given_kernel")
    parser.add_argument("--variant", action="append", dest="variants",
                        help="alignment[:key=value,...], repeatable (default: direct, then block_centre)")
    parser.add_argument("--images", nargs="*", help="only these image names, run in this order (e.g. baby bird)")
    parser.add_argument("--fresh", action="store_true", help="do not keep the rows of an earlier run's CSV")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    args.variants = args.variants or ["direct", "block_centre"]
    manifest = json.loads((args.data / "manifest.json").read_text())
    if args.images:
        by_name = {Path(m["image"]).stem: m for m in manifest}
        manifest = [by_name[name] for name in args.images]
    parts = [args.data.name, Path(args.config).stem, *args.variants, *args.overrides]
    stem = RESULTS / re.sub(r"[^A-Za-z0-9_.=-]+", "-", "_".join(["kernels", *parts]))
    RESULTS.mkdir(exist_ok=True)
    rows = [] if args.fresh else _earlier_rows(stem)
    for variant in args.variants:
        alignment, _, extra = variant.partition(":")
        overrides = [f"kernel_alignment={alignment}", *filter(None, extra.split(",")), *args.overrides]
        config = load_config(args.config, overrides)
        for entry in manifest:
            lr, _, _ = read_image(args.data / entry["lr"])
            hr, _, _ = read_image(args.hr / entry["image"])
            scale = int(entry["scale"])
            gt = hr[: scale * lr.shape[0], : scale * lr.shape[1]]
            kernel = load_kernel(args.data / entry["kernel_mat"])
            start = time.perf_counter()
            result = ZSSR(config, verbose=False).run(lr, gt=gt, kernels=[kernel])
            seconds = time.perf_counter() - start
            plain = np.clip(imresize(lr, scale, output_shape=gt.shape[:2]), 0, 1)
            z, b = evaluate(result.sr, gt, scale), evaluate(plain, gt, scale)
            rows = [r for r in rows if (r["variant"], r["image"]) != (variant, Path(entry["image"]).stem)]
            rows.append({"variant": variant, "image": Path(entry["image"]).stem, "psnr": z["psnr"],
                         "ssim": z["ssim"], "bicubic_psnr": b["psnr"], "bicubic_ssim": b["ssim"],
                         "aligned_bicubic_psnr": evaluate(result.bicubic, gt, scale)["psnr"],
                         "iterations": result.iterations, "seconds": seconds})
            print(" ".join(f"{k}={_fmt(v)}" for k, v in rows[-1].items()), flush=True)
            _write(stem, rows, args, result.precision)
    print(f"wrote {stem}.md and .csv")
    return 0


def _earlier_rows(stem: Path) -> list[dict]:
    """The per-image rows of an earlier run's CSV at `stem` (none if there is none)."""
    if not Path(f"{stem}.csv").is_file():
        return []
    with open(f"{stem}.csv", newline="") as f:
        return [{k: v if k in ("variant", "image") else float(v) for k, v in row.items()}
                for row in csv.DictReader(f) if row["image"] != "mean"]


def _write(stem: Path, rows: list[dict], args, precision: str) -> None:
    """Per-variant tables with a mean row, as CSV and Markdown."""
    table = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        table += mine + [{"variant": variant, "image": "mean",
                          **{c: float(np.mean([r[c] for r in mine])) for c in COLUMNS[2:]}}]
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    lines = [f"Set `{args.data.name}`, config `{args.config}` {' '.join(args.overrides)}, precision {precision}, "
             "true kernel. PSNR-Y / SSIM-Y by DESIGN §2.", "",
             "| variant | image | PSNR-Y (dB) | SSIM-Y | bicubic PSNR | bicubic SSIM | aligned bicubic PSNR "
             "| iterations | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        bold = "**" if r["image"] == "mean" else ""
        lines.append(f"| {r['variant']} | {bold}{r['image']}{bold} | {bold}{r['psnr']:.2f}{bold} | {r['ssim']:.4f} | "
                     f"{r['bicubic_psnr']:.2f} | {r['bicubic_ssim']:.4f} | {r['aligned_bicubic_psnr']:.2f} | "
                     f"{r['iterations']:.0f} | {r['seconds']:.0f} |")
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
