"""The MLflow store of a run: which one (`resolve_tracking_uri`), whether it answers, the
experiment, and creating runs safely from several processes at once."""

from __future__ import annotations

import fcntl
import os
import shlex
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from zssr_tf.errors import ZSSRError

DEFAULT_DB = "mlflow.db"
REACHABILITY_TIMEOUT_S = 5.0
# MLflow's own HTTP policy (7 retries, up to ~4 minutes per request) would hold the end of a run
# for minutes once the server is gone; the MetricBuffer retries on its own schedule instead.
# Applied during a tracked run only where the user has not set these variables.
# The kind of experiment MLflow 3's UI records (its GenAI / model-training selector on the
# experiment page); the UI's start mode is set by the address (UI_MODE).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
UI_PORT = 5000
UI_MODE = "?workflowType=machine_learning"  # the query MLflow 3.17's UI reads to open in "Model training" mode
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def default_tracking_uri() -> str:
    """MLflow 3's default store: the SQLite file `mlflow.db` in the working directory."""
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`configured` (run.tracking_uri), else $MLFLOW_TRACKING_URI, else `default_tracking_uri()`."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def ui_command(uri: str) -> str:
    """The shell command that serves the MLflow UI for the store `uri` (nothing to start for a
    server: its own address), e.g. `mlflow ui --backend-store-uri sqlite:////abs/mlflow.db --port 5000`."""
    if uri.startswith(("http://", "https://")):
        return ""
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)} --port {UI_PORT}"


def ui_url(uri: str, page: str = "") -> str:
    """The browser address of `page` (e.g. `#/experiments/1/runs/<id>`) in the UI for `uri`, in
    the UI's "Model training" mode: MLflow 3.17's UI starts in its GenAI mode unless the address
    asks otherwise (or the browser remembers a choice made with its GenAI / Model training switch)."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{UI_PORT}"
    return f"{base}/{page}{UI_MODE}" if page else f"{base}/"


@contextmanager
def use_tracking_uri(uri: str):
    """MLflow's global tracking URI set to `uri` inside the block, for MLflow functions that take
    no URI (logging a model); restored after, with $MLFLOW_TRACKING_URI as it was (MLflow's
    `set_tracking_uri` also sets that variable, and unsets it when given None)."""
    from mlflow.tracking._tracking_service import utils  # holds the URI set_tracking_uri set, or None

    previous, previous_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def check_reachable(uri: str, timeout: float = REACHABILITY_TIMEOUT_S) -> None:
    """Raise ZSSRError naming `uri` when it is an http(s) tracking server that does not answer
    within `timeout` seconds. Any HTTP answer counts (a proxy may not expose `/health`); other
    stores are local and pass."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:
        raise ZSSRError(f"MLflow tracking server {uri} is unreachable ({getattr(err, 'reason', err)}): start it or "
                        "fix run.tracking_uri / MLFLOW_TRACKING_URI (unset both to track into ./mlflow.db)") from None


def start_run(uri: str, experiment_name: str, run_name: str, tags: dict[str, str]) -> tuple[MlflowClient, str, str]:
    """Create a RUNNING run named `run_name` with `tags` (plus MLflow's context tags: user,
    source, git commit) in the experiment `experiment_name`, created when missing. A
    `mlflow.runName` in `tags` wins over `run_name`. Returns (client, experiment id, run id);
    raises ZSSRError naming the store when it fails."""
    try:
        with store_lock(uri):
            client = MlflowClient(uri)
            experiment_id = experiment_id_for(client, experiment_name)
            run = client.create_run(experiment_id, tags=resolve_tags({MLFLOW_RUN_NAME: run_name, **tags}))
    except ZSSRError:
        raise
    except Exception as err:
        raise ZSSRError(f"cannot start an MLflow run in {uri}: {type(err).__name__}: {err}") from None
    return client, experiment_id, run.info.run_id


def experiment_id_for(client: MlflowClient, name: str) -> str:
    """The id of the experiment `name`, created when missing; ZSSRError when it is deleted. An
    experiment without the `mlflow.experimentKind` tag gets EXPERIMENT_KIND (model training)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = _create_experiment(client, name)
        tagged = False
    elif experiment.lifecycle_stage == "deleted":
        raise ZSSRError(f"experiment {name!r} in {client.tracking_uri} is deleted: restore it "
                        "(mlflow experiments restore) or choose another run.experiment_name")
    else:
        experiment_id, tagged = experiment.experiment_id, EXPERIMENT_KIND_TAG in experiment.tags
    if not tagged:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment_id


def _create_experiment(client: MlflowClient, name: str) -> str:
    try:
        return client.create_experiment(name)
    except Exception:
        # Another process may have created it since we looked (a server has no lock of ours).
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextmanager
def store_lock(uri: str):
    """Serialise run creation across processes on a SQLite store. MLflow creates the tables on
    first use, and two processes doing that at once corrupt the store (seen with MLflow 3.17:
    failed migrations, leftover `_alembic_tmp_*` tables). Other stores need no lock."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = uri[len("sqlite:///"):].split("?")[0]
    if not path or path == ":memory:":
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def http_retries_for_tracking():
    added = [key for key in HTTP_DEFAULTS if key not in os.environ]
    os.environ.update({key: HTTP_DEFAULTS[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
