"""HR-father sampling from the image itself and degradation of fathers into LR sons.

Pure NumPy/OpenCV functions of an explicit `np.random.Generator`, so the tf.data pipeline can
run them in parallel with one reproducible stream per training iteration.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from zssr_tf.config import AugmentConfig
from zssr_tf.kernels import SYMMETRY_TOLERANCE, centre_kernel, odd_square
from zssr_tf.resize import imresize

SUBSAMPLING_NAMES = {444: "4:4:4", 422: "4:2:2", 420: "4:2:0"}  # augment.jpeg_subsampling -> Pillow's


@dataclass(frozen=True)
class FatherSampler:
    """Draws HR fathers with the augmentation settings of DESIGN §1.1, `augment` (the config's
    `augment_*` fields and `crop_size`; names as in the paper's code).

    `augment_allow_rotation` False keeps fathers upright (a given kernel need not be symmetric),
    except for the dihedral transforms in `kernel_symmetries` (those the kernel is symmetric under)
    and, when `kernel_isotropic`, any rotation angle and mirror of affine fathers: turning a father
    under which the kernel does not change keeps the degradation the same.
    """

    augment: AugmentConfig = field(default_factory=AugmentConfig)
    kernel_symmetries: tuple[int, ...] = (0,)
    kernel_isotropic: bool = False

    @property
    def dihedral_transforms(self) -> tuple[int, ...]:
        """The dihedral transforms (as `dihedral`) drawn for no-interpolation fathers."""
        return tuple(range(8)) if self.augment.augment_allow_rotation else self.kernel_symmetries

    def sample(self, sources: list[np.ndarray], base_scales: list[float], rng: np.random.Generator) -> np.ndarray:
        """Draw one HR father (float32 h x w x C, h, w <= crop_size) from the sources.

        `sources[i]` is the input upscaled by `base_scales[i]` (1.0 for the input itself, then
        the outputs of earlier gradual steps, in increasing scale).

        `augment_min_father_side` (pixels, 0 = off) raises the smallest drawn scale so that the
        input downscaled to it keeps a short side of at least that many pixels (the input's own
        size when it is smaller); `augment_scale_distribution` "area" draws scales with density
        proportional to scale^2, i.e. to the father's area, as ZSRGAN does (Lee et al. 2021).
        """
        chooser = rng.random()
        if chooser < self.augment.augment_leave_as_is_probability:
            return random_crop(sources[0], self.augment.crop_size, rng)
        if chooser < self.augment.augment_leave_as_is_probability + self.augment.augment_no_interpolate_probability:
            # As in the paper's code, the drawn scale only picks the source here; the crop is
            # taken at the source's own resolution. With one source there is nothing to pick.
            short_side = min(sources[0].shape[:2])
            source = sources[self._draw_scale(base_scales, rng, short_side)[0]] if len(sources) > 1 else sources[0]
            father = random_crop(source, self.augment.crop_size, rng)
            transforms = self.dihedral_transforms
            return dihedral(father, transforms[int(rng.integers(len(transforms)))]) if len(transforms) > 1 else father
        index, scale = self._draw_scale(base_scales, rng, min(sources[0].shape[:2]))
        return self._affine(sources[index], scale / base_scales[index], rng)

    def _draw_scale(self, base_scales: list[float], rng: np.random.Generator,
                    short_side: int = 0) -> tuple[int, float]:
        """A scale in [augment_min_scale, largest source scale] and the index of the smallest source at
        least that large, so that larger (better) fathers are favoured."""
        low, high = self._min_scale_for(base_scales, short_side), base_scales[-1]
        if self.augment.augment_scale_distribution == "area":
            # Inverse CDF of the density 3 s^2 / (high^3 - low^3) on [low, high].
            scale = (low**3 + rng.random() * max(high**3 - low**3, 0.0)) ** (1 / 3)
        else:
            scale = low + rng.random() * max(high - low, 0.0)
        return next(i for i, s in enumerate(base_scales) if s > scale - 1e-6), scale

    def _min_scale_for(self, base_scales: list[float], short_side: int) -> float:
        """The smallest scale to draw: augment_min_scale, raised by augment_min_father_side for an
        input whose short side is `short_side` pixels (never above the largest source scale)."""
        a = self.augment
        if not a.augment_min_father_side or not short_side:
            return a.augment_min_scale
        # Half a pixel of margin so that int(scale * short side) never rounds below the limit.
        return max(a.augment_min_scale, min(base_scales[-1], (a.augment_min_father_side + 0.5) / short_side))

    def _affine(self, image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
        scale_diff = rng.normal() * self.augment.augment_scale_diff_sigma
        shear_x, shear_y = rng.normal(size=2) * self.augment.augment_shear_sigma
        rotate = self.augment.augment_allow_rotation or self.kernel_isotropic
        angle = rng.random() * 2 * math.pi if rotate else 0.0
        mirror = -1.0 if (rotate and rng.random() < 0.5) else 1.0
        # The x/y scales differ by scale_diff; the scale never drops to zero or flips sign.
        sx, sy = max(scale + scale_diff / 2, 0.05), max(scale - scale_diff / 2, 0.05)
        h, w = image.shape[:2]
        crop = self.augment.crop_size
        out_h, out_w = min(crop, max(1, int(sy * h))), min(crop, max(1, int(sx * w)))
        # Pick the source point that lands at the crop centre so the window fits in the image
        # when it can (its half-extent in source pixels is out/2/scale).
        half_y, half_x = min(out_h / 2 / sy, h / 2), min(out_w / 2 / sx, w / 2)
        cy = half_y + rng.random() * (h - 2 * half_y)
        cx = half_x + rng.random() * (w - 2 * half_x)
        shrink_x, shrink_y = min(sx, 1.0), min(sy, 1.0)
        if shrink_x < 1 or shrink_y < 1:
            # A warp samples without low-pass filtering, so shrinking by warping alone aliases
            # fine textures into patterns no real HR image has. Shrink a window around the
            # centre with MATLAB's antialiased bicubic first, then warp by what is left.
            reach = math.hypot(out_h, out_w) / 2 * (1 + abs(shear_x) + abs(shear_y)) / min(shrink_x, shrink_y) + 4
            y0, x0 = max(0, int(cy - reach)), max(0, int(cx - reach))
            window = image[y0:min(h, math.ceil(cy + reach)), x0:min(w, math.ceil(cx + reach))]
            image = imresize(window, scale_factor=(shrink_y, shrink_x))
            cy, cx = (cy - y0) * shrink_y, (cx - x0) * shrink_x  # continuous coordinates scale as-is
            sx, sy = sx / shrink_x, sy / shrink_y
        c, s = math.cos(angle), math.sin(angle)
        linear_map = (np.array([[1, shear_x], [shear_y, 1]]) @ np.array([[c, s], [-s, c]])
                      @ np.diag([mirror * sx, sy]))
        # Pixel centres: OpenCV maps integer coordinates, so centres are at (n - 1) / 2.
        src_centre = np.array([cx - 0.5, cy - 0.5])
        dst_centre = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
        matrix = np.hstack([linear_map, (dst_centre - linear_map @ src_centre)[:, None]])
        warped = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REFLECT_101)
        return np.clip(warped.reshape(out_h, out_w, -1), 0, 1).astype(np.float32)


def random_crop(image: np.ndarray, crop_size: int, rng: np.random.Generator) -> np.ndarray:
    """An integer-aligned crop of at most crop_size x crop_size (smaller images give smaller crops)."""
    h, w = image.shape[:2]
    ch, cw = min(crop_size, h), min(crop_size, w)
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    return image[top:top + ch, left:left + cw]


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Transform k in 0..7 of the dihedral group: rotate by 90*k degrees, mirrored when k >= 4."""
    rotated = np.rot90(image, k % 4)
    return np.fliplr(rotated) if k >= 4 else rotated


def dihedral_variants(image: np.ndarray) -> np.ndarray:
    """The 8 distinct dihedral transforms of a square `image` (s, s, C), stacked as (8, s, s, C)
    in the order of `dihedral`'s k. ZSRGAN trains on such a batch of one father/son pair (its
    reference code repeats the 4 reflections to make 12; the 8 distinct ones carry the same
    information)."""
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"dihedral_variants needs a square image to stack, got {image.shape[:2]}")
    return np.stack([dihedral(image, k) for k in range(8)])


