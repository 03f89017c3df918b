"""What a run is in MLflow's own terms: distinct input artifacts, names and descriptions, datasets,
system metrics, the pyfunc model and its registration, autologging, the quiet console."""

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from zssr_tf.cli import main, quiet_tensorflow
from zssr_tf.config import load_config
from zssr_tf.image_io import read_image
from zssr_tf.inference.trained import TrainedZSSR

TINY = ["model.depth=3", "model.width=8", "train.max_iters=20", "run_test_every=10", "crop_size=32",
        "back_projection_iters=[2]", "precision=float32", "min_iters=5", "learning_rate_policy_check_every=5",
        "learning_rate_slope_range=30"]
REPO = Path(__file__).resolve().parents[1]


def store() -> MlflowClient:
    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


def only_run(client: MlflowClient):
    runs = client.search_runs([client.get_experiment_by_name("zssr").experiment_id])
    assert len(runs) == 1
    return runs[0]


@pytest.fixture
def small_lr(shared_data_dir, tmp_path):
    """A 40x40 crop of Set5 bird's x2 input."""
    path = tmp_path / "bird.png"
    cv2.imwrite(str(path), cv2.imread(str(shared_data_dir / "set5/lr_x2/bird.png"))[30:70, 30:70])
    return path


@pytest.mark.slow
def test_input_and_ground_truth_of_one_name_are_both_logged_writable_with_name_datasets_and_system_metrics(
        shared_data_dir, tmp_path, monkeypatch, capsys):
    lr, hr = shared_data_dir / "set5/lr_x2/bird.png", shared_data_dir / "set5/hr/bird.png"  # read-only files
    # Sample every 50 ms: MLflow logs a sample only after a whole interval has passed, and this run lasts about a second.
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.05")
    assert main(["train", str(lr), "--gt", str(hr), "--out", "out", *TINY, "noise_std=0.01", "progress_every=10",
                 "log_model=false"]) == 0
    out = capsys.readouterr().out
    client = store()
    run = only_run(client)
    run_id = run.info.run_id

    # The input and the ground truth share the file name bird.png: both are kept, each intact.
    downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="inputs", dst_path="dl"))
    assert sorted(p.name for p in downloaded.iterdir()) == ["gt_bird.png", "image_bird.png"]
    for name, source in (("image_bird.png", lr), ("gt_bird.png", hr)):
        assert hashlib.sha256((downloaded / name).read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    local_copies = list(Path(run.info.artifact_uri.removeprefix("file://")).glob("inputs/*.png"))
    assert len(local_copies) == 2 and all(p.stat().st_mode & stat.S_IWUSR for p in local_copies)

    # The run's name says what differs; the description what was run.
    assert run.info.run_name == ("bird_x2 model.depth=3 model.width=8 train.max_iters=20 run_test_every=10 "
                                 "crop_size=32 back_projection_iters=[2] precision=float32 min_iters=5 "
                                 "learning_rate_policy_check_every=5 learning_rate_slope_range=30 noise_std=0.01")  # progress_every, log_model: run.*
    note = run.data.tags["mlflow.note.content"]
    assert "`bird.png` (144x144, 3 channel(s), 8-bit)" in note and "Ground truth: `bird.png`" in note
    assert "noise_std=0.01" in note
    assert "Network: random initial weights; learning rate: cosine decay from 0.001 over 20 iterations." in note

    # Input and ground truth as MLflow datasets with their contexts.
    contexts = sorted(dict((t.key, t.value) for t in d.tags)["mlflow.data.context"] for d in run.inputs.dataset_inputs)
    assert contexts == ["evaluation", "training"]
    assert {d.dataset.digest for d in run.inputs.dataset_inputs} == {
        hashlib.sha256(p.read_bytes()).hexdigest()[:8] for p in (lr, hr)}

    # One scale step: no constant series.
    assert "train/scale_step" not in run.data.metrics and not any(k.startswith("step/") for k in run.data.metrics)
    assert any(key.startswith("system/cpu") for key in run.data.metrics)
    assert any(key.startswith("system/system_memory") for key in run.data.metrics)

    # The console: progress with the latest PSNR, elapsed time and ETA; the exact UI command.
    progress = [line for line in out.splitlines() if " iter " in line]
    assert len(progress) == 2 and all("PSNR" in line and "elapsed" in line for line in progress)
    assert "ETA <= " in progress[1]
    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert f"mlflow ui --backend-store-uri {uri} --port 5000, then open http://127.0.0.1:5000/#/experiments/" in out
    assert "make ui" not in out

    # The address opens the UI in its "Model training" mode; the experiment is of that kind.
    assert f"/runs/{run_id}?workflowType=machine_learning" in out
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_logged_model_predicts_as_zssr_predict_and_registers(small_lr, tmp_path, capsys):
    assert main(["train", str(small_lr), "--out", "out", *TINY, "progress_every=0", "system_metrics=false",
                 "register_model=tiny_zssr", "scale_factors=[[1.5,1.5],[2.0,2.0]]"]) == 0
    assert "registered as models:/tiny_zssr/1" in capsys.readouterr().out
    client = store()
    run = only_run(client)
    version = client.get_model_version("tiny_zssr", "1")
    assert version.run_id == run.info.run_id and version.status == "READY"
    # The logged model is in its run's experiment (its Models tab), not in MLflow's "Default" one.
    (logged,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert logged.experiment_id == run.info.experiment_id != "0"
    assert logged.source_run_id == run.info.run_id and logged.name == "zssr" and str(logged.status) == "READY"
    assert logged.params["model.depth"] == "3"

    lr = read_image(small_lr)[0]
    model = mlflow.pyfunc.load_model("models:/tiny_zssr/1")
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, -1, 3)
    assert model.metadata.saved_input_example_info is not None
    assert model.model_config["keras_backend"] == "tensorflow"  # the backend it loads on
    sr = model.predict(lr)
    assert sr.shape == (80, 80, 3) and sr.dtype == np.float32

    # Bit for bit the final test of `zssr predict --run-id` (the run's own network files) ...
    config = load_config(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="config.yaml",
                                                             dst_path="dl"))
    model_dir = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model",
                                                         dst_path="dl"))
    np.testing.assert_array_equal(sr, TrainedZSSR.load(model_dir, config).super_resolve(lr))
    # ... and the files both forms of `zssr predict` write hold the same pixels.
    assert main(["predict", "--run-id", run.info.run_id, str(small_lr), "--out", "by_run"]) == 0
    assert main(["predict", "--model", "models:/tiny_zssr/1", str(small_lr), "--out", "by_model"]) == 0
    by_run, by_model = cv2.imread("by_run/bird_x2_zssr.png"), cv2.imread("by_model/bird_x2_zssr.png")
    np.testing.assert_array_equal(by_run, by_model)
    np.testing.assert_array_equal(by_model[..., ::-1], np.round(np.clip(sr, 0, 1) * 255).astype(np.uint8))

    assert main(["predict", "--model", "models:/tiny_zssr/7", str(small_lr)]) == 2
    assert "cannot load the MLflow model 'models:/tiny_zssr/7'" in capsys.readouterr().err


