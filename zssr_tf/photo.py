"""What a photo's own pixels and file say about how it was degraded: its noise level and, for a
JPEG, the compression it went through. `resolve_photo_settings` turns the config's "auto" values
(`augment.noise_std`, `augment.jpeg_quality`, `augment.jpeg_subsampling`) into the numbers one
image trains with (docs/real-photos.md).

Noise: `estimate_noise_std` runs scikit-image's wavelet estimator (`estimate_sigma`, the MAD of the
finest diagonal wavelet coefficients, Donoho & Johnstone) on small blocks and keeps a low
percentile of them, so that edges and texture, which the estimator reads as noise, weigh little.
JPEG: `jpeg_quality` reads the file's luminance quantisation table with Pillow and finds the IJG
(libjpeg) quality factor whose scaled standard table is closest.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin
from skimage.restoration import estimate_sigma
from skimage.util import view_as_blocks

from zssr_tf.config import Config
from zssr_tf.errors import ZSSRError, ZSSRWarning

NOISE_BLOCK = 12  # pixels per side of the blocks the noise is estimated on
NOISE_PERCENTILE = 2.0  # the blocks' estimates are summarised by this low percentile
# The 2nd percentile of 12x12-block estimates of pure Gaussian noise of std s is this times s
# (measured on 256x256x3 noise; tests/test_photo.py checks it): dividing by it unbiases the result.
NOISE_PERCENTILE_FACTOR = 0.735
NOISE_MAX_BLOCKS = 4096  # at most this many blocks, evenly spread, on large images
# Below this std (in [0, 1] units) an estimate is taken for the texture the estimator cannot tell
# from noise (clean Set5 LR images read 0.1-1.05/255, clean Set14 ones up to 3.6/255): no noise.
NOISE_FLOOR = 1.5 / 255
# The IJG standard luminance quantisation table (JPEG standard Annex K), in natural (row) order.
IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)
_PILLOW_SAMPLING = {0: 444, 1: 422, 2: 420}  # JpegImagePlugin.get_sampling -> jpeg_subsampling
DEFAULT_SUBSAMPLING = 420  # libjpeg's and Pillow's default


def estimate_noise_std(image: np.ndarray) -> float:
    """The std of white Gaussian noise in `image` (h, w, C) float in [0, 1], in the same units
    (1/255 = one 8-bit level). Each channel of every `NOISE_BLOCK`-pixel block is estimated with
    `skimage.restoration.estimate_sigma` and the channels averaged; the `NOISE_PERCENTILE`th
    percentile of the blocks, divided by `NOISE_PERCENTILE_FACTOR` (what that percentile is on pure
    noise), is the estimate. Flat blocks (saturated, where clipping removed the noise) are left out;
    an image with none left reads 0.0. Texture still adds: on clean images the estimate is
    0.1-1.05/255 on Set5's LR images and up to 3.6/255 on Set14's baboon (docs/real-photos.md). An image
    smaller than one block is estimated whole."""
    image = np.asarray(image, np.float64)
    image = image[..., None] if image.ndim == 2 else image
    h, w, c = image.shape
    side = NOISE_BLOCK
    if h < side or w < side:
        return float(np.mean(estimate_sigma(image, channel_axis=-1)))
    blocks = view_as_blocks(image[:h // side * side, :w // side * side], (side, side, c)).reshape(-1, side, side, c)
    if len(blocks) > NOISE_MAX_BLOCKS:
        blocks = blocks[np.linspace(0, len(blocks) - 1, NOISE_MAX_BLOCKS).astype(int)]
    blocks = blocks[np.ptp(blocks.reshape(len(blocks), -1), axis=1) > 0]
    if not len(blocks):
        return 0.0
    with warnings.catch_warnings():  # a block whose finest wavelet details are all 0 gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        sigmas = np.array([np.mean(estimate_sigma(block, channel_axis=-1)) for block in blocks])
    sigmas = sigmas[np.isfinite(sigmas)]
    return float(np.percentile(sigmas, NOISE_PERCENTILE) / NOISE_PERCENTILE_FACTOR) if len(sigmas) else 0.0


def ijg_table(quality: int) -> np.ndarray:
    """The luminance quantisation table (64 values, natural order) libjpeg writes at IJG quality
    `quality` (1..100): the standard table scaled by 5000/q % below 50, (200 - 2q) % from 50 on,
    rounded, clipped to [1, 255] (baseline)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((IJG_LUMINANCE * scale + 50) / 100), 1, 255)


def quality_from_table(table) -> int:
    """The IJG quality (1..100) whose `ijg_table` is closest (least squares) to a luminance
    quantisation `table` (64 values, natural order)."""
    table = np.asarray(table, np.float64).ravel()
    return int(min(range(1, 101), key=lambda q: float(np.sum((ijg_table(q) - table) ** 2))))


