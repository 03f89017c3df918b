"""Parameter sweeps: `spec` (the sweep file and its points), `engines` (where runs execute: here,
in worker processes, on Ray), `runner` (running a sweep: resume, progress, the parent run) and
`summary` (the per-point table and plots)."""
