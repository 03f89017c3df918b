"""Sweeps: expansion and validation of sweep files, then tiny sweeps end to end (local, worker
processes, Ray) with nested MLflow runs, resume, failing points and the summary."""

import csv
import os
import sys
import textwrap

import cv2
import numpy as np
import pytest
from mlflow import MlflowClient

from zssr_tf.cli import main
from zssr_tf.errors import ZSSRError
from zssr_tf.sweeps.engines import PointTask, localise
from zssr_tf.sweeps.runner import check_engine, check_store_for_workers, run_sweep
from zssr_tf.sweeps.spec import load_sweep
from zssr_tf.sweeps.summary import Row, best_row, pareto_front, plot_front

QUICK = textwrap.dedent("""\
    overrides:
      model.depth: 3
      model.width: 8
      learning_rate_schedule: policy
      run_test_every: 2
      learning_rate_slope_range: 6
      crop_size: 16
      back_projection_iters: [1]
      output_flip: false
      progress_every: 0
    """)
GRID = "grid: {noise_std: [0, 0.05], learning_rate: [1.0e-3, 1.0e-4]}\n"


@pytest.fixture
def lr_images(shared_data_dir, tmp_path):
    """32x32 crops of two Set5 x2 inputs in tmp_path/lr, and the ground truth of `baby` in tmp_path/hr."""
    (tmp_path / "lr").mkdir()
    (tmp_path / "hr").mkdir()
    for name, (y, x) in {"baby": (100, 100), "bird": (50, 50)}.items():
        lr = cv2.imread(str(shared_data_dir / f"set5/lr_x2/{name}.png"))[y:y + 32, x:x + 32]
        cv2.imwrite(str(tmp_path / f"lr/{name}.png"), lr)
    hr = cv2.imread(str(shared_data_dir / "set5/hr/baby.png"))[200:264, 200:264]
    cv2.imwrite(str(tmp_path / "hr/baby.png"), hr)
    return tmp_path / "lr"


