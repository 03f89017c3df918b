"""Shared test fixtures: the benchmark data beside the repository, isolated Keras/MLflow state."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The Set5/Set14 benchmark folder, which lives beside the repository in ../shared/data."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"benchmark data not found at {DATA_DIR}: the tests need ../shared/data beside the repo")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Each test gets its own MLflow store in tmp_path and a fresh Keras session."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
