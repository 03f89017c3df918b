"""Blind SR end to end: `zssr kernel`, `zssr train --config blind`, the gradient loss map."""

import io

import cv2
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from zssr_tf.cli import main
from zssr_tf.config import AugmentConfig, load_config
from zssr_tf.augment import FatherSampler
from zssr_tf.data import PairMaker, gradient_loss_map, make_dataset, with_loss_maps
from zssr_tf.degradation import degrade
from zssr_tf.image_io import read_image, write_image
from zssr_tf.kernel_estimation import KernelEstimationHistory
from zssr_tf.kernel_estimation.estimator import RunRecord, VALUE_NAMES
from zssr_tf.kernel_estimation.postprocess import post_process
from zssr_tf.kernels import bicubic_kernel, gaussian_kernel, kernel_distance, load_kernel
from zssr_tf.pipeline import estimation_progress

# A constant learning rate (the step schedule's first halving is at 500): the policy could not act
# in 3 iterations, and with it the short-run warning would precede every message under test.
QUICK = ["init_weights=none", "model.depth=3", "model.width=8", "max_iters=3", "learning_rate_schedule=step", "run_test_every=1",
         "learning_rate_slope_range=3", "crop_size=16", "back_projection_iters=[1]", "progress_every=0"]
TRUE_KERNEL = gaussian_kernel(13, 2.5, 0.8, 0.6)  # strongly anisotropic, far from bicubic


def _blurred_lr(shared_data_dir, tmp_path, size=192):
    """A (size/2)^2 LR image: a crop of Set5 butterfly degraded with TRUE_KERNEL (block centre)."""
    hr, _, info = read_image(shared_data_dir / "set5/hr/butterfly.png")
    lr = degrade(hr[:size, :size], TRUE_KERNEL, 2, "block_centre")
    path = tmp_path / "blurred.png"
    write_image(path, lr, info)
    return path


def test_estimation_progress_names_the_run_and_its_own_iteration(monkeypatch):
    # The estimator counts iterations on across runs (run r's first is r * estimation_iters).
    # A fake clock: iteration i is reported at second i, so every iteration after the first takes 1 s.
    ticks = iter(range(100))
    monkeypatch.setattr("zssr_tf.pipeline.time.perf_counter", lambda: float(next(ticks)))
    lines = io.StringIO()
    report = estimation_progress(every=2, iters_per_run=5, runs=2, stream=lines)
    for iteration in range(10):
        report(iteration, {"g_loss": 0.5, "d_loss": 0.25, "kernel_sum": 1.0})
    printed = lines.getvalue().splitlines()
    heads = [line.split("  G ")[0] for line in printed]
    assert heads == [f"[kernel estimation] run {r}/2  iter {i:5d}/5" for r in (1, 2) for i in (0, 2, 4)]
    # No ETA from the first iteration alone (it holds the tracing); then 1 s for each one left.
    assert printed[0].endswith("kernel sum 1.000  elapsed 00:00")
    timings = [line.split("kernel sum 1.000  ")[1] for line in printed[1:]]
    assert timings == [f"elapsed 00:0{i}  ETA 00:0{9 - i}" for i in (2, 4, 5, 7, 9)]
    one_run = io.StringIO()
    estimation_progress(every=2, iters_per_run=5, stream=one_run)(4, {"g_loss": 0.5, "d_loss": 0.25, "kernel_sum": 1.0})
    assert one_run.getvalue().startswith("[kernel estimation] iter     4/5  G 0.5000  D 0.2500  kernel sum 1.000  elapsed")


