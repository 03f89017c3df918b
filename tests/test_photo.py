"""A photo's own noise and JPEG compression: the estimates, the JPEG sons, "auto" resolved per image
and logged, and the clear messages for settings that cannot apply."""

import cv2
import numpy as np
import pytest
from PIL import Image

from zssr_tf.augment import father_to_son, jpeg_round_trip
from zssr_tf.cli import main
from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.metrics import blockiness
from zssr_tf.photo import (NOISE_FLOOR, estimate_noise_std, ijg_table, quality_from_table, read_jpeg_facts,
                           resolve_photo_settings)

QUICK = ["init_weights=none", "model.depth=3", "model.width=8", "max_iters=3", "learning_rate_schedule=step", "run_test_every=1",
         "learning_rate_slope_range=3", "crop_size=16", "back_projection_iters=[1]", "progress_every=0"]


def with_noise(image, sigma, seed=0):
    """`image` plus Gaussian noise of std `sigma`, stored as 8 bits as a file would hold it."""
    noisy = image + np.random.default_rng(seed).normal(scale=sigma, size=image.shape)
    return (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)


def test_noise_estimate_is_unbiased_on_pure_noise():
    flat = np.full((240, 240, 3), 0.5)
    assert estimate_noise_std(with_noise(flat, 6 / 255)) * 255 == pytest.approx(6, rel=0.05)


@pytest.mark.parametrize("sigma", [2, 5, 10])
def test_noise_estimate_on_a_smooth_image(shared_data_dir, sigma):
    image = read_image(shared_data_dir / "set5/lr_x2/baby.png")[0]
    assert estimate_noise_std(with_noise(image, sigma / 255)) * 255 == pytest.approx(sigma, rel=0.2)


# Texture reads as noise: at 2/255 the estimate on butterfly is ~2.9/255 (docs/real-photos.md).
@pytest.mark.parametrize("sigma, low, high", [(2, 0.8, 1.5), (5, 0.8, 1.2), (10, 0.8, 1.2)])
def test_noise_estimate_on_a_textured_image(shared_data_dir, sigma, low, high):
    image = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")[0]
    ratio = estimate_noise_std(with_noise(image, sigma / 255)) * 255 / sigma
    assert low <= ratio <= high


@pytest.mark.parametrize("name", ["baby", "butterfly"])
def test_a_clean_image_resolves_to_no_noise(shared_data_dir, name):
    image, _, info = read_image(shared_data_dir / f"set5/lr_x2/{name}.png")
    assert estimate_noise_std(image) < NOISE_FLOOR
    config, estimate = resolve_photo_settings(load_config("photo"), image, info.path)
    assert config.augment.noise_std == 0.0 and estimate.noise_std_estimated < NOISE_FLOOR


def test_ijg_table_at_50_is_the_standard_table():
    assert ijg_table(50)[:8].tolist() == [16, 11, 10, 16, 24, 40, 51, 61]
    assert quality_from_table(ijg_table(37)) == 37


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_jpeg_quality_read_back(shared_data_dir, tmp_path, quality):
    image = Image.open(shared_data_dir / "set5/lr_x2/bird.png")
    image.save(tmp_path / "bird.jpg", quality=quality)
    facts = read_jpeg_facts(tmp_path / "bird.jpg")
    assert abs(facts.quality - quality) <= 5
    assert facts.subsampling == 420  # Pillow's default
    image.save(tmp_path / "bird444.jpg", quality=quality, subsampling="4:4:4")
    assert read_jpeg_facts(tmp_path / "bird444.jpg").subsampling == 444


def test_a_png_has_no_jpeg_facts(shared_data_dir):
    assert read_jpeg_facts(shared_data_dir / "set5/lr_x2/bird.png") is None


def test_jpeg_round_trip_keeps_shape_range_and_changes_pixels(shared_data_dir):
    image = read_image(shared_data_dir / "set5/lr_x2/bird.png")[0]
    for planes in (image, image[..., :1]):
        out = jpeg_round_trip(planes, 30)
        assert out.shape == planes.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
        assert 0 < np.abs(out - planes).mean() < 0.05


