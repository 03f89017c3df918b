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


# --- EXIF orientation: images are read the way viewers display them ---------------------------

def _quadrants(height: int, width: int) -> np.ndarray:
    """An RGB image whose four quadrants have different colours: any rotation or mirror shows."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = (255, 0, 0)
    image[: height // 2, width // 2:] = (0, 255, 0)
    image[height // 2:, : width // 2] = (0, 0, 255)
    image[height // 2:, width // 2:] = (255, 255, 0)
    return image


def _save_with_orientation(image, path, orientation: int) -> None:
    from PIL import Image

    pil = Image.fromarray(image)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(path, exif=exif.tobytes(), **({"quality": 95} if path.suffix == ".jpg" else {}))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_like_viewers(tmp_path, orientation, suffix):
    from PIL import Image, ImageOps

    path = tmp_path / f"photo{suffix}"
    _save_with_orientation(_quadrants(100, 128), path, orientation)  # stored 128 wide, 100 high
    color, alpha, info = read_image(path)
    with Image.open(path) as pil:
        displayed = np.asarray(ImageOps.exif_transpose(pil), np.float32) / 255
    sideways = orientation >= 5
    assert color.shape == ((128, 100, 3) if sideways else (100, 128, 3)) == displayed.shape
    assert (info.height, info.width) == color.shape[:2] and info.exif_orientation == orientation
    # Lossless PNG matches Pillow exactly; JPEG decoders differ by a few levels at the edges.
    np.testing.assert_allclose(color, displayed, atol=1e-6 if suffix == ".png" else 0.1)
    assert np.mean(np.abs(color - displayed)) < 0.01


def test_exif_orientation_keeps_16_bits(tmp_path):
    from PIL import Image

    levels = np.random.default_rng(5).integers(0, 65536, (10, 14)).astype(np.uint16)
    path = tmp_path / "deep.png"
    pil = Image.fromarray(levels)  # mode I;16
    exif = pil.getexif()
    exif[0x0112] = 6
    pil.save(path, exif=exif.tobytes())
    color, _, info = read_image(path)
    assert (info.bit_depth, info.exif_orientation, color.shape) == (16, 6, (14, 10, 1))
    np.testing.assert_array_equal(np.round(color[:, :, 0] * 65535), np.rot90(levels, -1))


def test_tiff_orientation_tag_is_applied(tmp_path):
    import tifffile

    image = _quadrants(10, 14)
    path = tmp_path / "turned.tif"
    tifffile.imwrite(path, image, photometric="rgb", extratags=[(274, "H", 1, 8, True)])
    color, _, info = read_image(path)
    assert info.exif_orientation == 8
    np.testing.assert_array_equal(np.round(color * 255), np.rot90(image, 1))


# --- gray + transparency stays gray, alpha kept ------------------------------------------------

def _gray_alpha_levels(bit_depth: int, seed: int = 6):
    rng = np.random.default_rng(seed)
    top = 2**bit_depth - 1
    gray = rng.integers(0, top + 1, (9, 11)).astype(np.uint8 if bit_depth == 8 else np.uint16)
    alpha = rng.integers(0, top + 1, (9, 11)).astype(gray.dtype)
    return gray, alpha, top


def _check_gray_alpha(path, gray, alpha, top, bit_depth):
    color, read_alpha, info = read_image(path)
    assert color.shape == (9, 11, 1) and read_alpha.shape == (9, 11, 1)
    assert (info.channels, info.bit_depth) == (2, bit_depth)
    np.testing.assert_array_equal(np.round(color[:, :, 0].astype(np.float64) * top), gray)
    np.testing.assert_array_equal(np.round(read_alpha[:, :, 0].astype(np.float64) * top), alpha)


def test_8_bit_gray_alpha_png_reads_as_gray_plus_alpha(tmp_path):
    from PIL import Image

    gray, alpha, top = _gray_alpha_levels(8)
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(path)
    _check_gray_alpha(path, gray, alpha, top, 8)


def test_16_bit_gray_alpha_png_reads_as_gray_plus_alpha(tmp_path):
    import png

    gray, alpha, top = _gray_alpha_levels(16)
    path = tmp_path / "la16.png"
    with open(path, "wb") as file:
        png.Writer(11, 9, greyscale=True, alpha=True, bitdepth=16).write(file, np.dstack([gray, alpha]).reshape(9, 22))
    _check_gray_alpha(path, gray, alpha, top, 16)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_gray_alpha_tiff_reads_as_gray_plus_alpha(tmp_path, bit_depth):
    import tifffile

    gray, alpha, top = _gray_alpha_levels(bit_depth)
    path = tmp_path / "la.tif"
    tifffile.imwrite(path, np.dstack([gray, alpha]), photometric="minisblack", extrasamples=["unassalpha"],
                     compression="zlib")
    _check_gray_alpha(path, gray, alpha, top, bit_depth)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_gray_png_with_transparent_level_reads_as_gray_plus_alpha(tmp_path, bit_depth):
    import png

    gray, _, top = _gray_alpha_levels(bit_depth)
    gray[0, :3] = 7
    path = tmp_path / "trns.png"
    with open(path, "wb") as file:
        png.Writer(11, 9, greyscale=True, bitdepth=bit_depth, transparent=7).write(file, gray)
    _check_gray_alpha(path, gray, np.where(gray == 7, 0, top), top, bit_depth)


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_gray_alpha_is_written_as_two_channels(tmp_path, bit_depth, suffix):
    from PIL import Image

    gray, alpha, top = _gray_alpha_levels(bit_depth, seed=7)
    path = tmp_path / f"out{suffix}"
    write_image(path, (gray[..., None] / top).astype(np.float32), _info(bit_depth, 2, 9, 11),
                alpha=(alpha[..., None] / top).astype(np.float32))
    _check_gray_alpha(path, gray, alpha, top, bit_depth)
    if suffix == ".png":
        import png

        reader = png.Reader(filename=str(path))
        reader.preamble()
        assert (reader.color_type, reader.bitdepth) == (4, bit_depth)  # PNG gray + alpha
        if bit_depth == 8:
            assert Image.open(path).mode == "LA"
    else:
        import tifffile

        assert tifffile.imread(path).shape == (9, 11, 2)
