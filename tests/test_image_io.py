import cv2
import numpy as np
import pytest

from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import ImageInfo, read_image, to_uint8, write_image


def _info(bit_depth: int, channels: int, height: int = 5, width: int = 7) -> ImageInfo:
    return ImageInfo("original.png", bit_depth, channels, height, width)


def test_round_trip_8_bit_rgb(tmp_path):
    levels = np.random.default_rng(0).integers(0, 256, (5, 7, 3))
    path = tmp_path / "nested" / "folder" / "rgb.png"
    write_image(path, (levels / 255).astype(np.float32), _info(8, 3))
    color, alpha, info = read_image(path)
    assert color.dtype == np.float32 and color.shape == (5, 7, 3)
    assert alpha is None
    assert info == ImageInfo(str(path), 8, 3, 5, 7)
    np.testing.assert_array_equal(np.round(color * 255), levels)


def test_round_trip_16_bit_rgb_preserves_every_value(tmp_path):
    levels = np.random.default_rng(1).integers(0, 65536, (5, 7, 3))
    path = tmp_path / "rgb16.png"
    write_image(path, (levels / 65535).astype(np.float32), _info(16, 3))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    color, _, info = read_image(path)
    assert info.bit_depth == 16
    np.testing.assert_array_equal(np.round(color.astype(np.float64) * 65535), levels)


def test_grayscale_stays_one_channel_on_disk(tmp_path):
    levels = np.random.default_rng(2).integers(0, 256, (5, 7, 1))
    path = tmp_path / "gray.png"
    write_image(path, (levels / 255).astype(np.float32), _info(8, 1))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2
    color, alpha, info = read_image(path)
    assert color.shape == (5, 7, 1) and alpha is None and info.channels == 1
    np.testing.assert_array_equal(np.round(color * 255), levels)


def test_rgba_keeps_alpha(tmp_path):
    rng = np.random.default_rng(3)
    color_levels = rng.integers(0, 256, (5, 7, 3))
    alpha_levels = rng.integers(0, 256, (5, 7, 1))
    path = tmp_path / "rgba.png"
    write_image(
        path,
        (color_levels / 255).astype(np.float32),
        _info(8, 4),
        alpha=(alpha_levels / 255).astype(np.float32),
    )
    color, alpha, info = read_image(path)
    assert info.channels == 4 and alpha.shape == (5, 7, 1)
    np.testing.assert_array_equal(np.round(color * 255), color_levels)
    np.testing.assert_array_equal(np.round(alpha * 255), alpha_levels)


def test_channels_are_rgb_not_bgr(tmp_path):
    path = tmp_path / "red.png"
    bgr_red = np.zeros((4, 4, 3), np.uint8)
    bgr_red[:, :, 2] = 255
    cv2.imwrite(str(path), bgr_red)
    color, _, _ = read_image(path)
    np.testing.assert_array_equal(color[0, 0], [1.0, 0.0, 0.0])
    write_image(tmp_path / "again.png", color, _info(8, 3, 4, 4))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "again.png")), bgr_red)


def test_missing_file_raises(tmp_path):
    path = tmp_path / "missing.png"
    with pytest.raises(ZSSRError, match="not found.*missing.png"):
        read_image(path)


def test_directory_raises(tmp_path):
    with pytest.raises(ZSSRError, match="is a directory"):
        read_image(tmp_path)


def test_non_image_file_raises(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(ZSSRError, match="Cannot read.*notes.png"):
        read_image(path)


def test_unsupported_sample_type_raises(tmp_path):
    path = tmp_path / "float.tiff"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ZSSRError, match="float.tiff.*only 8-bit and 16-bit"):
        read_image(path)


def test_16_bit_jpeg_raises(tmp_path):
    with pytest.raises(ZSSRError, match="deep.jpg.*16-bit"):
        write_image(tmp_path / "deep.jpg", np.zeros((4, 4, 3), np.float32), _info(16, 3, 4, 4))


def test_unknown_extension_raises(tmp_path):
    with pytest.raises(ZSSRError, match="out.xyz"):
        write_image(tmp_path / "out.xyz", np.zeros((4, 4, 3), np.float32), _info(8, 3, 4, 4))


def test_to_uint8_rounds_and_clips():
    result = to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 1.5], dtype=np.float32))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, [0, 0, 128, 255, 255])


def test_set14_bridge_reads_as_gray(shared_data_dir):
    color, alpha, info = read_image(shared_data_dir / "set14" / "hr" / "bridge.png")
    assert color.shape[2] == 1 and alpha is None
    assert (info.bit_depth, info.channels) == (8, 1)
    assert color.shape[:2] == (info.height, info.width)
