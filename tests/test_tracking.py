"""MLflow tracking: complete runs, KILLED/FAILED runs, unreachable or lost servers, concurrent writers."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from zssr_tf import tracking
from zssr_tf.cli import main
from zssr_tf.config import load_config
from zssr_tf.image_io import read_image
from zssr_tf.metrics import evaluate
from zssr_tf.pipeline import super_resolve_file

TINY = ["init_weights=none", "model.depth=3", "model.width=8", "train.max_iters=30", "run_test_every=10", "crop_size=32",
        "back_projection_iters=[2]", "progress_every=0", "precision=float32", "log_model=false",
        "system_metrics=false"]
GRADUAL = ["scale_factors=[[1.5, 1.5], [2.0, 2.0]]"]


@pytest.fixture
def images(shared_data_dir, tmp_path):
    """A 48x48 crop of Set5 baby's x2 input and the matching 96x96 ground truth, as files."""
    lr = cv2.imread(str(shared_data_dir / "set5/lr_x2/baby.png"))[100:148, 100:148]
    hr = cv2.imread(str(shared_data_dir / "set5/hr/baby.png"))[200:296, 200:296]
    cv2.imwrite(str(tmp_path / "lr.png"), lr)
    cv2.imwrite(str(tmp_path / "hr.png"), hr)
    return tmp_path / "lr.png", tmp_path / "hr.png"


def store() -> MlflowClient:
    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