def test_a_son_jpeg_encoded_at_the_inputs_quality_has_its_blocking(shared_data_dir, tmp_path):
    """The input: Set5 head's LR image as a quality-50 JPEG. A son of head's HR image, made with the
    quality read back from that file, is blocked like it: blockiness within 20 % of the input's
    (without JPEG the son's is ~1.1, the input's ~2)."""
    Image.open(shared_data_dir / "set5/lr_x2/head.png").save(tmp_path / "head.jpg", quality=50)
    lr, _, info = read_image(tmp_path / "head.jpg")
    config, _ = resolve_photo_settings(load_config("photo"), lr, info.path)
    assert config.augment.jpeg_quality == 50 and config.augment.jpeg_subsampling == 420
    hr = read_image(shared_data_dir / "set5/hr/head.png")[0]
    son = father_to_son(hr, (2.0, 2.0), "cubic", 0.0, np.random.default_rng(0), 50, 420)
    plain = father_to_son(hr, (2.0, 2.0), "cubic", 0.0, np.random.default_rng(0))
    assert blockiness(son) == pytest.approx(blockiness(lr), rel=0.2)
    assert blockiness(plain) < 0.7 * blockiness(lr)


def test_blockiness_of_an_upscale_looks_at_the_x2_grid(shared_data_dir):
    from zssr_tf.resize import imresize

    lr = read_image(shared_data_dir / "set5/lr_x2/head.png")[0]
    clean, blocked = imresize(lr, scale_factor=2), imresize(jpeg_round_trip(lr, 50), scale_factor=2)
    assert blockiness(clean, scale=2) < 1.2 < 1.5 < blockiness(blocked, scale=2)


def test_auto_is_resolved_printed_and_logged(shared_data_dir, tmp_path, capsys):
    from mlflow import MlflowClient

    image = read_image(shared_data_dir / "set5/lr_x2/bird.png")[0]
    noisy = with_noise(image[:64, :64], 10 / 255)
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / "bird.jpg", quality=75)
    code = main(["train", str(tmp_path / "bird.jpg"), "--out", str(tmp_path / "out"), *QUICK,
                 "noise_std=auto", "jpeg_quality=auto"])
    out = capsys.readouterr().out
    assert code == 0
    assert "noise: estimated std" in out and "quality 75 estimated" in out
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    params = run.data.params
    assert params["augment.jpeg_quality"] == "75" and params["jpeg_quality_estimated"] == "75"
    assert params["augment.jpeg_subsampling"] == "420"
    estimated = float(params["noise_std_estimated"])
    assert estimated > NOISE_FLOOR  # 10/255 of noise, less what JPEG at 75 took away
    assert float(params["augment.noise_std"]) == pytest.approx(estimated, abs=1e-4)


def test_print_config_resolves_auto_for_the_image(shared_data_dir, tmp_path, capsys):
    Image.open(shared_data_dir / "set5/lr_x2/bird.png").save(tmp_path / "bird.jpg", quality=90)
    assert main(["train", str(tmp_path / "bird.jpg"), "--config", "photo", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "jpeg_quality: 90" in out and "jpeg_subsampling: 420" in out and "noise_std: auto" not in out
    assert main(["train", "--config", "photo", "--print-config"]) == 0  # no image: auto stays
    assert "noise_std: auto" in capsys.readouterr().out


def test_a_png_with_jpeg_quality_auto_gets_no_jpeg_sons_and_a_note(shared_data_dir):
    image, _, info = read_image(shared_data_dir / "set5/lr_x2/bird.png")
    config, estimate = resolve_photo_settings(load_config(overrides=["jpeg_quality=auto"]), image, info.path)
    assert config.augment.jpeg_quality == "none"
    assert any("not a JPEG file" in note and "no JPEG sons" in note for note in estimate.notes)


def test_a_16_bit_image_with_a_jpeg_quality_is_one_clear_error(tmp_path, capsys):
    pixels = np.random.default_rng(0).integers(0, 65535, (40, 40, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), pixels)
    code = main(["train", str(tmp_path / "deep.png"), "--out", str(tmp_path / "out"), *QUICK, "jpeg_quality=80"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "jpeg_quality is 80" in err and "16-bit" in err and "jpeg_quality=none" in err
    image, _, info = read_image(tmp_path / "deep.png")
    config, _ = resolve_photo_settings(load_config("photo"), image, info.path, info.bit_depth)
    assert config.augment.jpeg_quality == "none"  # auto on a 16-bit file: not a JPEG


@pytest.mark.parametrize("value", ["0", "101", "high"])
def test_a_jpeg_quality_out_of_range_is_a_config_error(value):
    with pytest.raises(ZSSRError, match="jpeg_quality"):
        load_config(overrides=[f"jpeg_quality={value}"])


def test_zssr_run_says_how_to_resolve_auto():
    from zssr_tf.trainer import ZSSR

    with pytest.raises(ZSSRError, match="resolve_photo_settings"):
        ZSSR(load_config(overrides=["noise_std=auto"])).run(np.zeros((32, 32, 3), np.float32))
