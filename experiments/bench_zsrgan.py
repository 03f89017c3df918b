"""Bicubic, ZSSR and ZSRGAN on a degraded benchmark set, scored two ways.

    python experiments/bench_zsrgan.py [--lr-dir DIR] [--hr-dir DIR] [--images baby bird]
        [--vgg-weights imagenet|PATH] [--lpips-heads NPZ] [--methods zssr zsrgan_l1_adv zsrgan]
        [--zssr-override KEY=VALUE ...] [key=value ...]

Default data: MZSR-style Set5 x2 "g2.0 direct" (21x21 Gaussian of variance 2.0, every 2nd pixel
from (0, 0)), made by
    python experiments/make_degraded_set.py ../shared/data/set5/hr experiments/data/set5_g2.0_direct \\
        --scale 2 --alignment direct --variance 2.0 --size 21
Ground truth: the top-left 2x LR size of set5/hr in the benchmark folder (experiments/common.py). Methods:
- bicubic: the LR upscaled with MATLAB-style bicubic;
- zssr: the default config (bicubic sons, as ZSRGAN's report ran it);
- zsrgan_l1_adv: the zsrgan preset without the perceptual term (loss.perceptual_weight=0);
- zsrgan: the full preset, only when VGG16 weights are available (--vgg-weights, default
  "imagenet" = Keras' cache; skipped with a note otherwise; nothing is downloaded).
`key=value` overrides apply to the zsrgan runs (e.g. crop_size=64 max_iters=500 on a CPU).

Scores: PSNR-Y / SSIM-Y by DESIGN.md §2 (8-bit, Y, shave 2), and the report's protocol (ZSRGAN,
Lee et al. 2021, seed 004 Table 1): RGB in [0, 255] clipped, no rounding, no shave, PSNR =
10 log10(255^2 / (MSE + 1e-10)); SSIM with skimage on the int-truncated RGB (data_range 255,
channel_axis -1, skimage's default 7x7 uniform window). LPIPS-like (gan/lpips.py) when
--lpips-heads is given. Model selection: the final iteration (never by ground truth).
Writes experiments/results/zsrgan_<set>[_<images>][_<overrides>].{json,md} and, per image, a
crop figure bicubic | ZSSR | ZSRGAN | GT (titles: PSNR RGB, no shave) in results/figures/.

`--combine` runs nothing: it gathers the per-image results of earlier `--images NAME` runs with
the same overrides (one process per image, e.g. two at a time on two cores) into the set's
table, zsrgan_<set>[_<overrides>].{json,md}, and says which images are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.errors import ZSSRError  # noqa: E402
from zssr_tf.gan.vgg import resolve_weights  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.tracking.plots import plot_crop_comparison  # noqa: E402
from zssr_tf.resize import imresize  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402
from common import benchmark_data_dir, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = ("zssr", "zsrgan_l1_adv", "zsrgan")
# The report's Table 1 (Set5, PSNR / SSIM / LPIPS, its own protocol and LPIPS-best checkpoints).
REPORT_SET5 = {"bicubic": (27.1920, 0.8294, 0.2164), "zssr": (27.4566, 0.8400, 0.2029),
               "zsrgan": (27.1494, 0.8245, 0.1991)}


def report_protocol(sr: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM as ZSRGAN's evaluation code computes them: sr, gt (H, W, 3) float in
    [0, 1] -> 0..255 clipped; PSNR over all channels, no shave, no rounding; SSIM on the
    int-truncated images with skimage (data_range 255, channel_axis -1)."""
    a, b = np.clip(sr, 0, 1) * 255.0, np.clip(gt, 0, 1) * 255.0
    psnr = 10 * np.log10(255.0**2 / (np.mean((a - b) ** 2) + 1e-10))
    ssim = structural_similarity(a.astype(np.uint8), b.astype(np.uint8), data_range=255, channel_axis=-1)
    return {"psnr_rgb_noshave": float(psnr), "ssim_rgb_noshave": float(ssim)}


