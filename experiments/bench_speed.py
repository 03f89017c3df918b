"""Speed of ZSSR training and inference, measured side by side in one process run.

    python experiments/bench_speed.py [--iters 60] [--repeats 3] [--full IMAGE ...] [--skip-full] [--skip-memory]
    python experiments/bench_speed.py --side-by-side [--images baby butterfly] [--configs NAME ...]
        [--official CHECKOUT]
    python experiments/bench_speed.py --backends tensorflow jax [--backend-iters 60] [--images bird]
    python experiments/bench_speed.py --gan [--iters 10] [--repeats 2] [--gan-crops 64 128]
        [--gan-precisions float32 mixed_bfloat16]

1. ms per training iteration on 128x128 crops, variants alternated in each repeat: a plain-Keras
   baseline (float32 `train_on_batch` fed from NumPy) and our `fit` path over the tf.data
   pipeline (per-iteration callbacks, reconstruction test every 50 iterations) in float32,
   mixed_bfloat16 (and mixed_float16 on a GPU), with and without XLA; ratio to the baseline.
2. Father/son pairs per second from the pipeline alone, against the rate training consumes;
   the training loop's own per-iteration cost (a network too small to compute anything).
3. Full default x2 runs on Set5 images: iterations, wall seconds and PSNR-Y, float32 vs the
   fastest precision.
4. Peak memory of the final-test inference on a 2000x2000 input at x2, tiled and untiled
   (each in a child process, so one's peak does not hide the other's).

Prints a table and writes experiments/results/bench_speed_<device>.json.

`--side-by-side` runs only this instead: the `paper` preset (the default before the warm start:
random init, slope/std policy with NumPy's current slope std), the shipped default (warm start,
cosine decay of 800 iterations), the policy with the paper code's slope std
(`legacy_slope_std`), the paper preset from the shipped warm start and the `fast` preset on
Set5 x2 images, alternating (image by image, the order of the configs rotating from one image
to the next) in this one process, so machine load hits all of them alike: wall seconds,
iterations, seconds per iteration and PSNR-Y, and each config's mean wall time as a ratio to
the paper preset's. `--configs` picks some of them (the paper preset, the reference, always
runs). `--official CHECKOUT` adds the official ZSSR code's default (`official_zssr.py`, from
the user's clone of it; a child process per image) to the rotation and a ratio column against
it. Writes results/side_by_side_<device>_<images>.json after every run (`"complete": false` until
the last), so an interrupted bench keeps the runs it finished.

`--backends NAME ...` runs only this instead: the default config on each of --images (default
bird) on each Keras backend named, each run in its own process (`backend_run.py`: the backend is
fixed when Keras loads), the backends alternating image by image: ms per iteration (median after
10 warm-up iterations, and the mean over training, which includes JAX's compilations for new crop
shapes), seconds, PSNR-Y, and each backend's ratio to the first one's. `--backend-iters N` stops
every run after N iterations (0: the config's whole run). Writes
results/backends_<images>_<iters>.json.

With --gan, only the ZSRGAN training step instead: ms per iteration of the zsrgan preset (a batch
of 8 dihedral variants, discriminator and VGG16 relu3_1 perceptual loss; VGG weights random,
which costs the same as ImageNet ones) for crops 64 and 128 in float32 and mixed_bfloat16, the
same without the perceptual term, and plain ZSSR on one crop for scale; written to
experiments/results/bench_speed_gan_<device>_crop<crops>_<precisions>.json (the samples so far after
each variant, `"complete": true` with the medians at the end).
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.image_io import read_image  # noqa: E402
from zssr_tf.metrics import evaluate  # noqa: E402
from zssr_tf.model import build_zssr_net  # noqa: E402
from zssr_tf.precision import device_name, resolve_precision  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402
from common import benchmark_data_dir, device_kind, write_json  # noqa: E402

DATA = benchmark_data_dir()
WARMUP = 10


class BatchTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch ends, after `warmup` batches (tracing excluded)."""

    def __init__(self, warmup: int = WARMUP):
        super().__init__()
        self.warmup = warmup

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    def ms_per_iteration(self) -> float:
        return 1000 * float(np.mean(np.diff(self.times[self.warmup:])))