@dataclass(frozen=True)
class JpegFacts:
    """What a JPEG file's header says: its IJG `quality` (estimated from the luminance table) and
    chroma `subsampling` (444, 422, 420; None for gray or a layout Pillow does not name)."""

    quality: int
    subsampling: int | None


def read_jpeg_facts(path: str | Path) -> JpegFacts | None:
    """The `JpegFacts` of the file at `path`, or None when it is not a JPEG (by its content, not
    its name) or has no quantisation tables."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG" or not getattr(image, "quantization", None):
                return None
            sampling = JpegImagePlugin.get_sampling(image)
            return JpegFacts(quality_from_table(image.quantization[0]), _PILLOW_SAMPLING.get(sampling))
    except OSError:
        return None


@dataclass(frozen=True)
class PhotoEstimate:
    """What `resolve_photo_settings` read from one image: `noise_std_estimated` (the raw
    `estimate_noise_std`, None when noise_std was a number), `jpeg` (the file's `JpegFacts`, None
    for other formats or when jpeg_quality was not auto) and the `notes` it printed."""

    noise_std_estimated: float | None = None
    jpeg: JpegFacts | None = None
    notes: tuple[str, ...] = ()

    def params(self) -> dict[str, float | int | str]:
        """The estimates as run parameters: `noise_std_estimated`, `jpeg_quality_estimated`."""
        params: dict[str, float | int | str] = {}
        if self.noise_std_estimated is not None:
            params["noise_std_estimated"] = round(self.noise_std_estimated, 6)
        if self.jpeg is not None:
            params["jpeg_quality_estimated"] = self.jpeg.quality
        return params


def resolve_photo_settings(config: Config, image: np.ndarray, path: str | Path | None,
                           bit_depth: int = 8) -> tuple[Config, PhotoEstimate]:
    """`config` with the image's "auto" settings resolved, and what was estimated.

    `image` (h, w, C) float32 in [0, 1] read from `path` (None: no file, e.g. an array from Python;
    then jpeg_quality auto resolves to none). `augment.noise_std` auto: `estimate_noise_std`,
    rounded to 1e-4, or 0.0 under `NOISE_FLOOR`. `augment.jpeg_quality` auto: the file's IJG quality
    for a JPEG, "none" for other formats (a note says so); `augment.jpeg_subsampling` auto: the
    JPEG's chroma subsampling, else 420 (or 444 for gray files, where it plays no part). Raises
    ZSSRError for a numeric jpeg_quality on a 16-bit image (`bit_depth` 16; JPEG sons are 8-bit);
    auto resolves to none there, as for any file that is not a JPEG.
    Settings given as numbers are kept; a config with nothing on auto comes back as it is."""
    a = config.augment
    noise_std, quality, subsampling = a.noise_std, a.jpeg_quality, a.jpeg_subsampling
    estimated, jpeg, notes = None, None, []
    if "auto" in (noise_std, quality, subsampling) and path is not None:
        jpeg = read_jpeg_facts(path)
    if noise_std == "auto":
        estimated = estimate_noise_std(image)
        noise_std = round(estimated, 4) if estimated >= NOISE_FLOOR else 0.0
        notes.append(f"noise: estimated std {estimated * 255:.2f}/255 -> augment.noise_std {noise_std:g}"
                     + (f" (under the floor of {NOISE_FLOOR * 255:g}/255: no noise on the sons)"
                        if not noise_std else "")
                     + ("; on a JPEG this reads only the noise the compression left" if jpeg is not None else ""))
    if isinstance(quality, int) and bit_depth != 8:
        raise ZSSRError(f"augment.jpeg_quality is {quality} but the image {path or ''} is {bit_depth}-bit: JPEG sons "
                        f"are 8-bit and cannot stand for it; set jpeg_quality=none (a {bit_depth}-bit file was never "
                        "a JPEG)")
    if quality == "auto":
        if jpeg is None:
            quality = "none"
            notes.append(f"JPEG: {path or 'the image'} is not a JPEG file (no quantisation tables): "
                         "jpeg_quality auto -> none, no JPEG sons")
        else:
            quality = jpeg.quality
            notes.append(f"JPEG: quality {quality} estimated from the file's quantisation table -> "
                         f"sons JPEG-encoded at quality {quality}")
    if subsampling == "auto":
        subsampling = (jpeg.subsampling if jpeg is not None and jpeg.subsampling is not None
                       else 444 if image.shape[2] == 1 else DEFAULT_SUBSAMPLING)
    resolved = dataclasses.replace(a, noise_std=noise_std, jpeg_quality=quality, jpeg_subsampling=subsampling)
    if resolved == a:
        return config, PhotoEstimate(estimated, jpeg, tuple(notes))
    return dataclasses.replace(config, augment=resolved), PhotoEstimate(estimated, jpeg, tuple(notes))

