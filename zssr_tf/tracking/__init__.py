"""MLflow tracking: every `zssr train` is one MLflow run, logged without slowing training.

The store is `run.tracking_uri`, else `$MLFLOW_TRACKING_URI`, else `./mlflow.db`. A run holds the
resolved config and input hashes as params, the input and ground truth as datasets, metrics
grouped by prefix (`final/`, `run/`, `train/`, `test/`, `gt/`, `step/`, `system/`), the images,
figures and networks as artifacts, and a pyfunc model. The full reference (every param, tag,
metric and artifact, and the metric names before this layout) is docs/tracking.md.

Nothing in the core imports this package: tracking is a Keras callback handed in from above and
receives results, computing none of them, and it imports neither the trainer nor the pipeline.
The training thread only appends metric values; a background thread sends them with `log_batch`
(`MetricBuffer`). MLflow autologging is paused while a tracked run trains (`autolog`, used by
`pipeline.tracked_super_resolve`), so the run is the only one.

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
