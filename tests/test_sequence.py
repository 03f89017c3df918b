"""`zssr train` on many images: expanding folders, globs, TIFF stacks and videos; a set end to end
(one output per image, parent and child runs, a rerun skips finished images, an unreadable file
skipped and listed); carry-over of the network and of a blind run's kernel; mistakes refused
before any training."""

import json
import os

import cv2
import numpy as np
import pytest
import tifffile
import yaml
from mlflow import MlflowClient

from zssr_tf.cli import main
from zssr_tf.errors import ZSSRError
from zssr_tf.sweeps.inputs import expand_inputs, is_many, natural_key, set_name

TINY = ["init_weights=none", "model.depth=3", "model.width=8", "crop_size=16", "back_projection_iters=[1]", "output_flip=false",
        "progress_every=0", "run_test_every=5", "gt_test_every=0", "log_model=false", "system_metrics=false"]


@pytest.fixture
def frames(shared_data_dir, tmp_path):
    """tmp_path/frames: three 32x32 crops of Set5's baby (x2 input) a few pixels apart, the third
    32x40 (sizes may differ in a chain), named so that name order differs from text order."""
    source = cv2.imread(str(shared_data_dir / "set5/lr_x2/baby.png"))
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, (name, width) in enumerate((("f_2", 32), ("f_10", 32), ("f_11", 40))):
        cv2.imwrite(str(folder / f"{name}.png"), source[60 + 3 * k:92 + 3 * k, 60 + 3 * k:60 + 3 * k + width])
    return folder


def children(parent_id=None):
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("zssr")
    if experiment is None:
        return []
    query = f"tags.`mlflow.parentRunId` = '{parent_id}'" if parent_id else "tags.`mlflow.parentRunId` != ''"
    return client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time ASC"])


def first_loss(run) -> float:
    history = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_metric_history(run.info.run_id, "train/loss")
    return next(m.value for m in history if m.step == 0)


# Expanding the inputs: nothing is trained.

def test_folders_and_globs_expand_to_images_in_name_order_numbers_by_value(frames, tmp_path):
    (frames / "notes.txt").write_text("not an image")
    names = ["f_2.png", "f_10.png", "f_11.png"]
    assert [os.path.basename(p) for p in expand_inputs([str(frames)], tmp_path / "fr")] == names
    assert [os.path.basename(p) for p in expand_inputs([str(frames / "f_1*.png"), str(frames / "f_2.png")],
                                                       tmp_path / "fr", order="given")] == names[1:] + names[:1]
    assert sorted(["a10", "a9", "a1"], key=natural_key) == ["a1", "a9", "a10"]
    assert is_many([str(frames)]) and is_many([str(frames / "*.png")]) and is_many(["a.png", "b.png"])
    assert not is_many([str(frames / "f_2.png")])
    assert set_name([str(frames / "*.png")]) == set_name([str(frames)]) == "frames"
    with pytest.raises(ZSSRError, match="no file matches"):
        expand_inputs([str(tmp_path / "nothing" / "*.png")], tmp_path / "fr")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f_2.png").write_bytes((frames / "f_2.png").read_bytes())
    with pytest.raises(ZSSRError, match=r"several inputs are named \['f_2'\]"):
        expand_inputs([str(frames), str(tmp_path / "other")], tmp_path / "fr")


