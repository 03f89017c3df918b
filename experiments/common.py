"""What the experiment scripts share: where the benchmark data is and where raw results go.

The scripts import this module as `common`. Python puts a script's own folder first on
`sys.path`, so `python experiments/bench_set5.py` (from the repository root) and
`python bench_set5.py` (from this folder) both find it, and the scripts that build on another
script (`from bench_blind import make_case`) find that one the same way; `tests/test_experiments.py`
puts this folder on the path for its in-process checks.

Benchmark data: `$ZSSR_DATA` when set, else `../shared/data` beside the repository when it
exists, else the subset shipped for the tests in `tests/data` (all of Set5 at x2 and x4, Set14's
`bridge`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def benchmark_data_dir() -> Path:
    """The benchmark folder (layout `<set>/{hr,lr_x2,lr_x3,lr_x4}/<name>.png`); exits with a
    message when ZSSR_DATA names no folder."""
    configured = os.environ.get("ZSSR_DATA")
    if configured:
        if not Path(configured).is_dir():
            sys.exit(f"ZSSR_DATA={configured} is not a folder: point it at a Set5/Set14 folder or unset it")
        return Path(configured)
    beside = REPO.parent / "shared" / "data"
    return beside if beside.is_dir() else REPO / "tests" / "data"


def device_kind() -> str:
    """'gpu' when TensorFlow sees a GPU, else 'cpu': the suffix of per-device result files."""
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def write_json(name: str, report: dict, announce: bool = True) -> Path:
    """Write `report` to results/<name>.json (indented) and, when `announce`, say where."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    if announce:
        print(f"wrote {path}")
    return path
