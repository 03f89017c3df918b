"""Any Keras backend: the gradient module (zssr_tf.backend), the PyDataset pairs, and short runs
of kernel estimation (KernelGAN, FKP), ZSRGAN's step and the ZSSR network's fit on JAX (and,
where installed, PyTorch) in a subprocess (tests/backend_checks.py): the backend is fixed when
Keras is imported, and these tests run on TensorFlow."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pytest

from zssr_tf import backend
from zssr_tf.augment import FatherSampler
from zssr_tf.config import AugmentConfig
from zssr_tf.data import PairDataset, PairMaker, make_dataset, training_dataset, with_loss_maps
from zssr_tf.errors import ZSSRError

REPO = Path(__file__).resolve().parents[1]
ZSRGAN_LOGS = {"loss", "l1_loss", "adversarial_loss", "discriminator_loss", "discriminator_real",
               "discriminator_fake", "discriminator_learning_rate"}


def run_checks(name: str) -> dict:
    """tests/backend_checks.py's report on Keras backend `name`, with TensorFlow unimportable."""
    env = {**os.environ, "KERAS_BACKEND": name,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "backend_checks.py"), "--no-tensorflow"], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def on_jax() -> dict:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (pip install 'zssr-tf[jax]')")
    return run_checks("jax")


@pytest.fixture(scope="module")
def on_torch() -> dict:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed")
    return run_checks("torch")


def _assert_kernel(report: dict, smallest: int, iterations: int) -> None:
    side = report["shape"][0]
    assert report["shape"] == [side, side] and side % 2 == 1 and side >= smallest
    assert report["finite"] and report["sum"] == pytest.approx(1.0, abs=1e-3)
    assert 0.25 <= report["raw_sum"] <= 4.0  # not collapsed (estimator.RAW_SUM_RANGE)
    assert report["iterations"] == iterations


def test_jax_runs_every_step_without_tensorflow(on_jax):
    # backend_checks.py ran with `import tensorflow` failing: nothing on these paths needs it.
    assert on_jax["backend"] == "jax" and not on_jax["tensorflow_loaded"]
    assert not [name for name, report in on_jax.items() if isinstance(report, dict) and "error" in report]


def test_value_and_grad_and_compiled_steps_on_jax(on_jax):
    report = on_jax["gradients"]
    assert report["eager"] == {"value": 14.0, "aux": 3.0, "grads": [2.0, 4.0, 6.0], "state": 6.0}
    # Compiled: the step's assignments persist from one call to the next (w halves each time).
    assert report["compiled"] == [[[14.0], [3.0], [2.0, 4.0, 6.0]], [[3.5], [1.5], [1.0, 2.0, 3.0]]]
    assert report["weights"] == [0.25, 0.5, 0.75] and report["state"] == 3.0


def test_kernelgan_estimates_a_kernel_on_jax(on_jax):
    report = on_jax["kernelgan"]
    _assert_kernel(report, 13, 20)
    # The compiled step carries the networks from one iteration to the next: the kernel moves.
    assert len(set(report["kernel_sums"])) == 20 and all(map(math.isfinite, report["kernel_sums"]))


def test_fkp_estimates_a_kernel_on_jax(on_jax):
    _assert_kernel(on_jax["fkp"], 11, 10)


def test_zsrgan_step_trains_both_networks_in_jax_fit(on_jax):
    report = on_jax["zsrgan"]
    assert set(report["logs"]) == ZSRGAN_LOGS and all(map(math.isfinite, report["logs"].values()))
    assert report["logs"]["discriminator_learning_rate"] == pytest.approx(1e-4)
    # The discriminator's optimizer is not fit's: its state must still move from step to step.
    assert report["g_iterations"] == report["d_iterations"] == 3
    assert report["changed"] == [True, True]


def test_zssr_network_fits_on_pair_dataset_on_jax(on_jax):
    report = on_jax["core_fit"]
    assert report["dataset"] == "PairDataset" and report["iterations"] == 4 and report["changed"]
    assert all(map(math.isfinite, report["loss"]))


def test_auto_precision_on_a_jax_cpu_is_float32(on_jax):
    if on_jax["gpu"] is not None:
        pytest.skip(f"JAX sees a GPU ({on_jax['gpu'][0]})")
    assert on_jax["auto_precision"] == "float32"  # CPU bf16 is taken on TensorFlow only