def test_a_multi_page_tiff_stack_expands_to_one_image_per_page_as_stored(tmp_path):
    from zssr_tf.image_io import read_image

    pages = (np.random.default_rng(0).random((5, 20, 24)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    assert is_many([str(tmp_path / "stack.tif")])
    images = expand_inputs([str(tmp_path / "stack.tif")], tmp_path / "frames")
    assert [os.path.basename(p) for p in images] == [f"stack_{k:04d}.tif" for k in range(5)]
    for k, path in enumerate(images):
        image, _, info = read_image(path)
        assert (info.bit_depth, info.channels) == (16, 1)
        np.testing.assert_array_equal(np.round(image[..., 0] * 65535).astype(np.uint16), pages[k])
    tifffile.imwrite(tmp_path / "single.tif", pages[0], photometric="minisblack")
    assert not is_many([str(tmp_path / "single.tif")])


def test_a_video_expands_to_numbered_png_frames(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 24))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write an MJPG video to make the test input")
    for level in (0, 80, 160, 240):
        writer.write(np.full((24, 32, 3), level, np.uint8))
    writer.release()
    assert is_many([str(tmp_path / "clip.avi")])
    images = expand_inputs([str(tmp_path / "clip.avi")], tmp_path / "frames")
    assert [os.path.basename(p) for p in images] == [f"clip_{k:05d}.png" for k in range(4)]
    means = [cv2.imread(p).mean() for p in images]
    assert means == sorted(means) and means[-1] - means[0] > 200  # the frames, in order
    (tmp_path / "broken.avi").write_text("not a video")
    with pytest.raises(ZSSRError, match="cannot read the video"):
        expand_inputs([str(tmp_path / "broken.avi")], tmp_path / "frames")


def test_a_channel_mismatch_in_a_carry_over_chain_fails_before_training(frames, tmp_path, capsys):
    gray = cv2.cvtColor(cv2.imread(str(frames / "f_10.png")), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(frames / "f_10.png"), gray)
    assert main(["train", str(frames), "--out", "out", "carry_over=weights", *TINY]) == 2
    error = capsys.readouterr().err
    assert "different channel counts (1 in f_10.png, 3 in f_2.png)" in error and "carry_over=none" in error
    assert children() == [] and not (tmp_path / "out").exists()


def test_carry_over_refuses_parallel_workers_and_single_images_refuse_set_options(frames, capsys):
    assert main(["train", str(frames), "--workers", "2", "carry_over=weights", *TINY]) == 2
    assert "one at a time: leave out --workers" in capsys.readouterr().err
    assert children() == []
    with pytest.raises(SystemExit):
        main(["train", str(frames / "f_2.png"), "--workers", "2"])
    assert "--workers: for several inputs" in capsys.readouterr().err
    assert main(["train", str(frames), "--no-tracking", *TINY]) == 2
    assert "leave out --no-tracking" in capsys.readouterr().err
    assert children() == []


def test_an_out_that_is_a_file_stops_sets_sweeps_and_predict_before_any_work(frames, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for argv in (["train", str(frames), "--out", str(taken), *TINY],
                 ["sweep", "tiny", "--image", str(frames / "f_2.png"), "--out", str(taken)],
                 ["predict", "--run-id", "0" * 32, str(frames / "f_2.png"), "--out", str(taken)]):
        assert main(argv) == 2
        assert f"--out {taken} is a file, not a folder" in capsys.readouterr().err
    assert children() == [] and taken.read_text() == "a file"


# Sets end to end.

def test_a_folder_runs_every_image_under_one_parent_and_a_rerun_skips_them(frames, tmp_path, capsys):
    (frames / "broken.png").write_text("not an image")
    argv = ["train", str(frames), "--out", "out", "max_iters=6", *TINY]
    assert main(argv) == 0
    printed, errors = capsys.readouterr()
    assert errors.count("zssr: warning: skipping 1 of 4 inputs that cannot be used: broken.png: Cannot read") == 1
    assert "3 image(s) (1 input(s) skipped); 0 finished before, 3 to run" in printed
    assert "[3/3]" in printed and "ETA" in printed
    out = tmp_path / "out"
    for name, width in (("f_2", 32), ("f_10", 32), ("f_11", 40)):
        assert cv2.imread(str(out / f"{name}_x2_zssr.png")).shape == (64, 2 * width, 3)
    runs = children()
    assert [r.data.tags["image"] for r in runs] == ["f_2", "f_10", "f_11"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert [r.data.tags["sequence.start"] for r in runs] == ["cold"] * 3
    parent_id = runs[0].data.tags["mlflow.parentRunId"]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["zssr.skipped_inputs"] == "broken.png"
    assert [m.value for m in client.get_metric_history(parent_id, "images/done")] == [1, 2, 3]
    assert parent.data.metrics["images/remaining"] == 0 and parent.data.metrics["mean/iterations"] == 6
    artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert {"set.yaml", "summary.md", "summary.csv", "contact_sheet.png"} <= artifacts
    summary = (out / "summary.md").read_text()
    assert "## Skipped inputs (1)" in summary and "broken.png: Cannot read" in summary
    assert [line.split(" | ")[1] for line in summary.splitlines() if line.startswith("| 1 ")] == ["f_2"]

    assert main(argv) == 0
    assert "3 finished before, 0 to run" in capsys.readouterr().out
    assert len(children()) == 3  # nothing ran again


def test_another_set_in_the_same_folder_is_named_in_a_warning(frames, tmp_path, capsys):
    assert main(["train", str(frames), "--out", "out", "max_iters=2", *TINY]) == 0
    assert "holds the outputs of another set" not in capsys.readouterr().err
    assert main(["train", str(frames / "f_2.png"), str(frames / "f_10.png"), "--out", "out", "max_iters=2",
                 *TINY]) == 0
    assert "out holds the outputs of another set" in capsys.readouterr().err
    assert len(yaml.safe_load((tmp_path / "out" / "set.yaml").read_text())["images"]) == 2


def test_carry_over_starts_each_image_from_the_last_ones_network(frames, tmp_path):
    from zssr_tf.warm_start import kernel_shapes

    inputs = [str(frames / "f_2.png"), str(frames / "f_11.png")]  # 32x32, then 32x40
    # init_variance=1: random weights far from the identity, which training on the first image undoes.
    settings = [*TINY, "crop_size=32", "learning_rate=3e-3", "init_variance=1.0"]
    assert main(["train", *inputs, "--out", "carried", "max_iters=100", "carry_over=weights",
                 "carry_over_max_iters=4", *settings]) == 0
    first, second = children()
    assert first.data.tags["sequence.start"] == "cold" and second.data.tags["sequence.start"] == "f_2"
    weights = tmp_path / "carried" / "carry" / "f_2.npz"
    assert second.data.params["model.init_weights"] == str(weights)
    assert (second.data.params["train.max_iters"], second.data.params["train.learning_rate_schedule"]) == ("4",
                                                                                                           "cosine")
    with np.load(weights) as saved:
        assert {k: saved[k].shape for k in saved.files} == kernel_shapes(3, 8, 3)
        assert saved["conv_1"].dtype == np.float32
    assert json.loads((tmp_path / "carried" / "carry" / "f_11.json").read_text())["source"] == "f_11"

    # The same second image from a cold start: its first training step (the same pair and, were
    # nothing carried over, the same random weights: one seed) has a far higher loss than with the
    # network carried over from the first image.
    assert main(["train", *inputs, "--out", "cold", "max_iters=2", *settings]) == 0
    cold = [r for r in children() if r.data.tags["image"] == "f_11" and r.data.tags["sequence.start"] == "cold"]
    assert first_loss(second) < 0.5 * first_loss(cold[0])


def test_blind_chains_carry_the_kernel_and_re_estimate_when_it_stops_fitting(frames, tmp_path, monkeypatch):
    from zssr_tf.kernel_estimation import KernelEstimationHistory
    from zssr_tf.kernels import gaussian_kernel

    kernel, estimated = gaussian_kernel(13, 2.5, 0.8, 0.6), []

    def estimate(image, config, callback=None):
        estimated.append(image.shape)
        return kernel, KernelEstimationHistory(raw_kernel=kernel, seconds=1.0, iterations=1)

    # The estimation itself is tested in test_kernel_estimation*.py; here its place in a chain.
    monkeypatch.setattr("zssr_tf.pipeline.estimate_kernel", estimate)
    monkeypatch.setattr("zssr_tf.checks.check_estimation_inputs", lambda image, config: None)
    fits = {"f_2": 1.2, "f_10": 3.0}  # the kernel fits f_10 (after f_2), not f_11 (after f_10)
    monkeypatch.setattr("zssr_tf.sweeps.carry_over.kernel_fit", lambda carry, config, image: fits[carry.source])
    assert main(["train", str(frames), "--out", "out", "kernel=estimate", "carry_over=weights_and_kernel",
                 "max_iters=4", "carry_over_max_iters=2", *TINY]) == 0
    assert estimated == [(32, 32, 3), (32, 40, 3)]  # f_2 and f_11: f_10 took f_2's kernel
    runs = {r.data.tags["image"]: r for r in children()}
    assert [runs[n].data.tags["sequence.kernel"] for n in ("f_2", "f_10", "f_11")] == [
        "estimated", "carried from f_2 (fit 1.20)", "re-estimated (fit 3.00 > 1.5)"]
    assert runs["f_10"].data.params["kernel_estimation.kernel"] == "given"
    assert runs["f_11"].data.params["kernel_estimation.kernel"] == "estimate"
    assert runs["f_10"].data.tags["kernel"] == "f_2_kernel_x2.npy"
    assert json.loads((tmp_path / "out" / "carry" / "f_10.json").read_text())["kernels"] == [
        str(tmp_path / "out" / "f_2_kernel_x2.npy")]


def test_the_kernel_check_is_one_on_the_image_the_carry_came_from(frames, tmp_path):
    import keras

    from zssr_tf.config import load_config
    from zssr_tf.image_io import read_image
    from zssr_tf.kernels import gaussian_kernel
    from zssr_tf.model import build_zssr_net
    from zssr_tf.sweeps.carry_over import Carry, kernel_fit, reconstruction_error
    from zssr_tf.warm_start import save_weights

    config = load_config(None, TINY)
    keras.utils.set_random_seed(0)
    network = build_zssr_net(3, 8, 3)
    save_weights(network, tmp_path / "w.npz", dtype=np.float32)
    np.save(tmp_path / "k.npy", gaussian_kernel(13, 2.0, 2.0, 0.0))
    image, other = read_image(frames / "f_2.png")[0], read_image(frames / "f_11.png")[0]
    carry = Carry("f_2", str(tmp_path / "w.npz"), (str(tmp_path / "k.npy"),),
                  reconstruction_error(network, config, image, [str(tmp_path / "k.npy")]))
    assert kernel_fit(carry, config, image) == pytest.approx(1.0, rel=1e-5)
    assert kernel_fit(carry, config, other) != pytest.approx(1.0, rel=1e-3)
