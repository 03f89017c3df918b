"""Shared test fixtures: the benchmark data, isolated Keras/MLflow state.

Benchmark data: `$ZSSR_DATA` when set, else `../shared/data` beside the repository when it
exists, else the subset shipped in `tests/data` (Set5 at x2/x4 and Set14's gray `bridge`; see
its README). Tests that need the whole of Set14 take `full_data_dir`, which skips without it.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO / "tests" / "data"
BESIDE_REPO = REPO.parent / "shared" / "data"
SET14 = ["baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers",
         "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra"]  # fmt: skip


def _benchmark_dir() -> Path:
    configured = os.environ.get("ZSSR_DATA")
    if configured:
        if not Path(configured).is_dir():
            pytest.fail(f"ZSSR_DATA={configured} is not a folder: point it at a Set5/Set14 folder "
                        "(set5/hr, set5/lr_x2, ...) or unset it to use tests/data")
        return Path(configured).resolve()
    # Resolved: sweeps resolve the paths they find, and ../shared may be a link.
    return BESIDE_REPO.resolve() if BESIDE_REPO.is_dir() else SHIPPED_DATA


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The Set5/Set14 folder: the full set (ZSSR_DATA or ../shared/data) or the shipped subset.
    Holds at least set5/{hr,lr_x2,lr_x4}/*.png and set14/{hr,lr_x2,lr_x4}/bridge.png."""
    return _benchmark_dir()


@pytest.fixture(scope="session")
def full_data_dir(shared_data_dir) -> Path:
    """The Set5/Set14 folder when it holds all of Set14 at x2; the test is skipped otherwise."""
    missing = [n for n in SET14 if not (shared_data_dir / "set14" / "lr_x2" / f"{n}.png").is_file()]
    if missing:
        pytest.skip(f"needs all of Set14 (missing {len(missing)} of 14 in {shared_data_dir}); "
                    "set ZSSR_DATA to a full Set5/Set14 folder to run it")
    return shared_data_dir


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Each test gets its own MLflow store in tmp_path and a fresh Keras session."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    yield
    import sys

    if "keras" in sys.modules:
        # free_memory=False: no gc.collect(), which costs ~2 s a test once TF and MLflow are loaded.
        sys.modules["keras"].backend.clear_session(free_memory=False)
