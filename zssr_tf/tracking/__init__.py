"""MLflow tracking: every `zssr train` is one MLflow run, logged without slowing training.

Store: `run.tracking_uri` from the config, else `$MLFLOW_TRACKING_URI`, else the SQLite file
`./mlflow.db` in the working directory (MLflow 3's own default). Experiment: `run.experiment_name`,
tagged `mlflow.experimentKind: custom_model_development`. MLflow 3.17's UI starts in its GenAI mode
whatever the experiment; the addresses zssr prints (`store.ui_url`) carry
`?workflowType=machine_learning`, which opens it in its "Model training" mode (runs, charts).

What a run holds
- Name: `<image>_x<scale>`, the preset unless it is `default`, then what sets the run apart: the
  command line's overrides (those of the `run` section but `seed` left out) or, in a sweep, the
  swept values, e.g. `bird_x2 noise_std=0.02 crop_size=64`. Description (`mlflow.note.content`):
  image, size, preset, overrides, ground truth, kernels.
- Params: the resolved config flattened (`model.depth`, `augment.noise_std`, ...), `image.*` and
  `gt.*` (name, sha256 of the file; for the image also its size as displayed, channels in the file
  alpha included, bit depth and `image.exif_orientation`, the EXIF orientation applied, 1..8),
  `kernel.<i>.*` (file name, sha256),
  `scale_steps`, `precision` (resolved), `device`, `version.*` (zssr_tf, tensorflow, keras, mlflow,
  python). Tags: `image`, `scale`, `config`, `kernel`, `precision`, `device`, `has_gt`; `error` on
  failed or killed runs.
- Datasets (`mlflow.log_input`): the input image (context `training`) and the ground truth
  (context `evaluation`): file name, source path, shape, the first 8 hex digits of its sha256.
- Metrics, grouped by prefix as the MLflow UI groups its charts:
  - `final/` (step 0), the headline numbers: `final/psnr`, `final/ssim` (Y channel, shaved:
    DESIGN §2), `final/psnr_gain` (dB over bicubic), `final/ssim_gain`, `final/psnr_rgb`,
    `final/lpips_like` (when `loss.lpips_heads` is set), for 16-bit images `final/psnr_16bit`,
    `final/ssim_16bit` (at 16-bit levels, see `metrics.evaluate`), and the same of the bicubic upscale as
    `final/bicubic_<name>` (with a ground truth, after self-ensemble and back-projection); `final/reconstruction_error` (the last test's MSE,
    the score without ground truth) and `final/iterations`.
  - `run/` (step 0): `run/train_seconds`, `run/test_seconds`, `run/iterations_per_second`,
    `run/learning_rate_drops` (count); `run/learning_rate_drop_iteration` whose step is the drop
    number (1, 2, ...) and value the global iteration of that drop.
  - `train/` (step = the global iteration, counted from 0 across scale steps): `train/loss`
    (per-iteration L1) and `train/learning_rate` every iteration, and every other number in the
    Keras batch logs as `train/<key>`: a training step that reports more (a GAN's `d_loss`)
    gets its curve with no change here (`callback.MLflowLogger`). With several scale steps,
    `train/scale_step`: the step index, logged at each step's first iteration.
  - `test/reconstruction_error` (MSE) every `run_test_every` iterations.
  - `gt/` with a ground truth, every `gt_test_every` iterations of each scale step: `gt/psnr`,
    `gt/ssim` (dB / unitless, Y, shaved) and `gt/true_error` (MSE, all channels) of the current
    network's output without ensemble or back-projection (earlier steps of a gradual run score
    against the ground truth resized to that step).
  - `step/` (step = the scale-step index), with several scale steps only: `step/iterations`,
    `step/train_seconds`, `step/test_seconds`, and with a ground truth `step/psnr`, `step/ssim` of
    the step's ensembled output and `step/bicubic_psnr`, `step/bicubic_ssim` of its bicubic input.
  - `system/` (MLflow's system metrics monitor, every 10 s; `run.system_metrics: false` turns it
    off): CPU and memory use, disk and network; GPU use and memory when `nvidia-ml-py` is
    installed and sees a GPU.
  Constant series are not logged: with one scale step there is no `train/scale_step` and no
  `step/` metric (they would repeat `final/` and `run/`).
- Artifacts: `config.yaml` (resolved), `inputs/` (`image_<name>`, `gt_<name>`,
  `kernel_<i>_<name>`: an input and its ground truth often share a file name), `outputs/` (SR and
  bicubic images, outputs of earlier scale steps; for images that use little of their range, e.g.
  12-bit data in 16-bit files, also 8-bit previews stretched for display in
  `outputs/display/<stem>_<zssr|bicubic>_display_<low>-<high>.png`, low..high the levels shown as
  black..white), `figures/` (`training_curves.png`, `crops.png`, stretched the same way and saying
  so in its title), `model/step_<i>.keras` per scale step (plus `step_<i>_kernel.npy`, the re-centred
  kernel, when one was given): `zssr predict --run-id` re-applies them. `error.txt` holds the
  traceback of a failed run. Everything but the inputs is first written to
  `<output_dir>/mlflow_runs/<run_id>/`, uploaded when the run ends, and kept.
- Model (FINISHED runs; `run.log_model: false` turns it off): the networks as the MLflow pyfunc
  model `zssr` (see `tracking.model`): LR image in, SR image out, with a signature and an input
  example; `run.register_model: NAME` registers it as a new version of NAME (`models:/NAME/<v>`,
  which `zssr predict --model` takes).

Renamed metrics (before this layout → now): `final_psnr` → `final/psnr` (likewise every
`final_*`), `loss` → `train/loss`, `learning_rate` → `train/learning_rate`,
`reconstruction_error` → `test/reconstruction_error`, `psnr`/`ssim`/`true_error` →
`gt/psnr`/`gt/ssim`/`gt/true_error`, `step_*` → `step/*`, `scale_step` → `train/scale_step`,
`iterations` → `final/iterations`, `train_seconds`/`test_seconds`/`iterations_per_second`/
`learning_rate_drops`/`learning_rate_drop_iteration` → `run/...`; the per-iteration
`bicubic_psnr`/`bicubic_ssim` (constant within a step) → `final/bicubic_*` and, with several
steps, `step/bicubic_*`. Sweep parents: `runs_finished`/`runs_failed` → `runs/finished`/`runs/failed`.

The run is created when the first scale step begins, so input errors the trainer reports leave
no run behind; an http(s) server is checked for reachability before that (`tracked_run`).
MLflow autologging (`mlflow.tensorflow.autolog()` and the like) is paused while ZSSR trains
(`tracking.autolog`), so this run is the only one.

Speed: the training thread only appends metric values to a list; a background thread sends them
with `log_batch` (see `MetricBuffer`). This package computes no score: the ground-truth test
(`callbacks.GroundTruthTest`, real work: it runs the network on the full output size and SSIM on
it), the step and final scores come from the trainer, with or without tracking. Nothing below
`trainer.py` imports this package, and it imports neither the trainer nor the pipeline.

Modules: `store` (which store, reachability, experiments, creating runs, the UI command),
`buffer` (the background metric sender, spill files, params), `callback` (the Keras callback),
`run` (the run's lifecycle: `tracked_run`, `TrackedRun`), `model` (the pyfunc model),
`autolog` (pausing MLflow autologging), `plots` (the figures), `kernel_estimation` (the kernel
estimation of a blind run: its metrics under `kernel_estimation/` and the kernel files).
"""

from zssr_tf.tracking.buffer import MetricBuffer, log_params, upload_metrics
from zssr_tf.tracking.callback import MLflowLogger
from zssr_tf.tracking.run import TrackedRun, tracked_run
from zssr_tf.tracking.store import (check_reachable, default_tracking_uri, experiment_id_for,
                                    resolve_tracking_uri)

__all__ = ["MLflowLogger", "MetricBuffer", "TrackedRun", "check_reachable", "default_tracking_uri",
           "experiment_id_for", "log_params", "resolve_tracking_uri", "tracked_run", "upload_metrics"]
