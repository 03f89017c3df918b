"""MLflow tracking: every `zssr train` is one MLflow run, logged without slowing training.

Store: `run.tracking_uri` from the config, else `$MLFLOW_TRACKING_URI`, else the SQLite file
`./mlflow.db` in the working directory (MLflow 3's own default). Experiment: `run.experiment_name`.

What a run holds
- Params: the resolved config flattened (`model.depth`, `augment.noise_std`, ...), `image.*` and
  `gt.*` (name, sha256 of the file; for the image also its size as displayed, channels in the file
  alpha included, bit depth and `image.exif_orientation`, the EXIF orientation applied, 1..8),
  `kernel.<i>.*` (file name, sha256),
  `scale_steps`, `precision` (resolved), `device`, `version.*` (zssr_tf, tensorflow, keras, mlflow,
  python). Tags: `image`, `scale`, `config`, `kernel`, `precision`, `device`, `has_gt`; `error` on
  failed or killed runs.
- Metrics whose step is the global iteration (counted from 0 across scale steps):
  `loss` (per-iteration L1) and `learning_rate` every iteration; `reconstruction_error` (MSE) every
  `run_test_every` iterations; with a ground truth, at the same iterations, `psnr`, `ssim` (dB /
  unitless, Y channel, shaved: DESIGN §2) and `true_error` (MSE, all channels) of the current
  network's output without ensemble or back-projection, and `bicubic_psnr`, `bicubic_ssim` of the
  bicubic upscale as a reference line (earlier steps of a gradual run score against the ground
  truth resized to that step). `scale_step`: the scale-step index, logged at each step's first
  iteration, so iteration k belongs to the last value logged at or before k.
- Metrics whose step is the scale-step index (0, 1, ...): `step_iterations`,
  `step_train_seconds`, `step_test_seconds`, and with a ground truth `step_psnr`, `step_ssim` of
  the step's ensembled output.
- Final metrics (step 0): `final_psnr`, `final_ssim`, `final_psnr_rgb` (after self-ensemble and
  back-projection), `final_bicubic_psnr`, `final_bicubic_ssim`, `final_bicubic_psnr_rgb`,
  for 16-bit images also `final/psnr_16bit`, `final/ssim_16bit` and their bicubic pair (at
  16-bit levels, see `metrics.evaluate`), `final_psnr_gain` (dB), `final_ssim_gain`, `iterations`, `train_seconds`, `test_seconds`,
  `iterations_per_second`, `learning_rate_drops` (count), and `learning_rate_drop_iteration`
  whose step is the drop number (1, 2, ...) and value the global iteration of that drop.
- Artifacts: `config.yaml` (resolved), `inputs/` (image, ground truth, kernel files),
  `outputs/` (SR and bicubic images, outputs of earlier scale steps; for images that use little
  of their range, e.g. 12-bit data in 16-bit files, also 8-bit previews stretched for display in
  `outputs/display/<stem>_<zssr|bicubic>_display_<low>-<high>.png`, low..high the levels shown
  as black..white), `figures/` (`training_curves.png`, `crops.png`, stretched the same way and
  saying so in its title), `model/step_<i>.keras` per scale step (plus
  `step_<i>_kernel.npy`, the re-centred kernel, when one was given): `zssr predict --run-id`
  re-applies them. `error.txt` holds the traceback of a failed run. Everything but the inputs is
  first written to `<output_dir>/mlflow_runs/<run_id>/`, uploaded when the run ends, and kept.

Modules: `store` (which store, reachability, experiments, creating runs), `buffer` (the
background metric sender, spill files, params), `callback` (the Keras callback), `run` (the run's
lifecycle: `tracked_run`, `TrackedRun`), `plots` (the figures), `kernel_estimation` (the kernel
estimation of a blind run: its metrics under `kernel_estimation/` and the kernel files).

The run is created when the first scale step begins, so input errors the trainer reports leave
no run behind; an http(s) server is checked for reachability before that (`tracked_run`).

Speed: the training thread only appends metric values to a list; a background thread sends them
with `log_batch` (see `MetricBuffer`). The scores against a ground truth are real work: each
test runs the network on the full output size and SSIM on it. Nothing below `trainer.py`
imports this module.
"""

from zssr_tf.tracking.buffer import MetricBuffer, log_params, upload_metrics
from zssr_tf.tracking.callback import MLflowLogger
from zssr_tf.tracking.run import TrackedRun, tracked_run
from zssr_tf.tracking.store import (check_reachable, default_tracking_uri, experiment_id_for,
                                    resolve_tracking_uri)

__all__ = ["MLflowLogger", "MetricBuffer", "TrackedRun", "check_reachable", "default_tracking_uri",
           "experiment_id_for", "log_params", "resolve_tracking_uri", "tracked_run", "upload_metrics"]