def only_run(client: MlflowClient, experiment: str = "zssr"):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return runs[0]


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def steps_of(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_train_run_is_complete_and_predict_reapplies_it(images, tmp_path, capsys):
    lr, hr = images
    assert main(["train", str(lr), "--gt", str(hr), "--out", str(tmp_path / "out"), *TINY, *GRADUAL,
                 "gt_test_every=20"]) == 0
    assert "MLflow run" in capsys.readouterr().out
    client = store()
    run = only_run(client)
    run_id, params, metrics = run.info.run_id, run.data.params, run.data.metrics
    assert run.info.status == "FINISHED"

    # One loss and learning rate per iteration, numbered globally across the two scale steps.
    assert metrics["final/iterations"] == 60
    assert steps_of(client, run_id, "train/loss") == list(range(60))
    assert steps_of(client, run_id, "train/learning_rate") == list(range(60))
    assert steps_of(client, run_id, "test/reconstruction_error") == [0, 10, 20, 30, 40, 50]
    # Ground-truth scores every gt_test_every iterations of each scale step.
    for key in ("gt/psnr", "gt/ssim", "gt/true_error"):
        assert steps_of(client, run_id, key) == [0, 20, 30, 50], key
    assert steps_of(client, run_id, "train/scale_step") == [0, 30]
    for key in ("step/psnr", "step/bicubic_psnr", "step/iterations"):
        assert steps_of(client, run_id, key) == [0, 1], key
    # Every metric name is grouped by a prefix the MLflow UI groups charts by.
    assert {key.split("/")[0] for key in metrics} == {"final", "run", "gt", "step", "test", "train"}

    # Final metrics agree with the written image scored by the evaluation protocol.
    sr = read_image(tmp_path / "out/lr_x2_zssr.png")[0]
    assert metrics["final/psnr"] == pytest.approx(evaluate(sr, read_image(hr)[0], 2)["psnr"], abs=1e-6)
    assert metrics["final/psnr_gain"] == pytest.approx(metrics["final/psnr"] - metrics["final/bicubic_psnr"])
    assert metrics["final/reconstruction_error"] == client.get_metric_history(run_id, "test/reconstruction_error")[-1].value
    for key in ("final/ssim", "final/bicubic_ssim", "run/train_seconds", "run/test_seconds",
                "run/iterations_per_second", "run/learning_rate_drops"):
        assert key in metrics, key

    config = load_config(overrides=TINY + GRADUAL + ["gt_test_every=20"])
    assert set(config.flat()) <= set(params)
    assert params["model.depth"] == "3" and params["scale.scale_factors"] == "[[1.5, 1.5], [2.0, 2.0]]"
    assert params["image.sha256"] == hashlib.sha256(lr.read_bytes()).hexdigest()
    assert (params["image.width"], params["image.height"], params["gt.name"]) == ("48", "48", "hr.png")
    for key in ("precision", "device", "scale_steps", "version.tensorflow", "version.keras", "version.zssr_tf"):
        assert params[key], key
    assert run.data.tags["image"] == "lr" and run.data.tags["scale"] == "x2" and run.data.tags["has_gt"] == "true"
    assert params["backend"] == run.data.tags["backend"] == "tensorflow"

    assert artifact_paths(client, run_id) >= {
        "config.yaml", "inputs/image_lr.png", "inputs/gt_hr.png", "outputs/lr_x2_zssr.png", "outputs/lr_x2_bicubic.png",
        "outputs/step_0_x1.5.png", "figures/training_curves.png", "figures/crops.png",
        "model/step_0.keras", "model/step_1.keras"}

    # Re-applying the logged networks reproduces the trained output exactly, without training.
    assert main(["predict", "--run-id", run_id, str(lr), "--out", str(tmp_path / "again")]) == 0
    again = cv2.imread(str(tmp_path / "again/lr_x2_zssr.png"))
    np.testing.assert_array_equal(again, cv2.imread(str(tmp_path / "out/lr_x2_zssr.png")))



def test_predict_uses_the_self_ensemble_transforms_training_used(images, tmp_path, capsys):
    from mlflow.artifacts import download_artifacts

    from zssr_tf.augment import kernel_symmetries
    from zssr_tf.kernels import align_kernel, gaussian_kernel

    lr, _ = images
    # Symmetric under half turns and mirrors; the x2 re-centring shifts its taps, after which only
    # one mirror is left: recomputed from the saved (re-centred) kernel, the ensemble would differ.
    kernel = gaussian_kernel(5, 0.6, 1.5)
    assert kernel_symmetries(kernel) == (0, 2, 4, 6)
    assert kernel_symmetries(align_kernel(kernel, (2, 2), "block_centre")) == (0, 6)
    np.save(tmp_path / "k.npy", kernel)
    assert main(["train", str(lr), "--out", str(tmp_path / "out"), *TINY, "output_flip=false",
                 "--kernel", str(tmp_path / "k.npy")]) == 0
    assert "self-ensemble [0, 2, 4, 6]" in capsys.readouterr().out
    run_id = only_run(store()).info.run_id
    saved = download_artifacts(run_id=run_id, artifact_path="model/step_0_kernel_symmetries.npy", dst_path=str(tmp_path))
    assert np.load(saved).tolist() == [0, 2, 4, 6]
    assert main(["predict", "--run-id", run_id, str(lr), "--out", str(tmp_path / "again")]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "again/lr_x2_zssr.png")),
                                  cv2.imread(str(tmp_path / "out/lr_x2_zssr.png")))


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt(), "KILLED"), (RuntimeError("disk full"), "FAILED")])
def test_interrupted_run_ends_with_its_status_and_keeps_its_curve(images, tmp_path, error, status):
    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 24:
                raise error

    lr, _ = images
    config = load_config(overrides=TINY)
    image, alpha, info = read_image(lr)
    with pytest.raises(type(error)):
        with tracking.tracked_run(config, info, tmp_path / "out") as run:
            super_resolve_file(config, image, alpha, info, tmp_path / "out", callbacks=[run.callback, Stop()])
    client = store()
    logged = client.get_run(run.run_id)
    assert logged.info.status == status == run.status
    assert steps_of(client, run.run_id, "train/loss") == list(range(25))
    assert artifact_paths(client, run.run_id) >= {"config.yaml", "inputs/image_lr.png", "figures/training_curves.png"}
    assert not any(key.startswith("system/") for key in logged.data.metrics)  # system_metrics=false
    assert logged.outputs is None or not logged.outputs.model_outputs  # no model for an unfinished run
    assert (run.folder / "figures/training_curves.png").is_file()
    assert type(error).__name__ in logged.data.tags["error"]
    if status == "FAILED":
        assert "error.txt" in artifact_paths(client, run.run_id)
        assert "disk full" in (run.folder / "error.txt").read_text()


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_and_keeps_its_outputs(images, tmp_path):
    # `timeout`, batch schedulers and cancelled CI jobs stop a run with SIGTERM, not Ctrl-C.
    lr, _ = images
    command = [sys.executable, "-m", "zssr_tf.cli", "train", str(lr), "--out", str(tmp_path / "out"), *TINY,
               "train.max_iters=100000", "progress_every=1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:  # training has started once a progress line prints
            if re.search(r"iter\s+5\b", line):
                break
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)  # a repeated SIGTERM must not cut the cleanup short
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "zssr: terminated (SIGTERM)" in stderr
    run = only_run(store())
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["error"]
    assert len(store().get_metric_history(run.info.run_id, "train/loss")) >= 5
    assert (tmp_path / "out/mlflow_runs" / run.info.run_id / "figures/training_curves.png").is_file()