def test_torch_trains_zsrgan_and_the_network_and_names_the_backends_for_kernel_estimation(on_torch):
    assert on_torch["backend"] == "torch" and not on_torch["tensorflow_loaded"]
    assert on_torch["gradients"]["eager"] == {"value": 14.0, "aux": 3.0, "grads": [2.0, 4.0, 6.0], "state": 6.0}
    assert on_torch["gradients"]["weights"] == [0.25, 0.5, 0.75]
    report = on_torch["zsrgan"]
    assert set(report["logs"]) == ZSRGAN_LOGS and all(map(math.isfinite, report["logs"].values()))
    assert report["g_iterations"] == report["d_iterations"] == 3 and report["changed"] == [True, True]
    assert on_torch["core_fit"]["iterations"] == 4 and all(map(math.isfinite, on_torch["core_fit"]["loss"]))
    assert on_torch["zssr_run"]["iterations"] == 12 and on_torch["zssr_run"]["finite"]  # the whole of ZSSR.run
    for name in ("kernelgan", "fkp"):  # spectral normalisation's in-place kernel: see kernel_estimation/networks.py
        assert on_torch[name]["error"].startswith("kernel estimation runs on the tensorflow and jax Keras backends, "
                                                  "not on torch")


def test_value_and_grad_and_compiled_steps_on_tensorflow():
    weights = keras.Variable(np.array([1.0, 2.0, 3.0], np.float32))
    total = keras.Variable(np.float32(0.0), trainable=False)

    def loss():
        total.assign(keras.ops.sum(weights))
        return keras.ops.sum(weights ** 2), None

    (value, _), grads = backend.value_and_grad(loss, [weights], [total])
    assert float(value) == 14.0 and float(total) == 6.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(grads[0]), [2.0, 4.0, 6.0])

    def step():
        _, grads = backend.value_and_grad(loss, [weights], [total])
        weights.assign(weights - 0.25 * grads[0])

    compiled = backend.compile_step(step, [weights, total])
    compiled()
    compiled()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(weights), [0.25, 0.5, 0.75])
    backend.check_supported("anything")  # TensorFlow runs every step
    with pytest.raises(ZSSRError, match="^kernel estimation runs on the jax and torch Keras backends, not on "
                                        "tensorflow: set KERAS_BACKEND to one of them$"):
        backend.check_supported("kernel estimation", ("jax", "torch"))


def test_select_backend(monkeypatch):
    with pytest.raises(ZSSRError, match="unknown Keras backend 'mxnet': use one of tensorflow, jax, torch"):
        backend.select_backend("mxnet")
    # Keras is loaded here (with TensorFlow): the backend can no longer change.
    with pytest.raises(ZSSRError, match="already loaded with the tensorflow backend, so jax cannot be chosen now"):
        backend.select_backend("jax")
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.select_backend(None) == "tensorflow" == backend.backend_name()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(2)
    return rng.random((40, 48, 3)).astype(np.float32)


@pytest.mark.parametrize("dihedral_batch", [False, True])
@pytest.mark.parametrize("loss_map", [False, True])
def test_pair_dataset_gives_the_tf_data_pairs(image, dihedral_batch, loss_map):
    sources, scale = ((image,), 0.0) if not loss_map else with_loss_maps((image,))
    maker = PairMaker(sources=sources, base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=32)),
                      scale_factor=(2.0, 2.0),
                      kernel="cubic", noise_std=0.01, upscale_method="cubic", seed=7, dihedral_batch=dihedral_batch,
                      loss_map_scale=scale)
    batch = 8 if dihedral_batch else 1
    for start in (0, 5):
        pairs = PairDataset(maker, start_index=start, workers=2)
        assert pairs.num_batches is None  # endless, as the tf.data pipeline
        for index, expected in enumerate(make_dataset(maker, channels=3, start_index=start).take(3)):
            got = pairs[index]
            assert len(got) == len(expected) == (3 if loss_map else 2)
            for array, wanted in zip(got, expected):
                assert array.dtype == np.float32 and array.shape[0] == batch
                np.testing.assert_array_equal(array, wanted.numpy())
    assert not np.array_equal(PairDataset(maker)[0][1], PairDataset(maker)[1][1])  # each index its own father


def test_training_dataset_is_tf_data_on_tensorflow(image):
    import tensorflow as tf

    maker = PairMaker(sources=(image,), base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=32)),
                      scale_factor=(2.0, 2.0), kernel="cubic", noise_std=0.0, upscale_method="cubic", seed=7)
    assert isinstance(training_dataset(maker, channels=3), tf.data.Dataset)


