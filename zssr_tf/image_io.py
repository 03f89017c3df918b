"""Reading and writing images as float32 HWC arrays in [0, 1], keeping the file's layout.

A grayscale file stays grayscale, a 16-bit file stays 16-bit and an alpha channel is carried
through separately, so super-resolving an image changes its size and nothing else.
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


@dataclass(frozen=True)
class ImageInfo:
    """How an image file stores its pixels.

    bit_depth is 8 or 16; channels is 1 (gray), 3 (RGB) or 4 (RGBA); height and width in pixels.
    """

    path: str
    bit_depth: int
    channels: int
    height: int
    width: int


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """Read an 8- or 16-bit image file.

    Returns (color, alpha, info): color is float32 HxWxC in [0, 1] with C = 1 (gray) or 3 (RGB
    order), alpha is float32 HxWx1 in [0, 1] or None when the file has no alpha channel.
    Raises ZSSRError when the file is missing, is a directory, is not an image, or is not 8/16-bit.
    """
    path = Path(path)
    if not path.exists():
        raise ZSSRError(f"Image file not found: '{path}'. Check the path and file name.")
    if path.is_dir():
        raise ZSSRError(f"'{path}' is a directory, not an image; pass the path of an image file.")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ZSSRError(
            f"Cannot read '{path}' as an image: the file is damaged or not in an image format "
            "OpenCV can decode; pass a PNG, JPEG, TIFF or BMP file."
        )
    bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(raw.dtype)
    if bit_depth is None:
        raise ZSSRError(
            f"'{path}' stores {raw.dtype} samples, but only 8-bit and 16-bit integer images are "
            "supported; convert it to an 8- or 16-bit PNG first."
        )
    if raw.ndim == 2:
        raw = raw[:, :, np.newaxis]
    channels = raw.shape[2]
    if channels not in (1, 3, 4):
        raise ZSSRError(
            f"'{path}' has {channels} channels, but only gray (1), RGB (3) and RGBA (4) images are "
            "supported; convert it to one of those."
        )
    pixels = raw.astype(np.float32) / _MAX_VALUE[bit_depth]
    alpha = pixels[:, :, 3:4] if channels == 4 else None
    # OpenCV stores color as BGR; the package works in RGB.
    color = pixels if channels == 1 else pixels[:, :, 2::-1]
    info = ImageInfo(str(path), bit_depth, channels, raw.shape[0], raw.shape[1])
    return np.ascontiguousarray(color), alpha, info


def write_image(
    path: str | Path, color: np.ndarray, info: ImageInfo, alpha: np.ndarray | None = None
) -> None:
    """Write float [0, 1] color (HxWxC, C = 1 gray or 3 RGB) and optional alpha (HxWx1).

    Samples are rounded and clipped to info.bit_depth (8 or 16 bits). The file keeps the layout of
    the arrays: C = 1 is written as a one-channel gray image, C = 3 as color, and RGBA when alpha
    is given. The format follows the file extension; 16-bit needs .png, .tif or .tiff. Missing
    parent folders are created. Raises ZSSRError when the file cannot be written.
    """
    path = Path(path)
    if color.ndim != 3 or color.shape[2] not in (1, 3):
        raise ValueError(f"color must be HxWx1 or HxWx3, got shape {color.shape}")
    if alpha is not None and alpha.shape != color.shape[:2] + (1,):
        raise ValueError(f"alpha must be {color.shape[:2] + (1,)}, got shape {alpha.shape}")
    if info.bit_depth == 16 and path.suffix.lower() not in _SIXTEEN_BIT_SUFFIXES:
        raise ZSSRError(
            f"Cannot write the 16-bit image '{path}': the '{path.suffix}' format has no 16-bit "
            "mode; use a .png, .tif or .tiff output path."
        )
    # OpenCV expects BGR(A) channel order.
    pixels = color if color.shape[2] == 1 else color[:, :, ::-1]
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha], axis=2)
    raw = _quantize(pixels, info.bit_depth)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def to_uint8(color: np.ndarray) -> np.ndarray:
    """Return an 8-bit copy (rounded, clipped to 0..255) of a float image in [0, 1], any shape."""
    return _quantize(color, 8)


def _quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    top = _MAX_VALUE[bit_depth]
    return np.clip(np.round(pixels * top), 0, top).astype(_DTYPE[bit_depth])
