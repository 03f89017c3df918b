"""Reading and writing images as float32 HWC arrays in [0, 1], keeping the file's layout.

A grayscale file stays grayscale, a 16-bit file stays 16-bit and an alpha channel is carried
through separately, so super-resolving an image changes its size and nothing else.

Reading: images are turned upright the way viewers display them, by the EXIF orientation
(JPEG, PNG, WebP) or the TIFF Orientation tag, mirrored orientations included. Gray with
transparency stays gray: a PNG of colour type 4 (gray + alpha, 8 or 16 bits), a gray PNG with a
tRNS transparent level, and a gray TIFF with an extra alpha sample all read as one gray plane plus
alpha. Pixels come from OpenCV (PNG, JPEG, BMP, WebP ...) or tifffile (TIFF: OpenCV drops a gray
TIFF's alpha, reduces its 16 bits to 8 and applies the TIFF orientation only partly); the PNG
header is read with pypng, the EXIF orientation with Pillow.

Writing: OpenCV for gray, RGB and RGBA; gray + alpha, which OpenCV cannot write, with pypng
(PNG, 8 or 16 bits) or tifffile (TIFF). Files are written upright, without an orientation tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from zssr_tf.errors import ZSSRError

_MAX_VALUE = {8: 255, 16: 65535}
_DTYPE = {8: np.uint8, 16: np.uint16}
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
_TIFF_SUFFIXES = (".tif", ".tiff")
_EXIF_ORIENTATION = 0x0112  # EXIF / TIFF tag 274
_PNG_GRAY, _PNG_GRAY_ALPHA = 0, 4  # PNG colour types


@dataclass(frozen=True)
class ImageInfo:
    """How an image file stores its pixels.

    bit_depth is 8 or 16; channels counts the file's channels, alpha included: 1 (gray), 2 (gray +
    alpha), 3 (RGB) or 4 (RGBA); the colour array `read_image` returns has 1 (gray, with or
    without alpha) or 3 channels. height and width in pixels, as displayed (after the orientation
    is applied). exif_orientation is the EXIF/TIFF orientation applied when reading (1..8; 1:
    stored upright or no tag).
    """

    path: str
    bit_depth: int
    channels: int
    height: int
    width: int
    exif_orientation: int = 1


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """Read an 8- or 16-bit image file, upright as viewers display it.

    Returns (color, alpha, info): color is float32 HxWxC in [0, 1] with C = 1 (gray) or 3 (RGB
    order), alpha is float32 HxWx1 in [0, 1] or None when the file has no transparency.
    Raises ZSSRError when the file is missing, is a directory, is not an image, is not 8/16-bit
    or has a channel layout other than gray, gray + alpha, RGB or RGBA.
    """
    path = Path(path)
    if not path.exists():
        raise ZSSRError(f"Image file not found: '{path}'. Check the path and file name.")
    if path.is_dir():
        raise ZSSRError(f"'{path}' is a directory, not an image; pass the path of an image file.")
    if path.suffix.lower() in _TIFF_SUFFIXES:
        pixels, orientation = _read_tiff(path)
    else:
        pixels, orientation = _read_with_opencv(path)
    bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(pixels.dtype)
    if bit_depth is None:
        raise ZSSRError(
            f"'{path}' stores {pixels.dtype} samples, but only 8-bit and 16-bit integer images are "
            "supported; convert it to an 8- or 16-bit PNG first."
        )
    channels = pixels.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ZSSRError(
            f"'{path}' has {channels} channels, but only gray (1), gray + alpha (2), RGB (3) and RGBA (4) "
            "images are supported; convert it to one of those."
        )
    pixels = apply_orientation(pixels, orientation)
    values = pixels.astype(np.float32) / _MAX_VALUE[bit_depth]
    has_alpha = channels in (2, 4)
    color = values[:, :, :channels - 1] if has_alpha else values
    alpha = values[:, :, channels - 1:] if has_alpha else None
    info = ImageInfo(str(path), bit_depth, channels, pixels.shape[0], pixels.shape[1], orientation)
    return np.ascontiguousarray(color), alpha, info


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn HxWxC `pixels` stored with EXIF `orientation` (1..8) upright, as Pillow's
    `ImageOps.exif_transpose` does (2, 4: mirrored; 3: 180 degrees; 5, 7: mirrored along a
    diagonal; 6: 90 degrees clockwise; 8: 90 degrees counter-clockwise). Written on the array
    because Pillow cannot hold 16-bit colour or 16-bit gray + alpha images. Other values
    (0, out of range) leave the pixels as stored."""
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return np.ascontiguousarray(transform(pixels)) if transform else pixels


