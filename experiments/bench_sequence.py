"""Many images: each frame alone against carry-over from frame to frame, on the sets that
experiments/make_sequence_set.py makes (a 20-frame pan and a 10-photo album, one DIV2KRK-style
kernel and a little noise on all).

    python experiments/bench_sequence.py [--data DIR] [--sets sequence album]
        [--arms single single_blind weights weights_and_kernel] [--frames N] [--single-frames N]
        [--single-blind-frames 3] [--config default] [--blind-config blind] [--out DIR] [key=value ...]

Arms, each one `zssr train` on many images (zssr_tf.sweeps.sequence: one MLflow parent run, a
child per image, resumable) with the ground truths of the set's `hr/` folder:
- single: every frame alone (`sequence.carry_over: none`) with `--config` (default preset);
- single_blind: every frame alone with `--blind-config` (blind preset: kernel estimated per frame);
  expensive, so only the first `--single-blind-frames` frames;
- weights: `--config` with `carry_over: weights` (each frame after the first starts from the last
  one's network, `sequence.carry_over_max_iters` iterations);
- weights_and_kernel: `--blind-config` with `carry_over: weights_and_kernel` (also the last
  frame's estimated kernel, re-estimated when `sequence.reestimate_ratio` says it stopped fitting).
`key=value` settings apply to every arm (e.g. carry_over_max_iters=100 or, for a smoke run, a
tiny network). The set is made in `--data` (default experiments/data/sequence_set) when missing.

Per image: the run's seconds (its MLflow run, kernel estimation included; the carry-over's
own check and weight export happen between runs and count in the arm's wall time) and PSNR-Y
against the HR (DESIGN §2). Per arm: means, the sum of the per-image seconds and this session's
wall time. Per set: the mean seconds of the frames after the first in `weights` over the mean
seconds of `single` (target <= 15 %), the PSNR of each frame of `weights` minus its `single` one
(target >= -0.05 dB), and `weights_and_kernel`'s whole set over the mean `single_blind` run
(target <= 3x). Results: experiments/results/sequence.{json,md}; runs and outputs under `--out`
(default experiments/data/bench_sequence/<set>/<arm>, a hash of the settings appended when
key=value settings are given), its MLflow store `mlflow.db` there unless MLFLOW_TRACKING_URI is set.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import RESULTS, write_json  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parent
ARMS = {"single": ("config", "none"), "single_blind": ("blind_config", "none"),
        "weights": ("config", "weights"), "weights_and_kernel": ("blind_config", "weights_and_kernel")}
SETS = ("sequence", "album")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings for every arm")
    parser.add_argument("--data", type=Path, default=EXPERIMENTS / "data" / "sequence_set",
                        help="make_sequence_set.py's folder (made with its defaults when missing)")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--frames", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--single-frames", type=int, default=None, help="arm single: only the first N images")
    parser.add_argument("--single-blind-frames", type=int, default=3,
                        help="arm single_blind: only the first N images (default 3)")
    parser.add_argument("--config", default="default", help="preset of single and weights (default: default)")
    parser.add_argument("--blind-config", default="blind",
                        help="preset of single_blind and weights_and_kernel (default: blind)")
    parser.add_argument("--out", type=Path, default=EXPERIMENTS / "data" / "bench_sequence")
    parser.add_argument("--name", default="sequence", help="results file name (default: sequence)")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.json").is_file():
        import make_sequence_set

        make_sequence_set.main([str(args.data)])
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{(args.out / 'mlflow.db').resolve()}")
    args.out.mkdir(parents=True, exist_ok=True)

    report = {"settings": {"overrides": args.overrides, "config": args.config, "blind_config": args.blind_config,
                           "frames": args.frames, "single_frames": args.single_frames,
                           "single_blind_frames": args.single_blind_frames, "data": str(args.data)},
              "sets": {}}
    for set_name in args.sets:
        lr_dirs = sorted((args.data / set_name).glob("lr_x*"))
        if not lr_dirs:
            parser.error(f"{args.data / set_name} has no lr_x<scale> folder: make it with make_sequence_set.py")
        images = sorted(str(p) for p in lr_dirs[0].glob("*.png"))[:args.frames]
        arms = {}
        for arm in args.arms:
            limit = {"single": args.single_frames, "single_blind": args.single_blind_frames}.get(arm)
            arms[arm] = run_arm(arm, images[:limit], args, args.data / set_name / "hr")
        report["sets"][set_name] = {"images": [Path(i).stem for i in images], "arms": arms,
                                    "targets": targets(arms)}
    write_json(args.name, report)
    path = RESULTS / f"{args.name}.md"
    path.write_text(markdown(report))
    print(path.read_text())
    print(f"wrote {path}")
    return 0


def run_arm(arm: str, images: list[str], args: argparse.Namespace, hr_dir: Path) -> dict:
    """Run one arm on `images` (resuming what an earlier call finished) and read its per-image table."""
    from zssr_tf.sweeps.sequence import plan_set, run_set

    preset, carry_over = getattr(args, ARMS[arm][0]), ARMS[arm][1]
    settings = [f"carry_over={carry_over}", *args.overrides]
    suffix = f"_{hashlib.sha256(' '.join(args.overrides).encode()).hexdigest()[:8]}" if args.overrides else ""
    out = args.out / hr_dir.parent.name / f"{arm}{suffix}"
    print(f"\n== {hr_dir.parent.name}: {arm} ({preset}, carry_over {carry_over}) on {len(images)} image(s) -> {out}",
          flush=True)
    start = time.perf_counter()
    run_set(plan_set(images, preset, settings, gt=str(hr_dir), out_dir=out))
    wall = time.perf_counter() - start
    with open(out / "summary.csv", newline="") as f:
        rows = [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(f)]
    finished = [r for r in rows if r["status"] == "FINISHED"]
    return {"config": preset, "carry_over": carry_over, "wall_seconds": wall,
            "total_seconds": sum(r["seconds"] for r in finished),
            "mean_seconds": _mean([r["seconds"] for r in finished]),
            "mean_psnr": _mean([r["psnr"] for r in finished if isinstance(r.get("psnr"), float)]),
            "images": {r["image"]: {k: r.get(k) for k in ("status", "seconds", "psnr", "iterations", "start",
                                                          "kernel")} for r in rows}}


def targets(arms: dict) -> dict:
    """The issue's targets, where the arms they compare ran."""
    found = {}
    single, weights = arms.get("single"), arms.get("weights")
    if single and weights and single["mean_seconds"]:
        later = [v["seconds"] for v in list(weights["images"].values())[1:] if v["status"] == "FINISHED"]
        if later:
            found["weights_later_time_over_single"] = _mean(later) / single["mean_seconds"]
        deltas = [weights["images"][n]["psnr"] - s["psnr"] for n, s in single["images"].items()
                  if isinstance(s.get("psnr"), float) and isinstance(weights["images"].get(n, {}).get("psnr"), float)]
        if deltas:
            found["weights_psnr_minus_single_min"] = min(deltas)
            found["weights_psnr_minus_single_mean"] = _mean(deltas)
    blind, chain = arms.get("single_blind"), arms.get("weights_and_kernel")
    if blind and chain and blind["mean_seconds"]:
        found["weights_and_kernel_total_over_single_blind"] = chain["total_seconds"] / blind["mean_seconds"]
        later = [v["seconds"] for v in list(chain["images"].values())[1:] if v["status"] == "FINISHED"]
        if later:
            found["weights_and_kernel_later_time_over_single_blind"] = _mean(later) / blind["mean_seconds"]
    return found