def test_kernel_print_config_shows_the_resolved_estimation_settings_without_an_image(capsys):
    assert main(["kernel", "--print-config", "method=fkp", "seed=4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["run"] == {"seed": 4}
    assert printed["kernel_estimation"]["estimation_iters"] == 500  # "auto" for fkp
    assert printed["kernel_estimation"]["estimate_variance_scale"] == 0.667
    assert printed["kernel_estimation"]["kernel"] == "estimate"


@pytest.mark.slow
def test_kernel_command_recovers_a_known_kernel_roughly(shared_data_dir, tmp_path, capsys):
    # A short estimation (300 of 3000 iterations): the estimate is already much closer to the true
    # kernel than the bicubic kernel is; the full comparison is experiments/bench_blind.py's.
    image = _blurred_lr(shared_data_dir, tmp_path)
    code = main(["kernel", str(image), "--scale", "4", "--out", str(tmp_path / "k"), "estimation_iters=300",
                 "estimation_runs=1", "estimation_shave=0", "progress_every=100"])
    printed = capsys.readouterr()
    out = printed.out
    assert code == 0, out
    assert "[kernel estimation] iter   100/300" in out and "estimated the kernel of" in out
    # 300 iterations end while the bicubic weight still decays: said, with the fix.
    assert "before its kernel constraints (centre of mass, sparsity) switched on" in printed.err
    assert "by iteration" in printed.err and "use more estimation_iters (kernelgan's default: 3000)" in printed.err
    names = {p.name for p in (tmp_path / "k").iterdir()}
    assert names == {f"blurred_kernel_x{s}.{e}" for s in (2, 4) for e in ("npy", "mat", "png")}
    k2 = load_kernel(tmp_path / "k/blurred_kernel_x2.mat")
    k4 = load_kernel(tmp_path / "k/blurred_kernel_x4.npy")
    assert k2.min() > -0.01 and k4.shape[0] > k2.shape[0]
    assert kernel_distance(k2, TRUE_KERNEL) < 0.6 * kernel_distance(bicubic_kernel(2), TRUE_KERNEL)


def _fake_estimate(kernel):
    def estimate(image, config, callback=None):
        for iteration in range(3):
            callback(iteration, {**{name: 0.5 for name in VALUE_NAMES}, "bicubic_weight": 5.0, "learning_rate": 2e-4})
        runs = [RunRecord(0, 1, "collapsed_early"), RunRecord(1, 1, "kernel_still"), RunRecord(2, 1, "end")]
        return kernel, KernelEstimationHistory(raw_kernel=kernel, seconds=1.5, iterations=3, similar_to_bicubic_at=1,
                                               runs_averaged=2, runs=runs)

    return estimate


@pytest.mark.slow
def test_train_blind_estimates_first_and_tracks_the_estimation(shared_data_dir, tmp_path, monkeypatch, capsys):
    # The estimation itself is tested above; here its place in the pipeline and the run.
    kernel = post_process(TRUE_KERNEL)
    monkeypatch.setattr("zssr_tf.pipeline.estimate_kernel", _fake_estimate(kernel))
    image = _blurred_lr(shared_data_dir, tmp_path, size=192)  # 96x96 LR: room for the estimation's crops
    code = main(["train", str(image), "--config", "blind", "--out", str(tmp_path / "out"), *QUICK,
                 "scale_factors=[[2,2],[4,4]]"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "out/blurred_x4_zssr.png").is_file()
    # The estimation's summary comes as soon as it ends, with how to reuse the kernel files.
    summary = next(line for line in out.splitlines() if line.startswith("estimated the kernel in"))
    assert out.index(summary) < out.index("saved ")
    assert ("the mean of 2 of 3 runs; per run: 1 (collapsed early, left out), 1 (kernel stopped moving), "
            "1 (all estimation_iters))") in summary
    assert summary.endswith(f"To reuse it instead of estimating again: --kernel {tmp_path / 'out/blurred_kernel_x2.npy'} "
                            f"{tmp_path / 'out/blurred_kernel_x4.npy'} kernel=given (without --estimate-kernel)")
    np.testing.assert_allclose(np.load(tmp_path / "out/blurred_kernel_x2.npy"), kernel)
    assert (tmp_path / "out/blurred_kernel_x4.mat").is_file()
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("zssr").experiment_id])[0]
    assert run.data.tags["kernel"] == "estimated (kernelgan)"
    assert run.data.params["kernel_estimation.kernel"] == "estimate"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "kernel_estimation/g_loss")] == [0, 1, 2]
    assert run.data.metrics["kernel_estimation/seconds"] == 1.5
    assert run.data.metrics["kernel_estimation/runs_averaged"] == 2
    assert run.data.metrics["kernel_estimation/runs_made"] == 3
    assert [m.step for m in client.get_metric_history(run.info.run_id, "kernel_estimation/run_iterations")] == [0, 1, 2]
    assert run.data.tags["kernel_estimation.runs"].startswith("1 (collapsed early, left out), 1 (kernel stopped")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "kernel_estimation")}
    assert "kernel_estimation/blurred_kernel_x2.png" in artifacts


def test_estimate_kernel_flag_sets_kernel_estimate(capsys):
    assert main(["train", "--estimate-kernel", "--print-config"]) == 0
    assert "kernel: estimate" in capsys.readouterr().out


def test_print_config_refuses_a_kernel_file_with_kernel_estimate(tmp_path, capsys):
    np.save(tmp_path / "k.npy", bicubic_kernel(2))
    assert main(["train", "--config", "blind", "--kernel", str(tmp_path / "k.npy"), "--print-config"]) == 2
    captured = capsys.readouterr()
    assert "use one of them" in captured.err and "kernel: estimate" not in captured.out


@pytest.mark.parametrize("args, message", [
    (["--estimate-kernel", "--kernel", "k.npy"], "use one of them"),
    (["--config", "blind", "scale_factors=[[3,3]]"], "supports x2 and x4 steps only"),
    (["--config", "blind", "method=fkp", "prior_weights=missing.npz"], "missing.npz: no such file"),
    (["--config", "blind", "method=fkp", "generator_crop_size=16"], "generator_crop_size 16 is too small for the "
                                                                    "prior's 11x11 kernels"),
])
def test_blind_input_errors_come_before_any_work(shared_data_dir, tmp_path, capsys, monkeypatch, args, message):
    np.save(tmp_path / "k.npy", bicubic_kernel(2))
    monkeypatch.chdir(tmp_path)
    code = main(["train", str(shared_data_dir / "set5/lr_x2/baby.png"), *args, *QUICK])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()  # no run began


