"""`zssr train` end to end: outputs keep the input's layout; bad input gives one clear error."""

import cv2
import numpy as np
import pytest
from scipy import io as scipy_io

from zssr_tf.cli import main

# A constant learning rate (the step schedule's first halving is at 500): the policy could not act
# in 3 iterations, and with it the short-run warning would precede every message under test.
QUICK = ["init_weights=none", "model.depth=3", "model.width=8", "max_iters=3", "learning_rate_schedule=step", "run_test_every=1",
         "learning_rate_slope_range=3", "crop_size=16", "back_projection_iters=[1]", "progress_every=0"]


def write_png(path, array):
    cv2.imwrite(str(path), array)
    return str(path)


def run_cli(capsys, *args):
    code = main(["train", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_writes_a_512_result_for_baby(shared_data_dir, tmp_path, capsys):
    lr = shared_data_dir / "set5/lr_x2/baby.png"
    code, out, _ = run_cli(capsys, str(lr), "--gt", str(shared_data_dir / "set5/hr/baby.png"),
                           "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0
    sr = cv2.imread(str(tmp_path / "out/baby_x2_zssr.png"), cv2.IMREAD_UNCHANGED)
    assert sr.shape == (512, 512, 3) and sr.dtype == np.uint8
    assert cv2.imread(str(tmp_path / "out/baby_x2_bicubic.png")).shape == (512, 512, 3)
    assert "PSNR-Y  zssr" in out and "bicubic" in out


@pytest.mark.parametrize("array, expected_shape, dtype", [
    (np.random.default_rng(0).integers(0, 65535, (12, 14, 3), dtype=np.uint16), (24, 28, 3), np.uint16),
    (np.random.default_rng(1).integers(0, 255, (12, 14), dtype=np.uint8), (24, 28), np.uint8),
    (np.random.default_rng(2).integers(0, 255, (12, 14, 4), dtype=np.uint8), (24, 28, 4), np.uint8),
])
def test_output_keeps_bit_depth_and_channels(tmp_path, capsys, array, expected_shape, dtype):
    path = write_png(tmp_path / "in.png", array)
    code, _, err = run_cli(capsys, path, "--out", str(tmp_path), *QUICK)
    assert code == 0, err
    sr = cv2.imread(str(tmp_path / "in_x2_zssr.png"), cv2.IMREAD_UNCHANGED)
    assert sr.shape == expected_shape and sr.dtype == dtype
    if array.ndim == 3 and array.shape[2] == 4:  # alpha upscaled with bicubic, kept
        alpha_mean = sr[..., 3].astype(float).mean()
        assert abs(alpha_mean - array[..., 3].mean()) < 10


def test_alpha_is_upscaled_on_the_grid_of_the_image_under_direct(tmp_path, capsys):
    from zssr_tf.kernels import gaussian_kernel

    rgba = np.random.default_rng(3).integers(0, 255, (12, 14, 4), dtype=np.uint8)
    np.save(tmp_path / "k.npy", gaussian_kernel(9, 1.2))
    code, _, err = run_cli(capsys, write_png(tmp_path / "in.png", rgba), "--out", str(tmp_path), *QUICK,
                           "kernel_alignment=direct", "--kernel", str(tmp_path / "k.npy"))
    assert code == 0, err
    alpha = cv2.imread(str(tmp_path / "in_x2_zssr.png"), cv2.IMREAD_UNCHANGED)[..., 3]
    # Under "direct" LR pixel i sits on HR pixel 2i, where bicubic interpolation returns it unchanged.
    np.testing.assert_array_equal(alpha[::2, ::2], rgba[..., 3])


def test_print_config_shows_overrides(capsys):
    code, out, _ = run_cli(capsys, "--print-config", "noise_std=2e-2")
    assert code == 0 and "noise_std: 0.02" in out


def kernel_file(tmp_path, name, content):
    scipy_io.savemat(tmp_path / name, content)
    return str(tmp_path / name)


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("text", "image"),
    ("tiny", "too small"),
    ("unknown_key", "did you mean 'noise_std'"),
    ("negative_noise", "noise_std is -1"),
    ("scale_not_up", "must upscale"),
    ("crop_vs_scale", "too small for scale"),
    ("kernel_no_var", "several 2-D variables"),
    ("kernel_sum", "sums to 4"),
    ("kernel_count", "2 kernel"),
    ("gt_size", "the ground truth"),
    ("gt_channels", "is gray but the input is RGB"),
    ("init_weights_gray", "does not fit this run's network: it was made for a network of depth 8 (this run: 3)"),
])
def test_bad_input_gives_one_clear_error(tmp_path, capsys, case, message):
    image = write_png(tmp_path / "ok.png", np.full((16, 16, 3), 128, np.uint8))
    good_kernel = np.ones((3, 3)) / 9
    args = {
        "missing": [str(tmp_path / "nope.png")],
        "text": [str((tmp_path / "text.png").write_text("hello") and tmp_path / "text.png")],
        "tiny": [write_png(tmp_path / "tiny.png", np.zeros((3, 3, 3), np.uint8))],
        "unknown_key": [image, "nois_std=0.1"],
        "negative_noise": [image, "noise_std=-1"],
        "scale_not_up": [image, "scale_factors=[[1, 1]]"],
        "crop_vs_scale": [image, "scale_factors=[[8, 8]]", "crop_size=12"],
        "kernel_no_var": [image, "--kernel", kernel_file(tmp_path, "k_novar.mat", {"K": good_kernel, "K2": good_kernel})],
        "kernel_sum": [image, "--kernel", kernel_file(tmp_path, "k_sum.mat", {"Kernel": good_kernel * 4})],
        "kernel_count": [image, "--kernel", kernel_file(tmp_path, "k1.mat", {"Kernel": good_kernel}),
                         kernel_file(tmp_path, "k2.mat", {"Kernel": good_kernel})],
        # A 16x16 input at x2 needs a 32x32 ground truth; 40x40 is another image's.
        "gt_size": [image, "--gt", write_png(tmp_path / "big.png", np.zeros((40, 40, 3), np.uint8))],
        "gt_channels": [image, "--gt", write_png(tmp_path / "gray.png", np.zeros((32, 32), np.uint8))],
        # The shipped warm start is for the default RGB network; QUICK's is smaller, and this image gray.
        "init_weights_gray": [write_png(tmp_path / "gray.png", np.zeros((16, 16), np.uint8)),
                              "init_weights=warm_start"],
    }[case]
    code, out, err = run_cli(capsys, "--out", str(tmp_path / "out"), *QUICK, *args)  # args win
    assert code == 2
    assert err.startswith("zssr: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # Found before training: nothing trained, written or tracked.
    assert "iter" not in out and not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_wrong_size_ground_truth_names_sizes_and_scale(tmp_path, capsys):
    image = write_png(tmp_path / "lr.png", np.full((20, 30, 3), 128, np.uint8))
    gt = write_png(tmp_path / "hr.png", np.zeros((64, 64, 3), np.uint8))
    code, _, err = run_cli(capsys, image, "--gt", gt, "--out", str(tmp_path / "out"), *QUICK)
    assert code == 2
    assert "64x64 pixels, but the x2 output of the 30x20 input is 60x40" in err
    assert "(2.0, 2.0)" not in err and "Warning" not in err and len(err.strip().splitlines()) == 1


def test_divergence_fails_with_one_error_and_no_output(shared_data_dir, tmp_path, capsys):
    """A learning rate of 50 makes the default net's loss explode to NaN within a few iterations
    on Set5 bird: stop there, say why, save nothing, keep the run's curves, mark it FAILED."""
    from mlflow import MlflowClient

    bird = cv2.imread(str(shared_data_dir / "set5/lr_x2/bird.png"))[40:88, 40:88]
    image = write_png(tmp_path / "bird.png", bird)
    code, out, err = run_cli(capsys, image, "--out", str(tmp_path / "out"), *QUICK, "model.depth=8",
                             "model.width=64", "crop_size=32", "learning_rate=50", "max_iters=12", "progress_every=1")
    assert code == 2
    lines = err.strip().splitlines()
    assert any(line.startswith("zssr: warning: train.learning_rate=50 is far outside") for line in lines)
    errors = [line for line in lines if line.startswith("zssr: error: ")]
    assert len(errors) == 1 and "training diverged" in errors[0] and "Lower train.learning_rate" in errors[0]
    assert "Traceback" not in err and "saved" not in out
    assert not list((tmp_path / "out").glob("*.png"))  # no output pretending to be a result
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    assert run.info.status == "FAILED" and "diverged" in run.data.tags["error"]
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert losses and all(np.isfinite(m.value) for m in losses)  # the curve up to the divergence is kept
    stopped_at = int(errors[0].split("at iteration ")[1].split()[0])
    assert stopped_at < 11 and len(losses) == stopped_at


def tracked_run_of(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    artifacts = [a.path for folder in ("outputs", "outputs/display", "figures")
                 for a in client.list_artifacts(run.info.run_id, folder)]
    return client, run, artifacts


def test_phone_photo_is_super_resolved_as_displayed(tmp_path, capsys):
    """A JPEG stored 128 wide x 100 high with EXIF orientation 6 is shown 100 wide x 128 high."""
    from PIL import Image

    stored = np.zeros((100, 128, 3), np.uint8)
    stored[:50, :64] = (255, 0, 0)  # red top-left as stored: top-right once turned upright
    stored[50:] = (0, 0, 255)
    photo = Image.fromarray(stored)
    exif = photo.getexif()
    exif[0x0112] = 6
    photo.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    code, out, err = run_cli(capsys, str(tmp_path / "phone.jpg"), "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0, err
    sr = cv2.imread(str(tmp_path / "out/phone_x2_zssr.png"))[..., ::-1]
    assert sr.shape == (256, 200, 3) and "(200x256)" in out
    assert sr[10, 190, 0] > 200 and sr[10, 190, 2] < 60  # red at the top right
    assert sr[10, 10, 2] > 200 and sr[245, 10, 2] > 200  # blue down the left side
    client, run, artifacts = tracked_run_of(tmp_path)
    assert run.data.params["image.exif_orientation"] == "6"
    assert (run.data.params["image.width"], run.data.params["image.height"]) == ("100", "128")
    assert "outputs/phone_x2_zssr.png" in artifacts


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_gray_alpha_in_gray_alpha_out(tmp_path, capsys, bit_depth):
    import png

    rng = np.random.default_rng(bit_depth)
    top = 2**bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    gray = rng.integers(0, top + 1, (16, 18)).astype(dtype)
    alpha = np.full((16, 18), top // 2, dtype)
    with open(tmp_path / "la.png", "wb") as file:
        png.Writer(18, 16, greyscale=True, alpha=True, bitdepth=bit_depth).write(file, np.dstack([gray, alpha]).reshape(16, 36))
    code, _, err = run_cli(capsys, str(tmp_path / "la.png"), "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0, err
    for name in ("la_x2_zssr.png", "la_x2_bicubic.png"):
        reader = png.Reader(filename=str(tmp_path / "out" / name))
        width, height, rows, meta = reader.read()
        assert (width, height, meta["greyscale"], meta["alpha"], meta["bitdepth"]) == (36, 32, True, True, bit_depth)
        pixels = np.vstack(list(rows)).reshape(32, 36, 2)
        assert abs(pixels[..., 1].mean() - top // 2) <= 1  # a constant alpha stays that constant
    _, run, _ = tracked_run_of(tmp_path)
    assert run.data.params["image.channels"] == "2"


def test_12_bit_frame_in_16_bits_is_exact_on_disk_and_visible_in_previews(tmp_path, capsys):
    from zssr_tf.resize import imresize

    y, x = np.mgrid[0:48, 0:48]
    hr = np.round(2048 + 1500 * np.sin(x / 4.0) * np.cos(y / 5.0)).astype(np.uint16)  # levels 548..3548 of 65535
    lr = np.round(imresize(hr.astype(np.float64), 0.5)).clip(0, 4095).astype(np.uint16)
    image, gt = write_png(tmp_path / "frame.png", lr), write_png(tmp_path / "frame_hr.png", hr)
    code, out, err = run_cli(capsys, image, "--gt", gt, "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0, err
    assert "PSNR 16-bit  zssr" in out
    sr = cv2.imread(str(tmp_path / "out/frame_x2_zssr.png"), cv2.IMREAD_UNCHANGED)
    assert sr.dtype == np.uint16 and sr.shape == (48, 48) and 300 < sr.mean() < 4095  # not stretched on disk
    client, run, artifacts = tracked_run_of(tmp_path)
    assert run.data.metrics["final/psnr_16bit"] > run.data.metrics["final/psnr"]
    previews = [a for a in artifacts if a.startswith("outputs/display/frame_x2_zssr_display_")]
    assert len(previews) == 1 and "figures/crops.png" in artifacts
    low, high = (int(v) for v in previews[0].rsplit("_", 1)[1].removesuffix(".png").split("-"))
    assert 0 <= low < 1000 and 3000 < high <= 4095
    preview = cv2.imread(client.download_artifacts(run.info.run_id, previews[0], str(tmp_path)), cv2.IMREAD_UNCHANGED)
    assert preview.dtype == np.uint8 and preview.max() == 255 and preview.mean() > 60