def test_zssr_runs_end_to_end_on_jax_without_tensorflow(on_jax):
    report = on_jax["zssr_run"]
    assert report["shape"] == [72, 72, 3] and report["finite"] and 0 <= report["range"][0] <= report["range"][1] <= 1
    assert report["iterations"] == 12 and report["tests"] == 3
    assert report["psnr"] > report["bicubic_psnr"] - 1.0  # 12 iterations of a tiny net: close to bicubic, not broken


def _final_test_on(name: str, network: Path, image: Path, out: Path, hide: Sequence[str] = ()) -> np.ndarray:
    env = {**os.environ, "KERAS_BACKEND": name,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "backend_checks.py"), *hide, "--final-test",
                           str(network), str(image), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return np.load(out)


@pytest.mark.slow
def test_a_trained_networks_final_test_is_the_same_on_tensorflow_and_jax(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (pip install 'zssr-tf[jax]')")
    from zssr_tf.config import load_config
    from zssr_tf.trainer import ZSSR

    rng = np.random.default_rng(3)
    lr = np.clip(rng.random((30, 34, 3)) * 0.2 + np.linspace(0, 0.8, 34)[None, :, None], 0, 1).astype(np.float32)
    config = load_config(None, ["depth=3", "width=8", "init_weights=none", "max_iters=10", "crop_size=24",
                                "progress_every=0"])
    network = ZSSR(config, verbose=False).run(lr).trained.networks[0]
    network.save(tmp_path / "net.keras")
    np.save(tmp_path / "lr.npy", lr)
    on_tensorflow = _final_test_on("tensorflow", tmp_path / "net.keras", tmp_path / "lr.npy", tmp_path / "tf.npy")
    on_jax = _final_test_on("jax", tmp_path / "net.keras", tmp_path / "lr.npy", tmp_path / "jax.npy",
                            hide=["--no-tensorflow"])
    assert on_tensorflow.shape == on_jax.shape == (60, 68, 3)
    assert not np.allclose(on_tensorflow, np.clip(on_tensorflow.mean(), 0, 1))  # an image, not a constant
    np.testing.assert_allclose(on_jax, on_tensorflow, atol=1e-5)


def _zssr_command(args: Sequence[str], hidden: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    """`zssr ARGS` in a subprocess in which importing each module of `hidden` fails."""
    script = ("import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in hidden)
              + "from zssr_tf.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


TINY_RUN = ["depth=3", "width=8", "init_weights=none", "max_iters=8", "crop_size=32", "progress_every=0"]


@pytest.mark.slow
@pytest.mark.parametrize("name, hidden", [("tensorflow", ["mlflow"]), ("jax", ["mlflow", "tensorflow"])])
def test_train_without_tracking_needs_no_mlflow(tmp_path, name, hidden):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    lr = REPO / "tests" / "data" / "set5" / "lr_x2" / "bird.png"
    done = _zssr_command(["train", str(lr), "--gt", str(REPO / "tests" / "data" / "set5" / "hr" / "bird.png"),
                          "--backend", name, "--no-tracking", "--out", "out", *TINY_RUN], hidden, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Keras backend: {name} " in done.stdout and "MLflow" not in done.stdout
    assert "PSNR-Y  zssr" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bird_x2_bicubic.png", "bird_x2_zssr.png"]
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_a_missing_backend_library_is_one_error_naming_the_package(tmp_path):
    lr = REPO / "tests" / "data" / "set5" / "lr_x2" / "bird.png"
    done = _zssr_command(["train", str(lr), "--backend", "jax", "--no-tracking", "--out", "out", *TINY_RUN],
                         ["jax"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "zssr: error: the jax Keras backend needs the jax package, which cannot be imported (import of jax halted; "
        "None in sys.modules): pip install 'zssr-tf[jax]'"]
    assert not (tmp_path / "out").exists()


def test_kernel_estimation_on_torch_is_refused_before_any_work():
    from zssr_tf.checks import check_inputs
    from zssr_tf.config import load_config

    config = load_config("blind", ["backend=torch"])
    with pytest.raises(ZSSRError, match=r"^kernel estimation runs on the tensorflow and jax Keras backends, not on "
                                        r"torch: use --backend \(run.backend\) tensorflow or jax, or give the kernel"):
        check_inputs(config, np.zeros((100, 100, 3), np.float32))


def test_unknown_backend_setting_is_refused():
    from zssr_tf.config import load_config

    with pytest.raises(ZSSRError, match="^run.backend is 'mxnet'; use one of tensorflow, jax, torch$"):
        load_config(None, ["backend=mxnet"])