def _read_with_opencv(path: Path) -> tuple[np.ndarray, int]:
    """HxWxC samples in RGB(A) / gray(+alpha) order and the EXIF orientation, for non-TIFF files.
    IMREAD_UNCHANGED keeps 16 bits and alpha but ignores the EXIF orientation."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ZSSRError(
            f"Cannot read '{path}' as an image: the file is damaged or not in an image format "
            "OpenCV can decode; pass a PNG, JPEG, TIFF or BMP file."
        )
    if raw.ndim == 2:
        raw = raw[:, :, np.newaxis]
    if raw.shape[2] in (3, 4):
        raw = np.concatenate([raw[:, :, 2::-1], raw[:, :, 3:]], axis=2)  # BGR(A) -> RGB(A)
    png = _png_header(path)
    if png is not None and png.color_type == _PNG_GRAY_ALPHA and raw.shape[2] == 4:
        raw = raw[:, :, [0, 3]]  # OpenCV expands gray + alpha to four channels with R = G = B
    elif png is not None and png.color_type == _PNG_GRAY and png.trns and raw.shape[2] == 1:
        raw = np.concatenate([raw, _alpha_from_transparent_level(raw, png)], axis=2)
    return raw, _exif_orientation(path)


def _png_header(path: Path):
    """pypng's reader after the chunks before the image data (colour type, bit depth, tRNS), or
    None when `path` is not a PNG file."""
    import png

    with open(path, "rb") as file:  # Reader(filename=...) would leave the file open
        reader = png.Reader(file=file)
        try:
            reader.preamble()
        except png.Error:
            return None
    return reader


def _alpha_from_transparent_level(gray: np.ndarray, png) -> np.ndarray:
    """A gray PNG's tRNS chunk names one transparent gray level: alpha 0 there, opaque elsewhere.
    OpenCV scales gray PNGs of 1, 2 or 4 bits to 8 bits, so the level is scaled the same way."""
    level = int.from_bytes(png.trns, "big")
    if png.bitdepth < 8:
        level *= 255 // (2**png.bitdepth - 1)
    opaque = np.iinfo(gray.dtype).max
    return np.where(gray == level, 0, opaque).astype(gray.dtype)


def _exif_orientation(path: Path) -> int:
    """The EXIF orientation tag (1..8) read with Pillow; 1 when absent or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return 1


