"""Where the experiment scripts find the Set5/Set14 benchmark folder.

`$ZSSR_DATA` when set, else `../shared/data` beside the repository when it exists, else the
subset shipped for the tests in `tests/data` (all of Set5 at x2 and x4, Set14's `bridge`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
