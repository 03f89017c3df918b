"""The `zssr` command.

    zssr train IMAGE [--config YAML] [--gt GT] [--kernel FILE ... | --estimate-kernel] [--out DIR]
               [--print-config] [key=value ...]
    zssr train FOLDER|'GLOB'|IMAGE ...|STACK.tif|VIDEO [--order name|given] [--engine local|ray]
               [--workers N] [--address ADDR] [...]    many images, one nested run each (sequence.*)
    zssr kernel IMAGE [--scale 2|4] [--out DIR] [--config YAML] [--print-config] [key=value ...]
                                                        estimate the image's own downscaling kernel
    zssr predict (--run-id ID | --model URI) IMAGE [--out DIR]   re-apply a tracked run's networks
    zssr upload-metrics FILE [--tracking-uri URI]       send metrics saved while the server was away
    zssr sweep FILE [--engine local|ray] [--workers N] [--address ADDR] [--out DIR] [--image GLOB]
               [--dry-run] [key=value ...]              a parameter sweep, one nested run per point

`--backend tensorflow|jax|torch` (train, kernel, predict, sweep) chooses the Keras backend before
Keras loads (else run.backend, TensorFlow by default; predict: KERAS_BACKEND, else TensorFlow).
TensorFlow's start-up messages are silenced unless `--verbose` is given or TF_CPP_MIN_LOG_LEVEL
is set; warnings print as one `zssr: warning: ...` line. Ctrl-C and SIGTERM end a run's MLflow
run KILLED, keeping what was written (exit status 130 and 143).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from zssr_tf.backend import BACKENDS, library_version, select_backend
from zssr_tf.errors import Terminated, ZSSRError, raise_terminated
from zssr_tf.startup import load_backend, quiet_tensorflow

if TYPE_CHECKING:  # the command imports the package's modules only when it needs them
    from zssr_tf.config import Config
    from zssr_tf.kernel_estimation import KernelEstimationHistory


def preset_names() -> list[str]:
    """The shipped presets (zssr_tf/configs/*.yaml), `default` first."""
    from zssr_tf.config import PRESETS_DIR

    return sorted((p.stem for p in PRESETS_DIR.glob("*.yaml")), key=lambda name: (name != "default", name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zssr", description="Zero-Shot Super-Resolution: a small CNN trained on each image it super-resolves.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="super-resolve an image, or every image of a folder, glob, TIFF stack or video",
                                description="Super-resolve IMAGE. Settings come from --config (a YAML "
                                            "file or preset name) and key=value overrides, e.g. noise_std=0.02. "
                                            "Presets: default (ZSSR, MATLAB bicubic kernel), blind (estimate the "
                                            "image's own kernel first), zsrgan (GAN mode: L1 + adversarial + "
                                            "VGG16 perceptual loss), and more; see README.md (Presets).")
    train.add_argument("inputs", nargs="*", metavar="IMAGE [key=value ...]",
                       help="input image (PNG, JPEG, TIFF; 8/16-bit, gray/RGB/RGBA), then config overrides "
                            "such as noise_std=0.02 or train.max_iters=500")
    train.add_argument("--demo", action="store_true", help="run on a small demo image shipped with scikit-image")
    train.add_argument("--config", help=f"YAML config file or preset name ({', '.join(preset_names())})")
    train.add_argument("--gt", help="ground-truth HR image: print PSNR/SSIM of ZSSR and bicubic")
    train.add_argument("--kernel", nargs="+", default=None, metavar="FILE",
                       help="downscaling kernel per scale step (.mat with variable Kernel, or .npy)")
    train.add_argument("--estimate-kernel", action="store_true",
                       help="estimate the image's own downscaling kernel first (KernelGAN), then run ZSSR with "
                            "it; the same as kernel=estimate (the blind and blind_real presets set it)")
    train.add_argument("--out", default=None, help="output folder (default: run.output_dir)")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config and exit (with IMAGE: its noise_std and jpeg_quality auto "
                            "resolved for that image)")
    train.add_argument("--no-tracking", action="store_true",
                       help="no MLflow run: write the outputs only (run.tracking=false; MLflow need not be installed)")
    train.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                       help="seconds the whole run may take: the kernel estimation's runs and iterations and ZSSR's "
                            "max_iters are chosen to fit, after timing a few iterations here (run.time_budget)")
    _add_backend_option(train)
    train.add_argument("--verbose", action="store_true", help="show TensorFlow's own log messages")
    many = train.add_argument_group("many images", "with a folder, a quoted glob, several images, a multi-page TIFF "
                                    "or a video: one run per image under one parent MLflow run, finished images "
                                    "skipped on a rerun; --gt then takes a folder or a pattern such as "
                                    "'{dir}/../hr/{name}'; sequence.carry_over=weights starts each image from the "
                                    "last one's network (docs/cli.md)")
    many.add_argument("--order", choices=("name", "given"), default=None,
                      help="name: by file name, numbers by value (default); given: as listed")
    many.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local (default) or ray: where independent images (sequence.carry_over=none) run")
    many.add_argument("--workers", type=int, default=1, metavar="N",
                      help="local engine: N images at a time, each in its own process (carry_over none only)")
    many.add_argument("--address", default=None, help="Ray cluster to run on (default: a local Ray started here)")
    kernel = commands.add_parser("kernel", help="estimate an image's own downscaling kernel (KernelGAN, or method=fkp)",
                                 description="Estimate the x2 downscaling kernel of IMAGE from the image itself "
                                             "(KernelGAN, NeurIPS 2019; method=fkp: in a kernel prior's latent "
                                             "space, FKP, CVPR 2021) and write <name>_kernel_x2.npy/.mat/.png "
                                             "(with --scale 4 also the analytic x4 kernel). Settings: the "
                                             "kernel_estimation section of --config and key=value overrides.")
    kernel.add_argument("inputs", nargs="*", metavar="IMAGE [key=value ...]",
                        help="input image, then overrides such as estimation_iters=1500 or estimation_shave=0")
    kernel.add_argument("--scale", type=int, choices=(2, 4), default=2, help="2: the x2 kernel; 4: also the x4 kernel")
    kernel.add_argument("--config", help="YAML config file or preset name (its kernel_estimation section is used)")
    kernel.add_argument("--out", default=None, help="output folder (default: run.output_dir)")
    kernel.add_argument("--print-config", action="store_true",
                        help="print the resolved kernel_estimation settings and run.seed, and exit")
    _add_backend_option(kernel)
    kernel.add_argument("--verbose", action="store_true", help="show TensorFlow's own log messages")
    predict = commands.add_parser("predict", help="super-resolve an image with the networks of a tracked run",
                                  description="Re-apply the networks an MLflow run of `zssr train` saved (no "
                                              "training): self-ensemble and back-projection with the run's config.")
    predict.add_argument("image", help="input image")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-id", help="MLflow run id (printed by zssr train, shown in the UI)")
    source.add_argument("--model", metavar="URI",
                        help="an MLflow model logged by zssr train: models:/NAME/VERSION (registered with "
                             "run.register_model), models:/<model id> or runs:/<run id>/zssr")
    predict.add_argument("--out", default=None, help="output folder (default: the run's run.output_dir)")
    predict.add_argument("--tracking-uri", default=None,
                         help="MLflow store of the run (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    predict.add_argument("--backend", choices=BACKENDS, default=None,
                         help="Keras backend to run the networks on (default: $KERAS_BACKEND, else tensorflow)")
    predict.add_argument("--verbose", action="store_true", help="show TensorFlow's own log messages")
    upload = commands.add_parser("upload-metrics", help="send metrics saved to a file while the server was away",
                                 description="Send the metric values zssr train saved to FILE (JSON lines) "
                                             "because the tracking server failed, to their run.")
    upload.add_argument("file", help="the *_unsent_metrics.jsonl file named in the warning")
    upload.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    upload.add_argument("--run-id", default=None, help="send to this run instead of the one recorded in FILE")
    sweep = commands.add_parser("sweep", help="run a parameter sweep, one MLflow run per (image, point)",
                                description="Run every point of the sweep FILE's grid/zip on every one of its images, "
                                            "each as an MLflow run nested under one parent run, then log a summary "
                                            "table and plot to the parent. Running it again skips finished runs. "
                                            "The file format is described in docs/sweeps.md.")
    sweep.add_argument("file", metavar="FILE",
                       help="sweep YAML file, or a shipped sweep's name (noise_crop, speed_quality, tiny)")
    sweep.add_argument("overrides", nargs="*", metavar="key=value",
                       help="settings for every point, on top of the file's overrides, e.g. max_iters=200")
    sweep.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: runs on this machine (default); ray: runs as Ray tasks (pip install 'zssr-tf[ray]')")
    sweep.add_argument("--workers", type=int, default=1, metavar="N",
                       help="local engine: N runs at a time, each in its own process (default 1)")
    sweep.add_argument("--address", default=None,
                       help="Ray cluster to run on, e.g. ray://host:10001 (default: a local Ray started here); "
                            "needs an MLflow tracking server as run.tracking_uri or MLFLOW_TRACKING_URI")
    sweep.add_argument("--out", default=None, help="output folder (default: <run.output_dir>/sweeps/<name>)")
    sweep.add_argument("--image", action="append", default=None, metavar="PATH_OR_GLOB",
                       help="run on these images instead of the file's (repeat for several)")
    sweep.add_argument("--dry-run", action="store_true", help="print the runs the sweep expands to and exit")
    _add_backend_option(sweep)
    sweep.add_argument("--verbose", action="store_true", help="show TensorFlow's own log messages")
    return parser


def _add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend: tensorflow (default), jax (pip install 'zssr-tf[jax]') or torch; "
                             "the same as run.backend=NAME (docs/backends.md)")


def _backend_overrides(args: argparse.Namespace) -> list[str]:
    """The settings `--backend`, `--no-tracking` and `--time-budget` stand for."""
    return ([f"run.backend={args.backend}"] if args.backend else []) + (
        ["run.tracking=false"] if getattr(args, "no_tracking", False) else []) + (
        [f"run.time_budget={args.time_budget}"] if getattr(args, "time_budget", None) is not None else [])


def _start_backend(name: str, quiet: bool, announce: bool = True) -> None:
    """Select Keras backend `name` and import its library (before Keras loads), then print which
    one runs (unless `announce` is False: `zssr predict` prints only what it saved). Raises
    ZSSRError naming the package to install when it is missing."""
    select_backend(name)
    load_backend(name, quiet)
    if announce:
        print(f"Keras backend: {name} {library_version(name)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    started_at = time.perf_counter()  # a time budget (--time-budget) counts from here
    parser = build_parser()
    # Overrides may come after options (zssr train a.png --out o noise_std=0.1): argparse
    # leaves those positionals over, so collect them here.
    args, extras = parser.parse_known_args(argv)
    args.started_at = started_at
    unknown = [e for e in extras if e.startswith("-")] if args.command in ("train", "kernel", "sweep") else extras
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "sweep":
        args.overrides += extras
    if args.command == "train" and args.kernel:
        # `--kernel FILE ...` takes every word after it: settings written after the files are settings.
        extras += [k for k in args.kernel if "=" in k and not Path(k).exists()]
        args.kernel = [k for k in args.kernel if k not in extras]
    if args.command in ("train", "kernel"):
        positionals = args.inputs + extras
        args.overrides = [p for p in positionals if "=" in p and not Path(p).exists()]
        images = [p for p in positionals if p not in args.overrides]
        if args.command == "train":
            from zssr_tf.sweeps.inputs import is_many

            args.images = images if is_many(images) and not args.print_config else None
            single_only = [o for o, on in (("--order", args.order), ("--engine", args.engine != "local"),
                                           ("--workers", args.workers != 1), ("--address", args.address)) if on]
            if args.images is None and single_only:
                parser.error(f"{', '.join(single_only)}: for several inputs (a folder, a glob, a stack, a video)")
        if len(images) > 1 and getattr(args, "images", None) is None:
            parser.error(f"one input image at a time, got {images}; overrides take the form key=value")
        args.image = images[0] if images else None
    args.quiet = quiet_tensorflow(getattr(args, "verbose", False))
    default_showwarning, warnings.showwarning = warnings.showwarning, _show_one_line_warning
    # Python lets only the main thread set handlers (main() may run elsewhere, e.g. in a notebook's thread).
    in_main_thread = threading.current_thread() is threading.main_thread()
    default_sigterm = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    command = {"train": train_many if getattr(args, "images", None) else train, "kernel": kernel,
               "predict": predict, "upload-metrics": upload_metrics, "sweep": sweep}[args.command]
    try:
        return command(args)
    except ZSSRError as err:
        print(f"zssr: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("zssr: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("zssr: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = default_showwarning
        # After a SIGTERM its handler is SIG_IGN (errors.raise_terminated) and stays so until the
        # process has exited: a repeated SIGTERM must not kill it while it shuts down.
        if in_main_thread and signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, default_sigterm)


def train(args: argparse.Namespace) -> int:
    import yaml

    from zssr_tf.checks import blind_step_factors, check_inputs, check_output_dir
    from zssr_tf.config import load_config
    from zssr_tf.image_io import read_image
    from zssr_tf.kernels import load_kernel

    config = load_config(args.config, args.overrides + (["kernel=estimate"] if args.estimate_kernel else [])
                         + _backend_overrides(args))
    blind = config.kernel_estimation.kernel == "estimate"
    if blind and args.kernel:
        raise ZSSRError("--kernel gives the kernel and kernel=estimate (--estimate-kernel, --config blind) estimates "
                        "it: use one of them")
    if args.print_config:  # prints the settings a run would use; with an image, its "auto" ones resolved
        if args.image is not None:
            from zssr_tf.photo import resolve_photo_settings

            image, _, info = read_image(args.image)
            config, estimate = resolve_photo_settings(config, image, info.path, info.bit_depth)
            print("".join(f"# {note}\n" for note in estimate.notes), end="")
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    image_path = _input_path(args)
    image, alpha, info = read_image(image_path)
    gt = read_image(args.gt)[0] if args.gt else None
    kernels = [load_kernel(k) for k in args.kernel] if args.kernel else None
    # Every check that needs no training, before TensorFlow is even imported.
    check_inputs(config, image, gt, kernels, names={"image": f"the image {image_path}", "gt": f"the ground truth {args.gt}"})
    out_dir = check_output_dir(args.out or config.run.output_dir, "--out" if args.out else "run.output_dir")

    _start_backend(config.run.backend, args.quiet)  # after the cheap checks
    from zssr_tf.pipeline import kernel_file_stem, super_resolve_untracked, tracked_super_resolve

    def reuse_hint(estimate, kernel_paths) -> None:
        # Printed now, not at the end: the kernel files stay usable if ZSSR then fails.
        stem = Path(info.path).stem
        per_step = [str(out_dir / f"{kernel_file_stem(stem, f)}.npy") for f in blind_step_factors(config)]
        print(f"estimated the kernel in {_estimation_summary(estimate.history, config)}; wrote "
              f"{', '.join(map(str, kernel_paths))}. To reuse it instead of estimating again: --kernel "
              f"{shlex.join(per_step)} kernel=given (without --estimate-kernel)", flush=True)

    run = None
    if config.run.tracking:
        run, outcome = tracked_super_resolve(
            config, image, alpha, info, out_dir, gt_path=args.gt, kernel_paths=args.kernel or (),
            tags={"config": Path(args.config).stem if args.config else "default"}, overrides=args.overrides,
            on_estimated=reuse_hint, started_at=args.started_at)
    else:
        outcome = super_resolve_untracked(config, image, alpha, info, out_dir, gt, kernels, on_estimated=reuse_hint,
                                          started_at=args.started_at)
    print(f"saved {outcome.sr_path} ({outcome.result.sr.shape[1]}x{outcome.result.sr.shape[0]}) "
          f"and {outcome.bicubic_path}")
    if outcome.metrics:
        z, b = outcome.metrics["zssr"], outcome.metrics["bicubic"]
        print(f"PSNR-Y  zssr {z['psnr']:.2f} dB   bicubic {b['psnr']:.2f} dB   gain {z['psnr'] - b['psnr']:+.2f} dB")
        print(f"SSIM-Y  zssr {z['ssim']:.4f}     bicubic {b['ssim']:.4f}")
        if "lpips_like" in z:  # lower is better
            print(f"LPIPS-like  zssr {z['lpips_like']:.4f}     bicubic {b['lpips_like']:.4f}")
        if "psnr_16bit" in z:  # 16-bit data, compared at its own depth
            print(f"PSNR 16-bit  zssr {z['psnr_16bit']:.2f} dB   bicubic {b['psnr_16bit']:.2f} dB   "
                  f"gain {z['psnr_16bit'] - b['psnr_16bit']:+.2f} dB")
    if outcome.budget is not None:
        print(outcome.budget.summary())
    if run is None:
        return 0
    print(f"MLflow run {run.run_id} ({run.run_name()}) in {run.tracking_uri}")
    if run.model_info is not None:
        registered = run.model_info.registered_model_version
        print(f"MLflow model {run.model_info.model_uri}" + (
            f", registered as models:/{config.run.register_model}/{registered}" if registered else ""))
    print(f"view it: {run.ui_hint()}")
    return 0


def kernel(args: argparse.Namespace) -> int:
    from zssr_tf.config import load_config, parse_overrides
    from zssr_tf.image_io import read_image

    scale = [[2.0, 2.0], [4.0, 4.0]] if args.scale == 4 else [[2.0, 2.0]]
    # The kernel's steps replace the config's; back-projection (a ZSSR setting, one value per step
    # there) plays no part in the estimation.
    fixed = {"kernel": "estimate", "scale_factors": scale, "base_change_sfs": [], "back_projection_iters": [0]}
    why = {"kernel": "it always estimates", "scale_factors": "--scale 2|4 chooses the steps"}
    for name, value in parse_overrides(args.overrides).items():  # a setting the command would silently replace
        key = name.rsplit(".", 1)[-1]
        if key in fixed and value != fixed[key]:
            raise ZSSRError(f"zssr kernel sets {key} itself ({why.get(key, 'a ZSSR setting, unused here')}): "
                            f"leave out {name}=")
    config = load_config(args.config, args.overrides + [f"{key}={value}" for key, value in fixed.items()]
                         + _backend_overrides(args))
    if args.print_config:  # needs no image: what the estimation would use, "auto" resolved
        import yaml

        settings = config.to_dict()
        print(yaml.safe_dump({"kernel_estimation": settings["kernel_estimation"],
                              "run": {"seed": settings["run"]["seed"]}}, sort_keys=False), end="")
        return 0
    image, _, info = read_image(_input_path(args))
    from zssr_tf.checks import check_output_dir
    from zssr_tf.kernel_estimation.inputs import check_estimation_inputs

    check_estimation_inputs(image, config)
    out_dir = check_output_dir(args.out or config.run.output_dir, "--out" if args.out else "run.output_dir")
    _start_backend(config.run.backend, args.quiet)
    from zssr_tf.pipeline import estimate_blind_kernels, estimation_progress, write_estimated_kernels

    k = config.kernel_estimation
    estimate = estimate_blind_kernels(config, image, estimation_progress(
        config.run.progress_every, k.estimation_iters, k.estimation_runs))
    paths = write_estimated_kernels(estimate, out_dir, Path(info.path).stem)
    print(f"estimated the kernel of {info.path} in {_estimation_summary(estimate.history, config)}; wrote "
          f"{', '.join(map(str, paths))}")
    return 0


def train_many(args: argparse.Namespace) -> int:
    """`zssr train` on several inputs (zssr_tf.sweeps.sequence); exit status 1 when an image failed."""
    if args.demo:
        raise ZSSRError("--demo runs on one demo image: leave it out with several inputs")
    from zssr_tf.sweeps.sequence import plan_set, run_set

    overrides = args.overrides + (["kernel=estimate"] if args.estimate_kernel else []) + _backend_overrides(args)
    image_set = plan_set(args.images, args.config, overrides, gt=args.gt, kernels=args.kernel or (), out_dir=args.out,
                         order=args.order or "name")
    if not image_set.config.run.tracking:
        raise ZSSRError("several images run as one parent MLflow run with a child run each: leave out "
                        "--no-tracking (run.tracking=false), or run one image at a time")
    _start_backend(image_set.config.run.backend, args.quiet)  # the runner loads it (tracking): after the checks
    report = run_set(image_set, engine=args.engine, workers=args.workers, address=args.address)
    return 1 if report.failures else 0


def _estimation_summary(history: KernelEstimationHistory, config: Config) -> str:
    """"<seconds> s (<iterations> iterations, <ms> ms each; the mean of <kept> of <R> runs; per
    run: <iterations> (<why it stopped>), ...)": one line on a finished estimation (kept: the runs
    that did not collapse; R: the runs made, fewer than estimation_runs when they agreed early)."""
    runs = config.kernel_estimation.estimation_runs
    made = len(history.runs) or runs
    mean_of = f"; the mean of {history.runs_averaged} of {made} runs" if runs > 1 else ""
    if history.runs_agreed:
        mean_of += f", which agreed (runs_agree_tolerance; estimation_runs {runs})"
    per_run = f"; per run: {history.describe_runs()}" if history.runs else ""
    return (f"{history.seconds:.1f} s ({history.iterations} iterations, {history.ms_per_iteration:.0f} ms each"
            f"{mean_of}{per_run})")


def predict(args: argparse.Namespace) -> int:
    from zssr_tf.checks import check_output_dir

    if args.out:
        check_output_dir(args.out)  # before the model loads
    _start_backend(select_backend(args.backend), args.quiet, announce=False)
    from zssr_tf.predict import predict_from_model, predict_from_run

    if args.model:
        sr_path = predict_from_model(args.model, args.image, args.out, args.tracking_uri)
    else:
        sr_path = predict_from_run(args.run_id, args.image, args.out, args.tracking_uri)
    print(f"saved {sr_path}")
    return 0


def upload_metrics(args: argparse.Namespace) -> int:
    from zssr_tf.tracking import resolve_tracking_uri, upload_metrics as upload

    count = upload(args.file, args.tracking_uri, args.run_id)
    print(f"sent {count} metric values from {args.file} to {resolve_tracking_uri(args.tracking_uri)}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from zssr_tf.sweeps.runner import run_sweep
    from zssr_tf.sweeps.spec import describe, load_sweep

    from zssr_tf.checks import check_output_dir

    plan = load_sweep(args.file, args.overrides + _backend_overrides(args), images=args.image)
    check_output_dir(args.out or Path(plan.base_config.run.output_dir) / "sweeps" / plan.name,
                     "--out" if args.out else "run.output_dir")
    backends = sorted({point.config.run.backend for point in plan.points} | {plan.base_config.run.backend})
    if len(backends) > 1:
        raise ZSSRError(f"a sweep runs on one Keras backend, this one names {', '.join(backends)}: set run.backend "
                        "for the whole sweep (--backend), not per point")
    if not plan.base_config.run.tracking:
        raise ZSSRError("a sweep records every point as an MLflow run: leave out run.tracking=false")
    if args.dry_run:
        print(describe(plan), end="")
        return 0
    _start_backend(backends[0], args.quiet)  # the runner loads the backend (tracking): quietly, after the checks
    report = run_sweep(plan, engine=args.engine, workers=args.workers, address=args.address, out_dir=args.out)
    return 1 if report.failures else 0


def _on_sigterm(signum, frame) -> None:
    """SIGTERM stops a run as Ctrl-C does (errors.raise_terminated: the MLflow run ends KILLED,
    outputs kept; later SIGTERMs are ignored meanwhile). It reaches this process only, unlike a terminal's Ctrl-C, so it is passed on to the
    sweep's worker processes, which end their runs the same way (sweeps.engines.start_worker)."""
    for child in multiprocessing.active_children():
        child.terminate()
    raise_terminated(signum, frame)


def _show_one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning as one `zssr: warning: ...` line on stderr, without source lines."""
    print(f"zssr: warning: {message}", file=file or sys.stderr, flush=True)


def _input_path(args: argparse.Namespace) -> str:
    if getattr(args, "demo", False):
        import skimage

        return str(Path(skimage.__file__).parent / "data" / "chelsea.png")
    if not args.image:
        hint = (" (--kernel takes every path after it: put the image before --kernel)"
                if getattr(args, "kernel", None) else "")
        raise ZSSRError(f"no input image: give a path (zssr train photo.png) or --demo{hint}")
    return args.image


if __name__ == "__main__":
    sys.exit(main())