def _read_tiff(path: Path) -> tuple[np.ndarray, int]:
    """HxWxC samples (gray, gray + alpha, RGB or RGBA) of the first page and its Orientation tag."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages.first
            photometric = page.photometric
            orientation = page.tags.get(_EXIF_ORIENTATION)
            samples = page.asarray()
    except Exception as error:  # tifffile raises many types for damaged files or missing codecs
        raise ZSSRError(
            f"Cannot read '{path}' as a TIFF image ({type(error).__name__}: {error}); save it as an "
            "uncompressed, LZW or Deflate TIFF, or as a PNG."
        ) from None
    # tifffile decodes JPEG-compressed YCbCr TIFFs to RGB.
    if photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR):
        raise ZSSRError(
            f"'{path}' is a {photometric.name} TIFF; only gray and RGB TIFFs (with or without alpha) are "
            "supported: convert it to an RGB or gray PNG first."
        )
    if samples.ndim == 2:
        samples = samples[:, :, np.newaxis]
    elif samples.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
        samples = samples.transpose(1, 2, 0)
    if samples.ndim != 3:
        raise ZSSRError(f"'{path}' holds a {samples.ndim}-dimensional image stack; pass a single 2-D image.")
    return samples, int(orientation.value) if orientation is not None else 1


def write_image(
    path: str | Path, color: np.ndarray, info: ImageInfo, alpha: np.ndarray | None = None
) -> None:
    """Write float [0, 1] color (HxWxC, C = 1 gray or 3 RGB) and optional alpha (HxWx1).

    Samples are rounded and clipped to info.bit_depth (8 or 16 bits). The file keeps the layout of
    the arrays: C = 1 is written as a one-channel gray image (gray + alpha when alpha is given),
    C = 3 as color (RGBA with alpha). The format follows the file extension; 16-bit needs .png,
    .tif or .tiff, and gray + alpha is written as two channels to PNG and TIFF (other formats get
    RGBA with equal colour planes). Missing parent folders are created. Raises ZSSRError when the
    file cannot be written.
    """
    path = Path(path)
    if color.ndim != 3 or color.shape[2] not in (1, 3):
        raise ValueError(f"color must be HxWx1 or HxWx3, got shape {color.shape}")
    if alpha is not None and alpha.shape != color.shape[:2] + (1,):
        raise ValueError(f"alpha must be {color.shape[:2] + (1,)}, got shape {alpha.shape}")
    suffix = path.suffix.lower()
    if info.bit_depth == 16 and suffix not in _SIXTEEN_BIT_SUFFIXES:
        raise ZSSRError(
            f"Cannot write the 16-bit image '{path}': the '{path.suffix}' format has no 16-bit "
            "mode; use a .png, .tif or .tiff output path."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if color.shape[2] == 1 and alpha is not None and suffix in (".png", *_TIFF_SUFFIXES):
        _write_gray_alpha(path, _quantize(np.concatenate([color, alpha], axis=2), info.bit_depth))
        return
    if color.shape[2] == 1 and alpha is not None:
        color = np.repeat(color, 3, axis=2)
    # OpenCV expects BGR(A) channel order.
    pixels = color if color.shape[2] == 1 else color[:, :, ::-1]
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha], axis=2)
    raw = _quantize(pixels, info.bit_depth)
    try:
        written = cv2.imwrite(str(path), raw)
    except cv2.error as error:  # raised e.g. for an extension OpenCV has no writer for
        raise ZSSRError(
            f"Cannot write '{path}': {error.err}. Use an output path ending in .png, .tif or .jpg."
        ) from error
    if not written:
        raise ZSSRError(
            f"Cannot write '{path}': OpenCV failed to save it. Check that the folder is writable "
            "and the extension is an image format such as .png."
        )


def _write_gray_alpha(path: Path, samples: np.ndarray) -> None:
    """Write HxWx2 uint8/uint16 gray + alpha samples as a two-channel PNG or TIFF."""
    try:
        if path.suffix.lower() == ".png":
            import png

            height, width = samples.shape[:2]
            writer = png.Writer(width, height, greyscale=True, alpha=True, bitdepth=samples.dtype.itemsize * 8)
            with open(path, "wb") as file:
                writer.write(file, samples.reshape(height, width * 2))
        else:
            import tifffile

            tifffile.imwrite(path, samples, photometric="minisblack", extrasamples=["unassalpha"])
    except OSError as error:
        raise ZSSRError(f"Cannot write '{path}': {error.strerror}. Check that the folder is writable.") from None


def to_uint8(color: np.ndarray) -> np.ndarray:
    """Return an 8-bit copy (rounded, clipped to 0..255) of a float image in [0, 1], any shape."""
    return _quantize(color, 8)


def to_levels(color: np.ndarray, bit_depth: int) -> np.ndarray:
    """Return a uint8 (bit_depth 8) or uint16 (16) copy of a float image in [0, 1], any shape,
    rounded and clipped to 0..2**bit_depth - 1."""
    return _quantize(color, bit_depth)


def _quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    top = _MAX_VALUE[bit_depth]
    return np.clip(np.round(pixels * top), 0, top).astype(_DTYPE[bit_depth])