def mlflow_download(run_id: str, artifact_path: str, folder) -> str:
    from mlflow.artifacts import download_artifacts

    return download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(folder),
                              tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def sweep_file(tmp_path, body: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def runs(parent_id: str | None = None):
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("zssr")
    if experiment is None:
        return []
    query = f"tags.`mlflow.parentRunId` = '{parent_id}'" if parent_id else ""
    return client.search_runs([experiment.experiment_id], query)


def parent_of(children) -> str:
    parents = {run.data.tags["mlflow.parentRunId"] for run in children}
    assert len(parents) == 1
    return parents.pop()


# Expansion and validation: nothing is trained.

def test_grid_times_zip_expands_to_every_combination_on_every_image(lr_images, tmp_path):
    path = sweep_file(tmp_path, """\
        images: [lr/*.png]
        grid: {noise_std: [0, 0.025], crop_size: [16, 32]}
        zip: {seed: [0, 1, 2], learning_rate: [1e-3, 1e-4, 1e-5]}
        """)
    sweep = load_sweep(path)
    assert (sweep.n_points, sweep.n_images, len(sweep.points)) == (12, 2, 24)
    assert sweep.axes == ("noise_std", "crop_size", "seed", "learning_rate")
    combos = {tuple(p.values.values()) for p in sweep.points}
    assert combos == {(n, c, s, lr) for n in (0.0, 0.025) for c in (16, 32)
                      for s, lr in [(0, 1e-3), (1, 1e-4), (2, 1e-5)]}  # "1e-3" is a string to PyYAML
    for point in sweep.points:
        cfg = point.config
        assert (cfg.augment.noise_std, cfg.augment.crop_size, cfg.run.seed, cfg.train.learning_rate) == \
            tuple(point.values.values())
    assert [p.image_name for p in sweep.points[:2]] == ["baby", "bird"]  # images inside points
    assert len({p.key for p in sweep.points}) == 24
    assert [p.key for p in load_sweep(path).points] == [p.key for p in sweep.points]  # deterministic


def test_shipped_noise_crop_sweep_is_noise_times_crop_size(shared_data_dir):
    sweep = load_sweep("noise_crop", images=[str(shared_data_dir / "set5/lr_x2/*.png")])
    assert (sweep.n_points, sweep.n_images) == (12, 5)
    assert {tuple(p.values.items()) for p in sweep.points} == {
        (("noise_std", n), ("crop_size", c)) for n in (0.0, 0.0125, 0.025, 0.05) for c in (64, 96, 128)}
    assert all(p.ground_truth == str(shared_data_dir / "set5/hr" / f"{p.image_name}.png") for p in sweep.points)
    assert load_sweep("tiny", images=[str(shared_data_dir / "set5/lr_x2/baby.png")]).n_points == 4


def test_settings_apply_base_then_overrides_then_command_line_then_point(lr_images, tmp_path):
    sweep_file(tmp_path, """\
        augment: {noise_std: 0.01, crop_size: 64}
        train: {max_iters: 100, learning_rate: 0.01}
        model: {depth: 5}
        """, "base.yaml")
    path = sweep_file(tmp_path, """\
        base: base.yaml
        images: [lr/baby.png]
        overrides: {max_iters: 200, train.learning_rate: 0.02}
        grid: {noise_std: [0.03]}
        """)
    config = load_sweep(path, overrides=["learning_rate=0.04", "model.width=16"]).points[0].config
    assert config.model.depth == 5  # base
    assert config.augment.crop_size == 64  # base
    assert config.train.max_iters == 200  # overrides beat the base
    assert config.train.learning_rate == 0.04  # command line beats overrides ("learning_rate" = "train.learning_rate")
    assert config.model.width == 16  # command line
    assert config.augment.noise_std == 0.03  # the point beats the base


def test_ground_truth_pattern_finds_existing_files_only(lr_images, tmp_path):
    path = sweep_file(tmp_path, """\
        images: [lr/*.png]
        ground_truth: "{dir}/../hr/{name}"
        """)
    gts = {p.image_name: p.ground_truth for p in load_sweep(path).points}
    assert gts == {"baby": str(tmp_path / "hr/baby.png"), "bird": None}


@pytest.mark.parametrize("body, message", [
    ("imagse: [lr/*.png]", "unknown key 'imagse'; did you mean 'images'?"),
    ("images: [lr/*.png]\ngrid: {noise_sdt: [0]}", "unknown config key 'noise_sdt'; did you mean 'noise_std'?"),
    ("images: [lr/*.png]\ngrid: {augment.max_iters: [5]}", "unknown config key 'augment.max_iters'"),
    ("images: [lr/*.png]\noverrides: {crop_sise: 16}", "overrides: unknown config key 'crop_sise'"),
    ("images: [lr/*.png]\ngrid: {noise_std: [0, 0.1], crop_size: [16, 4]}",
     "point noise_std=0 crop_size=4: augment.crop_size is 4; use at least 8"),
    ("images: [lr/*.png]\nzip: {seed: [0, 1], noise_std: [0]}", "zip lists must have equal lengths"),
    ("images: [lr/*.png]\ngrid: {noise_std: 0.1}", "grid.noise_std must be a non-empty list"),
    ("images: [lr/*.png]\ngrid: {noise_std: [0, 0.0]}", "same run"),
    ("images: [lr/*.png]\ngrid: {noise_std: [0]}\nzip: {augment.noise_std: [0.1]}", "swept twice"),
    ("images: [lr/*.png]\ngrid: {noise_std: [0]}\noverrides: {noise_std: 0.1}", "also set in overrides"),
    ("images: [lr/*.png]\ngrid: {experiment_name: [a, b]}", "experiment_name cannot be swept"),
    ("images: [lr/*.jpg]", "no image file matches 'lr/*.jpg'"),
    ("images: [lr/*.png]\nkernels: ['{dir}/{stem}.mat']", "kernel pattern '{dir}/{stem}.mat' gives"),
    ("images: [lr/*.png]\nground_truth: '{folder}/x.png'", "use the placeholders {dir}, {stem}, {name}"),
    ("images: [lr/*.png]\nresources: {num_cpu: 1}", "unknown resource 'num_cpu'; did you mean 'num_cpus'?"),
    ("images: [lr/*.png, other/baby.png]", "several images are named ['baby']"),
])
def test_sweep_file_mistakes_give_one_clear_error(lr_images, tmp_path, body, message):
    (tmp_path / "other").mkdir()
    (tmp_path / "other/baby.png").write_bytes((lr_images / "baby.png").read_bytes())
    with pytest.raises(ZSSRError) as err:
        load_sweep(sweep_file(tmp_path, body))
    assert message in str(err.value)


def test_a_bad_point_fails_before_anything_runs(lr_images, tmp_path, capsys):
    path = sweep_file(tmp_path, "images: [lr/*.png]\ngrid: {crop_size: [16, 32, 5]}\n")
    assert main(["sweep", str(path)]) == 2
    assert "point crop_size=5: augment.crop_size is 5" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()


def test_dry_run_lists_the_runs(lr_images, tmp_path, capsys):
    path = sweep_file(tmp_path, "images: [lr/*.png]\n" + GRID)
    assert main(["sweep", str(path), "--dry-run", "max_iters=5"]) == 0
    out = capsys.readouterr().out
    assert "4 point(s) x 2 image(s) = 8 runs" in out and "train.max_iters=5" in out
    assert "bird noise_std=0.05 learning_rate=0.0001" in out
    assert not (tmp_path / "mlflow.db").exists()


def test_engine_mistakes_are_refused_before_anything_runs(monkeypatch):
    with pytest.raises(ZSSRError, match="--address is for --engine ray"):
        check_engine("local", 1, "ray://head:10001")
    with pytest.raises(ZSSRError, match="--workers must be at least 1"):
        check_engine("local", 0, None)
    with pytest.raises(ZSSRError, match="--workers is for --engine local"):
        check_engine("ray", 2, None)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if not installed
    with pytest.raises(ZSSRError, match=r"Ray is not installed: pip install 'zssr-tf\[ray\]'"):
        check_engine("ray", 1, None)


def test_remote_ray_workers_need_a_tracking_server():
    for uri in ("sqlite:////data/mlflow.db", "file:///data/mlruns", "/data/mlruns"):
        with pytest.raises(ZSSRError) as err:
            check_store_for_workers("ray://head:10001", uri)
        assert uri in str(err.value) and "mlflow server" in str(err.value)
    check_store_for_workers("ray://head:10001", "http://tracking:5000")
    check_store_for_workers(None, "sqlite:////data/mlflow.db")  # a local Ray shares this machine's disk


def test_remote_worker_writes_shipped_inputs_it_lacks(tmp_path):
    files = {"/elsewhere/lr/baby.png": b"image", "/elsewhere/hr/baby.png": b"truth"}
    task = PointTask("k", "/elsewhere/lr/baby.png", "/elsewhere/hr/baby.png", (), None, "/elsewhere/out", {})
    local = localise(task, files)
    assert open(local.image, "rb").read() == b"image" and open(local.ground_truth, "rb").read() == b"truth"
    assert os.path.basename(local.image) == "baby.png"  # runs are named after the image
    assert not local.out_dir.startswith("/elsewhere")
    here = str(tmp_path / "x.png")
    open(here, "wb").write(b"image")
    mine = PointTask("k", here, None, (), None, "out", {})
    assert localise(mine, {here: b"image"}) is mine  # a shared filesystem: nothing copied


def test_kernel_files_and_kernel_estimate_in_one_point_are_refused(lr_images, tmp_path):
    np.save(tmp_path / "lr/baby_k.npy", np.full((3, 3), 1 / 9))
    path = sweep_file(tmp_path, "images: [lr/baby.png]\nkernels: ['{dir}/{stem}_k.npy']\n"
                      "grid: {kernel: [given, estimate]}\n")
    with pytest.raises(ZSSRError, match="point kernel=estimate has kernel=estimate, which estimates the kernels"):
        load_sweep(path)


# Tiny sweeps end to end: 6 iterations of a 3-layer net on 32x32 images.

@pytest.mark.slow
def test_local_sweep_nests_four_runs_under_one_parent_and_a_rerun_skips_them(lr_images, tmp_path, capsys):
    path = sweep_file(tmp_path, "name: tiny\nimages: [lr/baby.png]\nground_truth: '{dir}/../hr/{name}'\n"
                      + QUICK + GRID)
    assert main(["sweep", str(path), "--out", "sweep_out", "max_iters=6"]) == 0
    out = capsys.readouterr().out
    assert "[4/4] point 4, baby noise_std=0.05 learning_rate=0.0001:" in out and " dB, " in out and "ETA" in out

    children = [r for r in runs() if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    parent_id = parent_of(children)
    swept = {(r.data.tags["sweep.noise_std"], r.data.tags["sweep.learning_rate"]) for r in children}
    assert swept == {("0.0", "0.001"), ("0.0", "0.0001"), ("0.05", "0.001"), ("0.05", "0.0001")}
    for run in children:  # the swept values reached each run's config, and its name
        assert run.data.params["augment.noise_std"] == run.data.tags["sweep.noise_std"]
        assert run.data.params["train.max_iters"] == "6"
        assert run.data.metrics["final/psnr"] > 30
        assert run.info.run_name == (f"baby_x2 noise_std={run.data.tags['sweep.noise_std']} "
                                     f"learning_rate={run.data.tags['sweep.learning_rate']}")
    assert len({run.info.run_name for run in children}) == 4

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tiny"
    assert {a.path for a in client.list_artifacts(parent_id)} >= {"summary.csv", "summary.md", "summary.png",
                                                                   "front.png", "s.yaml"}
    with open(tmp_path / "sweep_out/summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["point"], r["noise_std"], r["learning_rate"], r["finished"]) for r in rows] == [
        ("1", "0.0", "0.001", "1"), ("2", "0.0", "0.0001", "1"), ("3", "0.05", "0.001", "1"),
        ("4", "0.05", "0.0001", "1")]  # numbered as --dry-run lists them and front.png labels them
    by_values = {(r.data.tags["sweep.noise_std"], r.data.tags["sweep.learning_rate"]): r for r in children}
    for row in rows:  # one image per point: the mean is that run's score
        run = by_values[(row["noise_std"], row["learning_rate"])]
        assert float(row["psnr"]) == pytest.approx(run.data.metrics["final/psnr"])
        assert row["run_ids"] == run.info.run_id
        assert float(row["iterations"]) == 6

    # The parent holds the best point's scores and its run; summary.md links every run.
    best = max(children, key=lambda r: r.data.metrics["final/psnr"])
    assert parent.data.metrics["best/psnr"] == pytest.approx(best.data.metrics["final/psnr"])
    assert parent.data.metrics["best/ssim"] == pytest.approx(best.data.metrics["final/ssim"])
    assert parent.data.tags["zssr.best_run_id"] == best.info.run_id
    assert parent.data.tags["zssr.best_point"] == (f"noise_std={best.data.tags['sweep.noise_std']} "
                                                   f"learning_rate={best.data.tags['sweep.learning_rate']}")
    assert (parent.data.metrics["runs/finished"], parent.data.metrics["runs/failed"]) == (4, 0)
    summary = (tmp_path / "sweep_out/summary.md").read_text()
    experiment_id = parent.info.experiment_id
    assert summary.count("](http://127.0.0.1:5000/#/experiments/") == 5  # the best point's line, then each row
    for run in children:
        assert (f"[baby](http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run.info.run_id}"
                "?workflowType=machine_learning)") in summary

    assert main(["sweep", str(path), "--out", "elsewhere", "max_iters=6"]) == 0
    assert "4 finished before, 0 to run" in capsys.readouterr().out
    assert len(runs()) == 5  # the same parent and children: nothing new
    assert client.get_run(parent_id).info.status == "FINISHED"


@pytest.mark.slow
def test_a_point_with_kernel_estimate_estimates_its_kernel_as_zssr_train_does(lr_images, tmp_path, monkeypatch):
    from zssr_tf.kernel_estimation import KernelEstimationHistory
    from zssr_tf.kernel_estimation.estimator import VALUE_NAMES
    from zssr_tf.kernels import align_kernel, gaussian_kernel

    # The estimation itself is tested in test_kernel_estimation*.py; here its place in a sweep's runs.
    kernel, estimated = gaussian_kernel(13, 2.5, 0.8, 0.6), []

    def estimate(image, config, callback=None):
        estimated.append(image.shape)
        for iteration in range(3):
            callback(iteration, {**{name: 0.5 for name in VALUE_NAMES}, "bicubic_weight": 5.0, "learning_rate": 2e-4})
        return kernel, KernelEstimationHistory(raw_kernel=kernel, seconds=1.5, iterations=3)

    monkeypatch.setattr("zssr_tf.pipeline.estimate_kernel", estimate)
    # The 32x32 test image is too small for a real estimation's crops, which the (mocked) estimator
    # checks before any work; that check is tested in test_kernel_estimation_cli.py.
    monkeypatch.setattr("zssr_tf.checks.check_estimation_inputs", lambda image, config: None)
    path = sweep_file(tmp_path, "images: [lr/baby.png]\n" + QUICK + "grid: {kernel: [given, estimate]}\n")
    assert main(["sweep", str(path), "--out", "sweep_out", "max_iters=4"]) == 0
    assert estimated == [(32, 32, 3)]  # once, for the estimate point
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    children = {r.data.params["kernel_estimation.kernel"]: r for r in runs() if "mlflow.parentRunId" in r.data.tags}
    blind, given = children["estimate"], children["given"]
    assert blind.info.status == given.info.status == "FINISHED"
    assert (blind.data.tags["kernel"], given.data.tags["kernel"]) == ("estimated (kernelgan)", "cubic")
    assert [m.step for m in client.get_metric_history(blind.info.run_id, "kernel_estimation/g_loss")] == [0, 1, 2]
    assert not client.get_metric_history(given.info.run_id, "kernel_estimation/g_loss")
    assert "kernel_estimation/baby_kernel_x2.npy" in {a.path for a in client.list_artifacts(blind.info.run_id,
                                                                                           "kernel_estimation")}
    # The estimate trained the network: the run saved it, re-centred for x2, as its step kernel.
    trained = mlflow_download(blind.info.run_id, "model/step_0_kernel.npy", tmp_path / "dl")
    np.testing.assert_allclose(np.load(trained), align_kernel(kernel, (2.0, 2.0), "block_centre"))
    assert "model/step_0_kernel.npy" not in {a.path for a in client.list_artifacts(given.info.run_id, "model")}


@pytest.mark.slow
def test_a_failing_point_is_recorded_failed_while_two_workers_finish_the_others(lr_images, tmp_path, capsys):
    # A learning rate of 1e38 overflows the weights at the first update: the network's output is
    # NaN, which only training can find.
    path = sweep_file(tmp_path, "images: [lr/baby.png, lr/bird.png]\n" + QUICK
                      + "  max_iters: 6\ngrid: {learning_rate: [1.0e-3, 1.0e+38]}\n")
    assert main(["sweep", str(path), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "bird learning_rate=1e+38: FAILED (ZSSRError: training diverged" in out
    children = [r for r in runs() if "mlflow.parentRunId" in r.data.tags]
    status = {(r.data.tags["image"], r.data.tags["sweep.learning_rate"]): r.info.status for r in children}
    assert status == {("baby", "0.001"): "FINISHED", ("bird", "0.001"): "FINISHED",
                      ("baby", "1e+38"): "FAILED", ("bird", "1e+38"): "FAILED"}
    parent = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_run(parent_of(children))
    assert parent.info.status == "FAILED" and parent.data.tags["zssr.failed_runs"] == "2"
    summary = (tmp_path / "outputs/sweeps/s/summary.md").read_text()
    assert "## Failed runs (2)" in summary and "- baby learning_rate=1e+38: ZSSRError: training diverged" in summary
    assert "| 0.001 | 2/2 |" in summary

    assert main(["sweep", str(path)]) == 1  # finished points are skipped, failed ones run again
    assert "2 finished before, 2 to run" in capsys.readouterr().out


def test_a_bad_input_of_one_point_fails_before_any_point_trains(lr_images, tmp_path, capsys):
    """baby's ground truth is 64x64, right for x2 of its 32x32 crop, wrong for the x3 point."""
    path = sweep_file(tmp_path, "images: [lr/baby.png]\nground_truth: '{dir}/../hr/{name}'\n" + QUICK
                      + "grid: {scale_factors: [[[2, 2]], [[3, 3]]]}\n")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zssr: error: ") and len(err.strip().splitlines()) == 1
    assert "point scale_factors=[[3.0,3.0]] on baby.png: the ground truth" in err
    assert "is 64x64 pixels, but the x3 output of the 32x32 input is 96x96" in err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()
    # The same for an image too small for the scale, found when the file is loaded.
    cv2.imwrite(str(lr_images / "tiny.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ZSSRError, match="tiny.png: the image .*tiny.png is 4x4 pixels, too small"):
        load_sweep(sweep_file(tmp_path, "images: [lr/*.png]\n" + QUICK))


@pytest.mark.slow
def test_ray_sweep_on_a_local_cluster(lr_images, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'zssr-tf[ray]'")
    path = sweep_file(tmp_path, "images: [lr/bird.png]\n" + QUICK + "  max_iters: 6\n" + GRID)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        report = run_sweep(load_sweep(path), engine="ray")
    finally:
        ray.shutdown()
    assert report.failures == [] and report.ran == 4
    children = runs(report.parent_run_id)
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    assert all("final/reconstruction_error" in r.data.metrics for r in children)  # no ground truth for bird
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert {a.path for a in client.list_artifacts(report.parent_run_id)} >= {"summary.csv", "summary.md"}
    with open(report.out_dir / "summary.csv") as f:
        assert [r["finished"] for r in csv.DictReader(f)] == ["1"] * 4


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    # (seconds, psnr): 1 is beaten by 0 (faster and better), 3 ties 2's time with less PSNR.
    points = [(10.0, 37.0), (12.0, 36.9), (20.0, 37.1), (20.0, 37.0), (5.0, 36.5), (30.0, 37.1)]
    assert pareto_front(points) == [4, 0, 2]


def test_a_swallowed_ctrl_c_still_stops_the_sweep_after_that_run(lr_images, tmp_path, monkeypatch, capsys):
    # Python drops a KeyboardInterrupt raised inside a finaliser (TensorFlow frees traced functions
    # between runs); the sweep must still stop at the next run's end and record the parent KILLED.
    import signal

    from zssr_tf.sweeps import runner
    from zssr_tf.sweeps.engines import PointResult

    def engine(tasks, workers=1):
        for task in tasks:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass  # swallowed, as in a __del__
            yield PointResult(task.key, "FINISHED", None, 0.1, {"final/psnr": 30.0}, None)

    monkeypatch.setattr(runner, "run_local", engine)
    path = sweep_file(tmp_path, QUICK + f"images: ['{lr_images}/baby.png']\ngrid: {{noise_std: [0, 0.01, 0.02]}}\n")
    sweep = load_sweep(path)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # an earlier test (Ray) may have set its own
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_sweep(sweep, out_dir=tmp_path / "out")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "[1/3] point 1, baby noise_std=0" in capsys.readouterr().out  # stopped after the first run
    parent = [run for run in runs() if run.data.tags.get("zssr.sweep_id") == sweep.sweep_id]
    assert len(parent) == 1
    assert parent[0].info.status == "KILLED" and parent[0].data.tags["error"] == "interrupted"


def test_front_plot_numbers_points_and_needs_two_scored(tmp_path):
    from matplotlib.image import imread

    rows = [Row(i, {"max_iters": n}, 1, 1, {"psnr": q, "seconds": t})
            for i, (n, q, t) in enumerate([(200, 33.2, 70.0), (800, 33.5, 340.0), (3000, 33.4, 770.0)])]
    path = plot_front(tmp_path / "front.png", rows)
    assert path is not None and imread(path).shape[0] > 420  # the plot plus a key of the 2 front points
    assert plot_front(tmp_path / "one.png", rows[:1]) is None and not (tmp_path / "one.png").exists()
    unscored = Row(3, {"max_iters": 50}, 1, 0, {})
    assert plot_front(tmp_path / "two.png", [rows[0], unscored]) is None


def test_best_point_is_one_that_finished_every_image():
    # Point 1 has the higher mean PSNR only because it failed on the hard image its mean leaves out.
    complete = Row(0, {"noise_std": 0.0}, images=2, finished=2, means={"psnr": 33.0, "reconstruction_error": 1e-3})
    partial = Row(1, {"noise_std": 0.05}, images=2, finished=1, means={"psnr": 38.0, "reconstruction_error": 1e-4})
    assert best_row([partial, complete]) is complete
    # Without a point that finished everywhere, the best of the partial ones; without any score, none.
    worse_partial = Row(2, {"noise_std": 0.1}, images=2, finished=1, means={"psnr": 30.0})
    assert best_row([worse_partial, partial]) is partial
    unscored = Row(3, {"noise_std": 0.2}, images=2, finished=0, means={})
    assert best_row([unscored]) is None
    # Without ground truth: the lowest reconstruction error among the complete points.
    no_gt = [Row(i, {}, 2, finished, {"reconstruction_error": e}) for i, (finished, e) in enumerate([(2, 3e-3), (1, 1e-4), (2, 2e-3)])]
    assert best_row(no_gt) is no_gt[2]