@pytest.mark.parametrize("command", ["kernel", "train"])
def test_an_output_folder_that_cannot_be_written_stops_before_any_work(shared_data_dir, tmp_path, monkeypatch,
                                                                       capsys, command):
    def no_work(*args, **kwargs):
        raise AssertionError("the Keras backend was loaded: the check came too late")

    monkeypatch.setattr("zssr_tf.cli.load_backend", no_work)
    image = str(shared_data_dir / "set5/lr_x2/baby.png")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    extra = ["--config", "blind"] if command == "train" else []
    assert main([command, image, *extra, "--out", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err
    assert "notes.txt is a file, not a folder" in err and "pass --out DIR with a folder you can write to" in err
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"
    assert main([command, image, *extra, "--out", str(tmp_path / "notes.txt" / "sub")]) == 2
    assert f"the folder cannot be created ({tmp_path / 'notes.txt'} is a file)" in capsys.readouterr().err
    monkeypatch.setattr("zssr_tf.checks.os.access", lambda path, mode: False)  # as a read-only folder (root passes)
    assert main([command, image, *extra, "--out", str(tmp_path)]) == 2
    assert "the folder is not writable" in capsys.readouterr().err
    assert main([command, image, *extra, "--out", str(tmp_path / "new" / "out")]) == 2
    assert f"the folder cannot be created ({tmp_path} is not writable)" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # checked, never created


@pytest.mark.parametrize("override, why", [("kernel=given", "it always estimates"),
                                           ("scale.scale_factors=[[4,4]]", "--scale 2|4 chooses the steps"),
                                           ("back_projection_iters=[1]", "a ZSSR setting, unused here")])
def test_kernel_command_refuses_settings_it_would_replace(shared_data_dir, capsys, override, why):
    assert main(["kernel", str(shared_data_dir / "set5/lr_x2/baby.png"), override]) == 2
    name = override.split("=")[0]
    assert f"sets {name.rsplit('.')[-1]} itself ({why}): leave out {name}=" in capsys.readouterr().err
    # The values it sets itself are harmless: `--print-config` shows them taken.
    assert main(["kernel", "--print-config", "kernel=estimate", "scale_factors=[[2,2]]", "back_projection_iters=[0]"]) == 0


def test_kernel_command_checks_the_prior_before_any_work(shared_data_dir, tmp_path, capsys):
    (tmp_path / "prior.npz").write_text("not an archive")
    code = main(["kernel", str(shared_data_dir / "set5/lr_x2/baby.png"), "method=fkp",
                 f"prior_weights={tmp_path / 'prior.npz'}", "--out", str(tmp_path / "k")])
    assert code == 2 and "cannot be read as a .npz file" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("options", [[], ["--config", "x4"], ["--config", "gradual_x2", "--scale", "4"]])
def test_kernel_command_too_small_image_is_one_clear_error(tmp_path, capsys, options):
    # Also with a preset of several scale steps: its back-projection list plays no part in `zssr kernel`.
    cv2.imwrite(str(tmp_path / "tiny.png"), np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert main(["kernel", str(tmp_path / "tiny.png"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zssr: error: the image is 70x50 pixels") and "bicubic kernel (kernel=given)" in err


def test_gradient_loss_map_weights_edges():
    image = np.zeros((40, 50, 3), np.float32)
    image[:, 25:] = 1.0
    weights = gradient_loss_map(image)
    assert weights.shape == (40, 50) and weights.mean() == pytest.approx(1.0, rel=1e-5)
    assert weights[20, 25] > 10 and weights[20, 10] == 0 and np.all(weights[:3] == 0)
    assert np.all(gradient_loss_map(np.full((20, 20, 1), 0.3, np.float32)) == 1)


def test_pairs_carry_the_fathers_own_weights():
    image = np.random.default_rng(1).random((48, 48, 3)).astype(np.float32)
    sources, scale = with_loss_maps((image,))
    sampler = FatherSampler(AugmentConfig(crop_size=48, augment_leave_as_is_probability=1.0))
    maker = PairMaker(sources, (1.0,), sampler, (2.0, 2.0),
                      "cubic", 0.0, "cubic", seed=0, loss_map_scale=scale)
    son, father, weights = next(iter(make_dataset(maker, channels=3)))
    assert son.shape == father.shape == (1, 48, 48, 3) and weights.shape == (1, 48, 48)
    np.testing.assert_allclose(father.numpy()[0], image, atol=1e-6)
    np.testing.assert_allclose(weights.numpy()[0], gradient_loss_map(image), rtol=1e-5, atol=1e-6)


def test_blind_preset_is_augmentation_free_with_the_gradient_loss_map():
    config = load_config("blind")
    assert config.kernel_estimation.kernel == "estimate" and config.loss.loss_map == "gradient"
    assert config.augment.augment_leave_as_is_probability == 1.0 and not config.augment.augment_allow_rotation
    assert (config.test.output_flip, config.test.back_projection_iters) == (False, (2,))
    real = load_config("blind_real")
    assert (real.augment.noise_std, real.test.back_projection_iters, real.kernel_estimation.estimation_shave) == (
        0.0125, (0,), 0)