def baseline_ms(iters: int) -> float:
    """Plain Keras: float32 model, `train_on_batch` on a fixed NumPy pair, no pipeline."""
    model = build_zssr_net(dtype_policy="float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_absolute_error", jit_compile=False)
    rng = np.random.default_rng(0)
    x, y = rng.random((1, 128, 128, 3), np.float32), rng.random((1, 128, 128, 3), np.float32)
    for _ in range(WARMUP):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(iters):
        model.train_on_batch(x, y)
    return 1000 * (time.perf_counter() - start) / iters


def step_gflop(crop: int = 128, depth: int = 8, width: int = 64, channels: int = 3) -> float:
    """Arithmetic of one training iteration of the default net: 2 FLOP per multiply-add of the
    forward convolutions, times 3 (forward, gradient of the inputs, gradient of the weights).
    Divided by the step time it gives the achieved GFLOP/s, to set against the CPU's peak."""
    channel_pairs = channels * width + (depth - 2) * width * width + width * channels
    return 3 * 2 * crop * crop * 9 * channel_pairs / 1e9


def ours_ms(image: np.ndarray, precision: str, jit: bool, iters: int) -> float:
    """Our training loop (fit on the tf.data pipeline, all callbacks) for WARMUP + iters iterations."""
    config = load_config(overrides=[f"precision={precision}", f"jit_compile={str(jit).lower()}",
                                    f"max_iters={WARMUP + iters + 1}", "min_iters=100000", "output_flip=false",
                                    "back_projection_iters=[0]", "progress_every=0"])
    timer = BatchTimer()
    ZSSR(config, callbacks=[timer], verbose=False).run(image)
    return timer.ms_per_iteration()