@pytest.mark.slow
def test_active_autolog_is_paused_around_zssr_and_leaves_one_run_in_bounded_memory(small_lr, tmp_path):
    script = textwrap.dedent(f"""
        import resource, warnings
        import mlflow
        mlflow.tensorflow.autolog()
        from mlflow.utils.autologging_utils import autologging_is_disabled
        from pathlib import Path
        from zssr_tf.config import load_config
        from zssr_tf.image_io import read_image
        from zssr_tf.pipeline import tracked_super_resolve

        config = load_config(overrides={TINY + ["progress_every=0", "system_metrics=false"]!r})
        image, alpha, info = read_image({str(small_lr)!r})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracked_super_resolve(config, image, alpha, info, Path("out"))
        print("warnings", sum("autologging" in str(w.message) and "paused" in str(w.message) for w in caught))
        print("runs", len(mlflow.search_runs(search_all_experiments=True)))
        print("autolog on", not autologging_is_disabled("tensorflow"))
        print("peak MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = dict(line.rsplit(" ", 1) for line in done.stdout.splitlines() if line[:1].isalpha() and " " in line)
    assert report["runs"] == "1" and report["autolog on"] == "True"
    assert int(report["warnings"]) >= 1
    # TensorFlow and MLflow loaded: about 1.1 GB on a quiet machine, once 3.1 GB on a busy one.
    assert int(report["peak MB"]) < 4096


@pytest.mark.slow
def test_console_is_quiet_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    # Loads TensorFlow and MLflow, then fails on the missing image: one line on stderr, nothing else.
    done = subprocess.run([sys.executable, "-m", "zssr_tf.cli", "predict", "--run-id", "0" * 32, "missing.png"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("zssr: error: ")
    assert "missing.png" in done.stderr and done.stdout == ""

    quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # --verbose shows TensorFlow's own log
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert quiet_tensorflow(verbose=False) is False and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # the user's