def scores(sr: np.ndarray, gt: np.ndarray, lpips) -> dict[str, float]:
    row = {**evaluate(sr, gt, 2), **report_protocol(sr, gt)}
    if lpips is not None:
        row["lpips_like"] = lpips.distance(sr, gt)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr-dir", type=Path, default=HERE / "data/set5_g2.0_direct/lr_x2")
    parser.add_argument("--hr-dir", type=Path, default=benchmark_data_dir() / "set5/hr")
    parser.add_argument("--images", nargs="*", help="only these image names")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--vgg-weights", default="imagenet", help="VGG16 weights for the full ZSRGAN")
    parser.add_argument("--lpips-heads", help=".npz of LPIPS-VGG heads (docs/zsrgan.md); needs --vgg-weights")
    parser.add_argument("--zssr-override", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the zssr run (repeatable), e.g. max_iters=600 on a busy CPU")
    parser.add_argument("--combine", action="store_true",
                        help="gather earlier per-image results into the set's table (see above)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="for the zsrgan runs")
    args = parser.parse_args()
    if not args.lr_dir.is_dir():
        print(f"{args.lr_dir} not found: make it with experiments/make_degraded_set.py (see --help)", file=sys.stderr)
        return 1
    if args.combine:
        return combine(args)
    notes = []
    try:
        resolve_weights(args.vgg_weights)
        vgg = args.vgg_weights
    except ZSSRError as err:
        vgg = None
        if "zsrgan" in args.methods:
            args.methods.remove("zsrgan")
            notes.append(f"full ZSRGAN skipped: {err}")
            print(notes[-1], flush=True)
    lpips = None
    if args.lpips_heads and vgg:
        from zssr_tf.gan.lpips import LpipsLike
        lpips = LpipsLike(vgg, args.lpips_heads)
    configs = {"zssr": load_config(overrides=["progress_every=0", *args.zssr_override]),
               "zsrgan_l1_adv": load_config("zsrgan", ["perceptual_weight=0", "progress_every=0", *args.overrides]),
               "zsrgan": load_config("zsrgan", [f"perceptual_weights={vgg}", "progress_every=0", *args.overrides])
               if vgg else None}
    name = result_name(args, args.images)
    rows = []
    for lr_path in sorted(args.lr_dir.glob("*.png")):
        if args.images and lr_path.stem not in args.images:
            continue
        lr = read_image(lr_path)[0]
        gt = read_image(args.hr_dir / lr_path.name)[0][: 2 * lr.shape[0], : 2 * lr.shape[1]]
        bicubic = np.clip(imresize(lr, scale_factor=2, output_shape=gt.shape[:2]), 0, 1)
        rows.append({"image": lr_path.stem, "method": "bicubic", **scores(bicubic, gt, lpips)})
        print(rows[-1], flush=True)
        outputs = {}
        for method in args.methods:
            start = time.perf_counter()
            outputs[method] = ZSSR(configs[method], verbose=False).run(lr)
            rows.append({"image": lr_path.stem, "method": method, **scores(outputs[method].sr, gt, lpips),
                         "iterations": outputs[method].iterations, "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
        gan = "zsrgan" if "zsrgan" in outputs else "zsrgan_l1_adv"
        if gan in outputs:
            psnr = {r["method"]: f"{r['psnr_rgb_noshave']:.2f} dB" for r in rows if r["image"] == lr_path.stem}
            others = {"ZSSR": outputs["zssr"].sr} if "zssr" in outputs else {}
            titles = {"bicubic": psnr["bicubic"], "zssr": psnr[gan], "ZSSR": psnr.get("zssr", "")}
            plot_crop_comparison(HERE / "results" / "figures" / f"{name}_{lr_path.stem}.png", bicubic,
                                 outputs[gan].sr, gt, titles, others=others,
                                 sr_name="ZSRGAN" if gan == "zsrgan" else "ZSRGAN (L1+adv)")
    summarize(name, args, rows, notes)
    return 0


def result_name(args, images) -> str:
    """zsrgan_<set>[_<images>][_<overrides>][_zssr-<overrides>], safe as a file name."""
    parts = ["zsrgan", args.lr_dir.parent.name, *(images or []), *args.overrides,
             *(f"zssr-{o}" for o in args.zssr_override)]
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", "_".join(parts))


def summarize(name: str, args, rows: list[dict], notes: list[str]) -> None:
    """Write results/<name>.json (rows, per-method means) and <name>.md (the means' table, then
    PSNR-Y and PSNR RGB per image when there are several)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    images = list(dict.fromkeys(r["image"] for r in rows))
    lpips = "lpips_like" in rows[0]
    means = {m: {k: float(np.mean([r[k] for r in rows if r["method"] == m]))
                 for k in rows[0] if k not in ("image", "method")} for m in methods}
    write_json(name, {"lr_dir": str(args.lr_dir), "overrides": args.overrides, "notes": notes,
                      "rows": rows, "means": means, "report_table1_set5": REPORT_SET5})
    lines = [f"LR `{args.lr_dir}`, images {images}, zsrgan overrides "
             f"`{' '.join(args.overrides) or 'none'}`, zssr overrides `{' '.join(args.zssr_override) or 'none'}`",
             *notes, "",
             "| method (mean) | PSNR-Y | SSIM-Y | PSNR RGB no shave | SSIM RGB no shave |"
             + (" LPIPS-like |" if lpips else ""), "|---|---|---|---|---|" + ("---|" if lpips else "")]
    for m in methods:
        s = means[m]
        lines.append(f"| {m} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['psnr_rgb_noshave']:.2f} | "
                     f"{s['ssim_rgb_noshave']:.4f} |" + (f" {s['lpips_like']:.4f} |" if lpips else ""))
    if len(images) > 1:
        psnr = {(r["image"], r["method"]): r for r in rows}
        lines += ["", "| PSNR-Y / PSNR RGB no shave | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for image in images:
            cells = (f"{psnr[image, m]['psnr']:.2f} / {psnr[image, m]['psnr_rgb_noshave']:.2f}"
                     if (image, m) in psnr else "–" for m in methods)
            lines.append(f"| {image} | " + " | ".join(cells) + " |")
    (HERE / "results" / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def combine(args) -> int:
    """The set's table from the per-image results of earlier runs (see the module docstring)."""
    stems = sorted(p.stem for p in args.lr_dir.glob("*.png") if not args.images or p.stem in args.images)
    found = {stem: HERE / "results" / f"{result_name(args, [stem])}.json" for stem in stems}
    missing = [stem for stem, path in found.items() if not path.exists()]
    if missing:
        print(f"no per-image results for {missing}: run e.g. `python experiments/bench_zsrgan.py --images "
              f"{missing[0]} {' '.join(args.overrides)}` first (expected {found[missing[0]].name})", file=sys.stderr)
        return 1
    reports = [json.loads(path.read_text()) for path in found.values()]
    rows = [row for report in reports for row in report["rows"]]
    notes = list(dict.fromkeys(note for report in reports for note in report["notes"]))
    summarize(result_name(args, args.images), args, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