def loop_overhead_ms(image: np.ndarray, iters: int = 400) -> dict:
    """Per-iteration cost of the training loop itself, measured with a network so small
    (2 layers of 4 filters on 16x16 crops) that its compute is negligible: a bare Keras `fit`
    on one fixed tensor pair against our `fit` (pipeline, per-iteration callbacks and logs,
    reconstruction test). What running several steps per `fit` call (`steps_per_execution`)
    could save at most is the gap between them plus part of the bare loop."""
    tiny = ["depth=2", "width=4", "crop_size=16"]
    config = load_config(overrides=[*tiny, f"max_iters={WARMUP + iters + 1}", "min_iters=100000",
                                    "output_flip=false", "back_projection_iters=[0]", "progress_every=0"])
    timer = BatchTimer()
    ZSSR(config, callbacks=[timer], verbose=False).run(image)
    ours = timer.ms_per_iteration()

    model = build_zssr_net(depth=2, width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_absolute_error")
    pair = np.random.default_rng(0).random((1, 16, 16, 3), np.float32)
    timer = BatchTimer()
    model.fit(tf.data.Dataset.from_tensors((pair, pair)).repeat(), epochs=1, steps_per_epoch=WARMUP + iters + 1,
              callbacks=[timer], verbose=0, shuffle=False)
    return {"bare_fit": timer.ms_per_iteration(), "ours": ours}


def pipeline_pairs_per_second(image: np.ndarray, count: int = 400) -> float:
    from zssr_tf.augment import FatherSampler
    from zssr_tf.data import PairMaker, make_dataset

    maker = PairMaker((image,), (1.0,), FatherSampler(), (2.0, 2.0), "cubic", 0.0, "cubic", seed=0)
    iterator = iter(make_dataset(maker, channels=3))
    for _ in range(20):
        next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count / (time.perf_counter() - start)


def full_run(name: str, precision: str) -> dict:
    lr, _, _ = read_image(DATA / "set5/lr_x2" / f"{name}.png")
    hr, _, _ = read_image(DATA / "set5/hr" / f"{name}.png")
    start = time.perf_counter()
    result = ZSSR(load_config(overrides=[f"precision={precision}", "progress_every=0"]), verbose=False).run(lr)
    wall = time.perf_counter() - start
    return {"image": name, "precision": precision, "iterations": result.iterations, "wall_s": wall,
            "train_s": result.train_seconds, "test_s": result.test_seconds,
            "psnr": evaluate(result.sr, hr, 2)["psnr"]}


# The reference of the side-by-side ratios: the default before the speed work (the paper's settings).
REFERENCE = "paper (previous default)"
SIDE_BY_SIDE = {REFERENCE: ("paper", []), "default": (None, []),
                "legacy slope std": ("paper", ["legacy_slope_std=true"]),
                "warm-started paper": ("paper", ["init_weights=warm_start"]), "fast": ("fast", [])}


def side_by_side_configs(only: list[str] | None = None) -> list[str]:
    """SIDE_BY_SIDE's names (those in `only` when given; the reference always)."""
    return [name for name in SIDE_BY_SIDE if only is None or name in only or name == REFERENCE]


OFFICIAL = "official ZSSR code"


def official_run(checkout: Path, lr_path: Path) -> dict:
    """The official ZSSR code's default on `lr_path`, in a child process (`official_zssr.py`: its
    TensorFlow 1 shims change process-wide state): its wall seconds (network built to output),
    train/test seconds, iterations and SR image."""
    with tempfile.TemporaryDirectory() as folder:
        sr_path = Path(folder) / "sr.npy"
        child = subprocess.run([sys.executable, str(Path(__file__).parent / "official_zssr.py"), str(checkout),
                                str(lr_path), "--save-sr", str(sr_path)], capture_output=True, text=True)
        if child.returncode != 0:
            raise RuntimeError(f"the official code failed on {lr_path}:\n{child.stderr[-3000:]}")
        return {**json.loads(child.stdout.strip().splitlines()[-1]), "sr": np.load(sr_path)}


def ours_run(name: str, lr: np.ndarray) -> dict:
    """The SIDE_BY_SIDE config `name` on `lr`, as `official_run` reports a run (wall seconds of
    the whole run, train/test seconds, iterations, SR image)."""
    preset, overrides = SIDE_BY_SIDE[name]
    start = time.perf_counter()
    result = ZSSR(load_config(preset, [*overrides, "progress_every=0"]), verbose=False).run(lr)
    return {"wall_s": time.perf_counter() - start, "train_s": result.train_seconds, "test_s": result.test_seconds,
            "iterations": result.iterations, "sr": result.sr}


def side_by_side(images: list[str], names: list[str], official: Path | None = None, save=None) -> list[dict]:
    """Each of the SIDE_BY_SIDE configs `names` (and the official code from its checkout
    `official`, when given) on each Set5 x2 image, alternating; one row per run, passed (all
    rows so far) to `save` after each run, so an interrupted bench keeps what it measured."""
    names = [*names, *([OFFICIAL] if official else [])]
    rows = []
    for turn, image in enumerate(images):
        lr_path = DATA / "set5/lr_x2" / f"{image}.png"
        lr, _, _ = read_image(lr_path)
        hr, _, _ = read_image(DATA / "set5/hr" / f"{image}.png")
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            run = official_run(official, lr_path) if name == OFFICIAL else ours_run(name, lr)
            rows.append({"image": image, "config": name, **{key: run[key] for key in ("wall_s", "iterations",
                                                                                     "train_s", "test_s")},
                         "ms_per_iteration": 1000 * run["train_s"] / run["iterations"],
                         "psnr": evaluate(run["sr"], hr, 2)["psnr"]})
            print(f"| {image} | {name} | {run['wall_s']:.0f} | {run['iterations']} | "
                  f"{rows[-1]['ms_per_iteration']:.0f} | {rows[-1]['psnr']:.2f} |", flush=True)
            if save:
                save(rows)
    return rows


GAN_WARMUP = 3  # the GAN step traces once; its iterations are seconds long on a CPU


def gan_ms(image: np.ndarray, vgg_weights: Path, crop: int, precision: str, perceptual: bool, iters: int) -> float:
    """The zsrgan preset's `fit` (8-variant batch, discriminator, perceptual loss when asked) for
    GAN_WARMUP + iters iterations at `crop`; ms per iteration after the warm-up."""
    config = load_config("zsrgan", [f"precision={precision}", f"crop_size={crop}", f"max_iters={GAN_WARMUP + iters + 1}",
                                    f"perceptual_weights={vgg_weights}", f"perceptual_weight={int(perceptual)}",
                                    "progress_every=0"])
    timer = BatchTimer(GAN_WARMUP)
    ZSSR(config, callbacks=[timer], verbose=False).run(image)
    return timer.ms_per_iteration()


def gan_section(image: np.ndarray, iters: int, repeats: int, crops=(64, 128),
                precisions=("float32", "mixed_bfloat16"), save=None) -> dict:
    """ms per ZSRGAN iteration for crops 64 and 128 in float32 and mixed_bfloat16 (variants
    alternated in each repeat, medians), with random VGG16 weights saved and loaded as a user's.
    The samples so far ({variant: [ms, ...]}) go to `save` after each measurement."""
    import tempfile

    from zssr_tf.gan.perceptual import PERCEPTUAL_LAYER
    from zssr_tf.gan.vgg import build_vgg16

    vgg_weights = Path(tempfile.mkdtemp()) / "vgg16_relu3_1_random.weights.h5"
    build_vgg16(PERCEPTUAL_LAYER).save_weights(vgg_weights)
    variants = {}
    for crop in crops:
        for precision in precisions:
            for perceptual in (True, False):
                name = f"zsrgan crop {crop} {precision}{'' if perceptual else ' no perceptual'}"
                variants[name] = lambda c=crop, p=precision, q=perceptual: gan_ms(image, vgg_weights, c, p, q, iters)
        variants[f"zssr crop {crop} float32 (batch 1)"] = lambda c=crop: zssr_crop_ms(image, c, iters)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, measure in variants.items():
            samples[name].append(measure())
            print(f"  repeat {repeat + 1}: {name}: {samples[name][-1]:.0f} ms/iter", flush=True)
            if save:
                save(samples)
    return {name: float(np.median(v)) for name, v in samples.items()}


def zssr_crop_ms(image: np.ndarray, crop: int, iters: int) -> float:
    """Plain ZSSR's float32 `fit` at `crop` (batch 1), timed like the GAN variants."""
    config = load_config(overrides=["precision=float32", f"crop_size={crop}", f"max_iters={GAN_WARMUP + iters + 1}",
                                    "min_iters=100000", "output_flip=false", "back_projection_iters=[0]",
                                    "progress_every=0"])
    timer = BatchTimer(GAN_WARMUP)
    ZSSR(config, callbacks=[timer], verbose=False).run(image)
    return timer.ms_per_iteration()


def inference_peak_mb(size: int, tiled: bool) -> float:
    """Peak resident memory (MB) of a child process running the final test's inference."""
    code = f"""
import os, resource, numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from zssr_tf.config import load_config
from zssr_tf.ensemble import auto_tile_size, geometric_self_ensemble, tiled_predict
from zssr_tf.trainer import ZSSR
config = load_config(overrides=["precision=float32", "max_iters=1", "progress_every=0"])
zssr = ZSSR(config, verbose=False)
zssr.model = zssr._build_model(3)
lr = np.random.default_rng(0).random(({size}, {size}, 3), np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tile = auto_tile_size(64) if {tiled} else 10**9
geometric_self_ensemble(tiled_predict(zssr.predict, tile, 8), lr, (2.0, 2.0), ({2 * size}, {2 * size}),
                        back_projection_iters=1, output_flip=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, before / 1024, tile)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


def backends_side_by_side(backends: list[str], images: list[str], iterations: int) -> list[dict]:
    """`backend_run.py` rows: the default config on Set5 x2 `images`, each on every one of
    `backends` in a child process (stopped after `iterations` when > 0); printed as they come."""
    rows = []
    limit = [f"max_iters={iterations}"] if iterations else []
    for name in images:
        for backend in backends:
            done = subprocess.run([sys.executable, str(Path(__file__).with_name("backend_run.py")), "--backend",
                                   backend, "--image", str(DATA / f"set5/lr_x2/{name}.png"),
                                   "--gt", str(DATA / f"set5/hr/{name}.png"), *limit],
                                  capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"| {name} | {backend} {row['version']} | {row['iterations']} | {row['ms_per_iteration']:.0f} | "
                  f"{row['ms_per_iteration_mean']:.0f} | {row['seconds']:.1f} | {row['psnr_y']:.2f} |", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=60, help="timed iterations per variant and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", nargs="+", default=["baby", "butterfly"], metavar="IMAGE",
                        help="Set5 images for the full runs (default: baby butterfly)")
    parser.add_argument("--skip-full", action="store_true", help="no full runs (they take ~10 min per image)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--side-by-side", action="store_true",
                        help="only the paper preset, the default, fast, ... on --images, alternating")
    parser.add_argument("--images", nargs="+", default=["baby", "butterfly"], metavar="IMAGE",
                        help="Set5 images for --side-by-side (default: baby butterfly)")
    parser.add_argument("--configs", nargs="+", choices=list(SIDE_BY_SIDE), metavar="NAME",
                        help=f"only these of {list(SIDE_BY_SIDE)} for --side-by-side (the paper preset always runs)")
    parser.add_argument("--official", type=Path, metavar="CHECKOUT",
                        help="with --side-by-side, also run the official ZSSR code from this clone of "
                             "github.com/assafshocher/ZSSR (see official_zssr.py)")
    parser.add_argument("--backends", nargs="+", metavar="NAME",
                        help="only the default config on each of these Keras backends, side by side (see above)")
    parser.add_argument("--backend-iters", type=int, default=60,
                        help="with --backends: iterations per run (0: the config's whole run)")
    parser.add_argument("--gan", action="store_true", help="only the ZSRGAN step timings (see above)")
    parser.add_argument("--gan-crops", type=int, nargs="+", default=[64, 128], help="crop sides for --gan")
    parser.add_argument("--gan-precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        help="precisions for --gan (bf16 is emulated, very slow, on CPUs without AVX-512 BF16/AMX)")
    args = parser.parse_args()
    if args.backends:
        images = args.images if "--images" in sys.argv else ["bird"]
        print("| image | backend | iterations | ms / iteration (median) | ms / iteration (mean) | seconds | PSNR-Y |\n"
              "|---|---|---|---|---|---|---|")
        rows = backends_side_by_side(args.backends, images, args.backend_iters)
        summary = {b: {key: float(np.mean([r[key] for r in rows if r["backend"] == b]))
                       for key in ("ms_per_iteration", "ms_per_iteration_mean", "seconds", "psnr_y")}
                   for b in args.backends}
        first = args.backends[0]
        for b, m in summary.items():
            print(f"{b}: {m['ms_per_iteration']:.0f} ms / iteration (median), "
                  f"{m['ms_per_iteration'] / summary[first]['ms_per_iteration']:.2f}x {first}; mean "
                  f"{m['ms_per_iteration_mean']:.0f} ms ({m['ms_per_iteration_mean'] / summary[first]['ms_per_iteration_mean']:.2f}x); "
                  f"PSNR-Y {m['psnr_y']:.2f} dB ({m['psnr_y'] - summary[first]['psnr_y']:+.3f})")
        write_json(f"backends_{'_'.join(images)}_{args.backend_iters or 'full'}",
                   {"device": device_name(), "rows": rows, "summary": summary})
        return 0
    if args.side_by_side:
        print("| image | config | wall s | iterations | train ms / iteration | PSNR-Y |\n|---|---|---|---|---|---|")
        names = side_by_side_configs(args.configs)
        result_name = f"side_by_side_{device_kind()}_{'_'.join(args.images)}"
        rows = side_by_side(args.images, names, args.official, save=lambda rows: write_json(
            result_name, {"device": device_name(), "rows": rows, "complete": False}, announce=False))
        names = list(dict.fromkeys(row["config"] for row in rows))
        summary = {}
        for name in names:
            mine = [r for r in rows if r["config"] == name]
            summary[name] = {key: float(np.mean([r[key] for r in mine]))
                             for key in ("wall_s", "iterations", "ms_per_iteration", "psnr")}
        bases = [base for base in (REFERENCE, OFFICIAL) if base in summary]
        print(f"\n| config | mean wall s | {' | '.join(f'vs {base}' for base in bases)} | mean iterations | "
              f"mean PSNR-Y |\n|{'---|' * (4 + len(bases))}")
        for name, m in summary.items():
            ratios = " | ".join(f"{m['wall_s'] / summary[base]['wall_s']:.2f}" for base in bases)
            print(f"| {name} | {m['wall_s']:.0f} | {ratios} | {m['iterations']:.0f} | {m['psnr']:.2f} |")
        write_json(result_name, {"device": device_name(), "rows": rows, "summary": summary, "complete": True})
        return 0
    report: dict = {"device": device_name(), "auto_precision": resolve_precision("auto")}
    print(f"device: {report['device']}; precision auto -> {report['auto_precision']}", flush=True)

    image, _, _ = read_image(DATA / "set5/lr_x2/baby.png")
    if args.gan:
        result_name = f"bench_speed_gan_{device_kind()}_crop{'_'.join(map(str, args.gan_crops))}_" \
                      f"{'_'.join(args.gan_precisions)}"
        report["gan_step_ms"] = gan_section(image, args.iters, args.repeats, args.gan_crops, args.gan_precisions,
                                            save=lambda samples: write_json(result_name, {
                                                **report, "samples_ms": samples, "complete": False}, announce=False))
        print("\n| variant | ms / iteration (median) |\n|---|---|")
        for name, ms in report["gan_step_ms"].items():
            print(f"| {name} | {ms:.0f} |")
        write_json(result_name, {**report, "complete": True})
        return 0
    precisions = ["float32", "mixed_bfloat16"] + (["mixed_float16"] if tf.config.list_physical_devices("GPU") else [])
    variants = {"baseline float32 train_on_batch": lambda: baseline_ms(args.iters)}
    for precision in precisions:
        for jit in (False, True):
            variants[f"ours {precision}{' XLA' if jit else ''}"] = (
                lambda p=precision, j=jit: ours_ms(image, p, j, args.iters))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, measure in variants.items():
            samples[name].append(measure())
            print(f"  repeat {repeat + 1}: {name}: {samples[name][-1]:.1f} ms/iter", flush=True)
    base = float(np.median(samples["baseline float32 train_on_batch"]))
    report["step_ms"] = {name: float(np.median(v)) for name, v in samples.items()}
    report["step_gflop"] = step_gflop()
    print("\n| variant | ms / iteration (median) | speed-up vs baseline | GFLOP/s |\n|---|---|---|---|")
    for name, ms in report["step_ms"].items():
        print(f"| {name} | {ms:.1f} | {base / ms:.2f}x | {report['step_gflop'] / ms * 1000:.0f} |")

    fastest = min((n for n in report["step_ms"] if n.startswith("ours")), key=report["step_ms"].get)
    pairs = pipeline_pairs_per_second(image)
    consumed = 1000 / report["step_ms"][fastest]
    report["pipeline"] = {"pairs_per_s": pairs, "consumed_per_s": consumed, "ratio": pairs / consumed}
    print(f"\npipeline: {pairs:.0f} pairs/s; the fastest training ({fastest}) consumes {consumed:.1f}/s: "
          f"{pairs / consumed:.1f}x headroom")

    overhead = loop_overhead_ms(image)
    report["loop_overhead_ms"] = overhead
    print(f"loop overhead per iteration (negligible compute): bare Keras fit {overhead['bare_fit']:.2f} ms, "
          f"ours {overhead['ours']:.2f} ms = {100 * overhead['ours'] / report['step_ms'][fastest]:.1f}% "
          f"of the fastest step")

    fastest_precision = "mixed_bfloat16" if "bfloat16" in fastest else fastest.split()[1]
    report["full_runs"] = []
    print("\n| image | precision | iterations | wall s | train s | final test s | PSNR-Y |\n|---|---|---|---|---|---|---|")
    for name in [] if args.skip_full else args.full:
        for precision in dict.fromkeys(["float32", fastest_precision]):
            row = full_run(name, precision)
            report["full_runs"].append(row)
            print(f"| {name} | {precision} | {row['iterations']} | {row['wall_s']:.0f} | {row['train_s']:.0f} | "
                  f"{row['test_s']:.1f} | {row['psnr']:.2f} |", flush=True)

    if not args.skip_memory:
        report["inference_peak_mb"] = {"untiled": inference_peak_mb(2000, False), "tiled": inference_peak_mb(2000, True)}
        print(f"\ninference 2000x2000 -> 4000x4000 peak memory: untiled {report['inference_peak_mb']['untiled']:.0f} MB, "
              f"tiled {report['inference_peak_mb']['tiled']:.0f} MB")
    write_json(f"bench_speed_{device_kind()}", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
