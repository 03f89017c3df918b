"""Sending metric values and params to a run without slowing training: `MetricBuffer` (a
background sender with retries and a spill file), `upload_metrics` (sends a spill file later),
`log_params` (params in batches within MLflow's limits)."""

from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

from zssr_tf.errors import ZSSRError
from zssr_tf.tracking.store import check_reachable, resolve_tracking_uri

FLUSH_EVERY_S = 2.0
FLUSH_AT_VALUES = 500
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)  # waits between tries before values are spilled to disk


class MetricBuffer:
    """Collects metric values from the training thread and sends them to the run from a
    background thread, in `log_batch` calls of at most 1,000 values, so training never waits
    on the network or the database.

    `add` only appends to a list. Every `flush_every_s` seconds (sooner once `flush_at` values
    wait) the thread sends what is pending. A failed send is retried after each delay of
    `retry_delays_s` (seconds); if the store still fails, the values are appended to
    `spill_path` (JSON lines) with one warning naming the command that uploads them
    (`zssr upload-metrics`), and later sends are tried once each until one succeeds. `close()`
    sends the rest and stops the thread. `sent` and `spilled` count values. Defaults are the
    module's FLUSH_EVERY_S, FLUSH_AT_VALUES and RETRY_DELAYS_S.
    """

    def __init__(self, client: MlflowClient, run_id: str, spill_path: str | Path,
                 flush_every_s: float | None = None, flush_at: int | None = None,
                 retry_delays_s: Sequence[float] | None = None):
        self.client = client
        self.run_id = run_id
        self.spill_path = Path(spill_path)
        self.flush_every_s = FLUSH_EVERY_S if flush_every_s is None else flush_every_s
        self.flush_at = FLUSH_AT_VALUES if flush_at is None else flush_at
        self.retry_delays_s = tuple(RETRY_DELAYS_S if retry_delays_s is None else retry_delays_s)
        self.sent = 0
        self.spilled = 0
        self._pending: list[tuple[str, float, int, int]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._failing = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"mlflow-metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    def add(self, key: str, value: float, step: int, timestamp_ms: int | None = None) -> None:
        """Queue one value; returns at once."""
        item = (key, float(value), timestamp_ms or int(time.time() * 1000), int(step))
        with self._lock:
            self._pending.append(item)
            full = len(self._pending) >= self.flush_at
        if full:
            self._wake.set()

    def close(self) -> None:
        """Send (or spill) everything queued and stop the thread. Blocks for at most the retry
        schedule when the store is failing."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_every_s)
            self._wake.clear()
            closing = self._closing  # read before flushing so nothing added before close() is left
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        for start in range(0, len(items), MAX_METRICS_PER_BATCH):
            if not self._send(items[start:start + MAX_METRICS_PER_BATCH]):
                self._spill(items[start:])
                return

    def _send(self, chunk) -> bool:
        metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in chunk]
        delays = () if self._failing else self.retry_delays_s
        for delay in (*delays, None):
            try:
                self.client.log_batch(self.run_id, metrics=metrics)
            except Exception as err:  # any store failure: network, HTTP 5xx, database locked
                self._error = err
                if delay is not None:
                    time.sleep(delay)
                continue
            self._failing = False
            self.sent += len(chunk)
            return True
        self._failing = True
        return False

    def _spill(self, items) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spill_path, "a") as f:
            for key, value, timestamp, step in items:
                f.write(json.dumps({"run_id": self.run_id, "key": key, "value": value, "timestamp": timestamp,
                                    "step": step}) + "\n")
        if not self.spilled:
            warnings.warn(f"MLflow tracking store {self.client.tracking_uri} is failing ({self._error}); metrics of "
                          f"run {self.run_id} are saved to {self.spill_path}. Once the store is back, upload them "
                          f"with: zssr upload-metrics {self.spill_path} --tracking-uri {self.client.tracking_uri}",
                          stacklevel=2)
        self.spilled += len(items)


def upload_metrics(path: str | Path, tracking_uri: str | None = None, run_id: str | None = None) -> int:
    """Send the metric values a `MetricBuffer` spilled to `path` (JSON lines) to their run, or to
    `run_id` when given. Returns the number of values sent; sending twice adds no duplicates."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    try:
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise ZSSRError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ZSSRError(f"{path} is not a metrics file written by zssr (JSON lines): {err}") from None
    by_run: dict[str, list[Metric]] = {}
    for r in records:
        by_run.setdefault(run_id or r["run_id"], []).append(Metric(r["key"], r["value"], r["timestamp"], r["step"]))
    client = MlflowClient(uri)
    try:
        for rid, metrics in by_run.items():
            for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                client.log_batch(rid, metrics=metrics[start:start + MAX_METRICS_PER_BATCH])
    except Exception as err:
        raise ZSSRError(f"uploading {path} to {uri} failed: {err}") from None
    return len(records)


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Log `params` in `log_batch` calls of at most 100, values as text cut to 6,000 characters
    (MLflow's limits)."""
    items = [Param(key, str(value)[:MAX_PARAM_VAL_LENGTH]) for key, value in params.items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS_TAGS_PER_BATCH])
