"""Where the experiment scripts keep their raw results: experiments/results/<name>.json."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