def undo_dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Inverse of `dihedral(., k)`."""
    if k >= 4:
        image = np.fliplr(image)
    return np.rot90(image, -(k % 4))


def kernel_symmetries(kernel: np.ndarray, tolerance: float = SYMMETRY_TOLERANCE) -> tuple[int, ...]:
    """The dihedral transforms k (0..7, as `dihedral`) that leave a 2-D kernel unchanged about its
    centre of mass, within `tolerance` times its largest tap. Always contains 0; all 8 for an
    isotropic Gaussian; only 0 for a DIV2KRK-style noisy anisotropic kernel.
    """
    centred = odd_square(centre_kernel(kernel))
    limit = tolerance * np.max(np.abs(centred))
    return tuple(k for k in range(8) if np.max(np.abs(dihedral(centred, k) - centred)) <= limit)


def father_to_son(hr_father: np.ndarray, scale_factor, kernel, noise_std: float,
                  rng: np.random.Generator, jpeg_quality: int | None = None,
                  jpeg_subsampling: int = 420) -> np.ndarray:
    """Degrade an HR father into its LR son: downscale by 1/scale_factor with `kernel`
    ('cubic' or a numeric kernel aligned by `kernels.align_kernel`, which fixes where LR pixel i
    sits), add Gaussian noise of std `noise_std`, clip to [0,1]; with `jpeg_quality` (1..100)
    then JPEG-compress it (`jpeg_round_trip`, chroma `jpeg_subsampling`).

    `scale_factor` is (sy, sx) >= 1. Returns float32 (ceil(h/sy), ceil(w/sx), C).
    """
    sy, sx = np.broadcast_to(np.asarray(scale_factor, dtype=np.float64), (2,))
    lr_son = imresize(hr_father, scale_factor=(1 / sy, 1 / sx), kernel=kernel)
    if noise_std > 0:
        lr_son = lr_son + rng.normal(scale=noise_std, size=lr_son.shape).astype(np.float32)
    lr_son = np.clip(lr_son, 0, 1)
    return lr_son if jpeg_quality is None else jpeg_round_trip(lr_son, jpeg_quality, jpeg_subsampling)


def jpeg_round_trip(image: np.ndarray, quality: int, subsampling: int = 420) -> np.ndarray:
    """`image` (h, w, C), C 1 or 3, float in [0, 1], as a JPEG file at IJG `quality` (1..100) with
    chroma `subsampling` (444, 422 or 420; gray images have none) would decode it: rounded to
    8 bits, encoded and decoded in memory with Pillow. Returns float32 (h, w, C) in [0, 1]."""
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(
        buffer, "JPEG", quality=int(quality), subsampling=SUBSAMPLING_NAMES[subsampling])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded, dtype=np.float32) / 255
    return out.reshape(image.shape)


def interpolate_son(lr_son: np.ndarray, scale_factor, father_shape: tuple[int, int],
                    method: str = "cubic", offset=(0.0, 0.0)) -> np.ndarray:
    """Upscale a son back to its father's exact (h, w) at exactly `scale_factor`: the network input.

    `offset`: the sample grid of `kernels.upscale_offset` ((0, 0): MATLAB's block-centre grid),
    so that the son's pixels land where the degradation took them from.
    """
    return imresize(lr_son, scale_factor=scale_factor, output_shape=father_shape, kernel=method, offset=offset)