def markdown(report: dict) -> str:
    """Per set: one row per image (seconds and PSNR-Y of every arm), means, totals and targets."""
    lines = ["# Many images: each alone against carry-over", "",
             f"Settings: {report['settings']}", "",
             "Seconds: each image's run (kernel estimation included); PSNR-Y in dB against the HR (DESIGN §2).", ""]
    for set_name, result in report["sets"].items():
        arms = result["arms"]
        header = ["image", *(f"{arm} {unit}" for arm in arms for unit in ("s", "dB"))]
        lines += [f"## {set_name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for image in result["images"]:
            cells = [image]
            for arm in arms.values():
                row = arm["images"].get(image, {})
                cells += [_fmt(row.get("seconds"), "{:.1f}"), _fmt(row.get("psnr"), "{:.2f}")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("| mean | " + " | ".join(f"{_fmt(a['mean_seconds'], '{:.1f}')} | {_fmt(a['mean_psnr'], '{:.2f}')}"
                                               for a in arms.values()) + " |")
        lines.append("| total (wall) | " + " | ".join(f"{a['total_seconds']:.0f} ({a['wall_seconds']:.0f}) | "
                                                      for a in arms.values()) + " |")
        lines += ["", *(f"- {key}: {value:.3f}" for key, value in result["targets"].items()), ""]
    return "\n".join(lines) + "\n"


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(value, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, float) else ""


if __name__ == "__main__":
    sys.exit(main())
