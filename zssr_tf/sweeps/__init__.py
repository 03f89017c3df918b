"""Parameter sweeps: `spec` (the sweep file and its points), `engines` (where runs execute: here,
in worker processes, on Ray), `runner` (running a sweep: resume, progress), `parent_run` (the
parent MLflow run) and `summary` (the per-point table and plots)."""