def test_unreachable_server_fails_before_training(images, tmp_path, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    assert main(["train", str(images[0]), "--out", str(tmp_path / "out"), f"tracking_uri={uri}", *TINY]) == 2
    assert uri in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_input_errors_found_by_the_trainer_leave_no_run(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((4, 4, 3), np.uint8))
    assert main(["train", str(tmp_path / "tiny.png"), "--out", str(tmp_path / "out"), *TINY]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the short-run warning TINY causes
    assert error.startswith("zssr: error: the image ") and "tiny.png is 4x4 pixels" in error
    assert not (tmp_path / "mlflow.db").exists()


def test_metrics_spill_to_a_file_when_the_store_fails_and_upload_later(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = MlflowClient(f"http://127.0.0.1:{free_port()}")
    client = store()
    run_id = client.create_run(client.create_experiment("spill")).info.run_id
    spill = tmp_path / "unsent.jsonl"
    buffer = tracking.MetricBuffer(dead, run_id, spill, retry_delays_s=(0.01,))
    for i in range(2500):
        buffer.add("loss", 1.0 / (i + 1), i)
    with pytest.warns(UserWarning, match=re.escape(f"zssr upload-metrics {spill}")):
        buffer.close()
    assert (buffer.sent, buffer.spilled) == (0, 2500)
    assert len(spill.read_text().splitlines()) == 2500

    for _ in range(2):  # a second upload adds no duplicates
        assert main(["upload-metrics", str(spill)]) == 0
    assert steps_of(client, run_id, "loss") == list(range(2500))
    assert "sent 2500 metric values" in capsys.readouterr().out


@pytest.mark.slow
def test_two_processes_on_one_fresh_sqlite_store_lose_no_metric(images, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from zssr_tf import tracking
        from zssr_tf.config import load_config
        from zssr_tf.image_io import read_image
        config = load_config(overrides={TINY!r})
        info = read_image({str(images[0])!r})[2]
        Path(sys.argv[1] + ".ready").touch()
        while not Path({str(tmp_path / "go")!r}).exists():
            time.sleep(0.01)
        with tracking.tracked_run(config, info, sys.argv[1]) as run:
            run.start()  # as the first scale step does
            for i in range(3000):
                run.callback.on_train_batch_end(i, {{"loss": 1.0 / (i + 1), "learning_rate": 1e-3, "iteration": i}})
        print(run.run_id)
        """)
    names = [str(tmp_path / f"worker{k}") for k in range(2)]
    workers = [subprocess.Popen([sys.executable, "-c", script, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for name in names]
    deadline = time.monotonic() + 120
    while not all(os.path.exists(n + ".ready") for n in names):  # start both at once: the race is at creation
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.05)
    (tmp_path / "go").touch()
    run_ids = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err[-2000:]
        run_ids.append(out.split()[-1])
    client = store()
    for run_id in run_ids:
        assert client.get_run(run_id).info.status == "FINISHED"
        assert steps_of(client, run_id, "train/loss") == list(range(3000))
        assert steps_of(client, run_id, "train/learning_rate") == list(range(3000))


def test_log_params_batches_and_truncates():
    client = store()
    run_id = client.create_run(client.create_experiment("params")).info.run_id
    params = {f"p{i}": i for i in range(250)} | {"long": "x" * 7000}
    tracking.log_params(client, run_id, params)
    logged = client.get_run(run_id).data.params
    assert len(logged) == 251 and logged["p249"] == "249" and len(logged["long"]) == 6000


def test_logger_failure_warns_and_never_stops_training(tmp_path):
    class BrokenBuffer:
        def add(self, *args):
            raise ConnectionError("store gone")

    run = SimpleNamespace(buffer=BrokenBuffer(), folder=tmp_path, config=load_config())
    logger = tracking.MLflowLogger(run)
    with pytest.warns(UserWarning, match="store gone"):
        for i in range(3):
            logger.on_train_batch_end(i, {"loss": 0.1, "learning_rate": 1e-3, "iteration": i})


@pytest.mark.slow
def test_tracking_imports_neither_the_trainer_nor_the_pipeline():
    script = ("import sys\nimport zssr_tf.tracking, zssr_tf.tracking.model, zssr_tf.tracking.kernel_estimation\n"
              "print(sorted(m for m in ('zssr_tf.trainer', 'zssr_tf.pipeline', 'zssr_tf.checks') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "[]\n"


@pytest.mark.slow
def test_a_real_server_receives_the_run_and_a_lost_server_loses_nothing(images, tmp_path, monkeypatch):
    """Starts `mlflow server` on a free loopback port (20-45 s to come up), trains against it,
    checks the run through the REST API, then kills the server mid-run."""
    lr, hr = images
    port, db = free_port(), tmp_path / "server.db"
    uri = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--artifacts-destination", str(tmp_path / "server_artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_health(server, uri, tmp_path / "server.log")
        assert main(["train", str(lr), "--gt", str(hr), "--out", str(tmp_path / "out"), f"tracking_uri={uri}",
                     *TINY]) == 0
        experiment = _rest(uri, "experiments/get-by-name?experiment_name=zssr")["experiment"]
        runs = _rest(uri, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        assert len(runs) == 1 and runs[0]["info"]["status"] == "FINISHED"
        run_id = runs[0]["info"]["run_id"]
        history = _rest(uri, f"metrics/get-history?run_id={run_id}&metric_key=train%2Floss&max_results=1000")["metrics"]
        assert sorted(m["step"] for m in history) == list(range(30))
        files = _rest(uri, f"artifacts/list?run_id={run_id}&path=model")["files"]
        assert [f["path"] for f in files] == ["model/step_0.keras"]

        # Lose the server at iteration 12, after a first batch of values arrived: training goes
        # on, the rest of the curve goes to a file.
        class KillServer(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 12:
                    deadline = time.monotonic() + 30
                    while not run.buffer.sent and time.monotonic() < deadline:
                        time.sleep(0.05)
                    os.killpg(server.pid, signal.SIGTERM)
                    server.wait(timeout=60)

        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setattr(tracking.buffer, "RETRY_DELAYS_S", (0.1,))
        monkeypatch.setattr(tracking.buffer, "FLUSH_AT_VALUES", 10)
        config = load_config(overrides=TINY + [f"tracking_uri={uri}", "experiment_name=lost"])
        image, alpha, info = read_image(lr)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with tracking.tracked_run(config, info, tmp_path / "out2") as run:
                outcome = super_resolve_file(config, image, alpha, info, tmp_path / "out2",
                                             callbacks=[run.callback, KillServer()])
                run.log_outcome(outcome)
        assert outcome.sr_path.is_file() and outcome.result.iterations == 30
        assert any("zssr upload-metrics" in str(w.message) for w in caught)
        spilled = [json.loads(line) for line in run.buffer.spill_path.read_text().splitlines()]
        stored = MlflowClient(f"sqlite:///{db}")  # the dead server's own store
        sent_steps = set(steps_of(stored, run.run_id, "train/loss"))
        spilled_steps = {r["step"] for r in spilled if r["key"] == "train/loss"}
        assert sent_steps and spilled_steps and sent_steps | spilled_steps == set(range(30))
        tracking.upload_metrics(run.buffer.spill_path, f"sqlite:///{db}")
        assert steps_of(stored, run.run_id, "train/loss") == list(range(30))
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()


def _wait_for_health(server: subprocess.Popen, uri: str, log_path, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"mlflow server exited: {log_path.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer /health within {deadline_s} s: {log_path.read_text()[-2000:]}")


def _rest(uri: str, endpoint: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/{endpoint}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_figure_helpers_find_drops_and_detail():
    from zssr_tf.tracking.plots import detail_window, learning_rate_drops

    # A drop is counted at the last iteration of the old rate; a reset at a new scale step is not one.
    rates = [(0, 1e-3), (1, 1e-3), (2, 1e-4), (3, 1e-3), (4, 1e-4)]
    assert learning_rate_drops(rates) == [1, 3]
    image = np.full((64, 64, 3), 0.5, np.float32)
    image[40:56, 8:24] = np.random.default_rng(0).random((16, 16, 3))
    assert detail_window(image, 16) == (40, 8)
