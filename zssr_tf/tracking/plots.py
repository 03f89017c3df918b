"""Figures for a run: training curves and a side-by-side crop comparison, written as PNG.

Figures are built with matplotlib's object API (`Figure`, not `pyplot`): no global backend or
figure state, so this is safe on servers without a display and from any thread.

Images that use little of their range (a 12-bit microscope frame in a 16-bit file fills 1/16 of
it) would show black: figures and preview images then stretch the range between the 0.1st and
99.9th percentiles of the SR image to black..white, and say so in the title or file name. The
image files themselves are never stretched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

Curve = Sequence[tuple[int, float]]  # (global iteration, value)
DISPLAY_PERCENTILES = (0.1, 99.9)
STRETCH_BELOW = 0.5  # stretch when the percentile range spans less than this fraction of [0, 1]


def display_range(image: np.ndarray) -> tuple[float, float] | None:
    """(low, high) in [0, 1] to map to black..white when showing `image` (H, W, C) float in
    [0, 1]: its DISPLAY_PERCENTILES over all channels, or None when they span at least
    STRETCH_BELOW of the range (the image is shown as it is)."""
    low, high = (float(v) for v in np.percentile(np.clip(image, 0, 1), DISPLAY_PERCENTILES))
    if high - low >= STRETCH_BELOW or high <= low:
        return None
    return low, high


def stretch(image: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """`image` (any shape) with `value_range` (low, high) mapped linearly to [0, 1] and clipped;
    unchanged (but clipped to [0, 1]) when `value_range` is None."""
    if value_range is None:
        return np.clip(image, 0, 1)
    low, high = value_range
    return np.clip((image - low) / (high - low), 0, 1)


def describe_range(value_range: tuple[float, float], bit_depth: int) -> str:
    """'display stretched: 16-bit levels 80..4030 shown as black..white' for titles and logs."""
    top = 2**bit_depth - 1
    low, high = (int(round(v * top)) for v in value_range)
    return f"display stretched: {bit_depth}-bit levels {low}..{high} shown as black..white"


def write_previews(folder: str | Path, images: dict[str, np.ndarray], bit_depth: int) -> list[Path]:
    """For images that use little of their range (`display_range` of the first image, shared by
    all), write 8-bit PNG previews `<name>_display_<low>-<high>.png` to `folder`, with <low>-<high>
    the `bit_depth` levels stretched to black..white. `images` maps names to (H, W, C) float in
    [0, 1]. Returns the written paths ([] when no stretch is needed)."""
    from zssr_tf.image_io import ImageInfo, write_image

    value_range = display_range(next(iter(images.values())))
    if value_range is None:
        return []
    top = 2**bit_depth - 1
    low, high = (int(round(v * top)) for v in value_range)
    paths = []
    for name, image in images.items():
        path = Path(folder) / f"{name}_display_{low}-{high}.png"
        height, width, channels = image.shape
        write_image(path, stretch(image, value_range), ImageInfo(str(path), 8, channels, height, width))
        paths.append(path)
    return paths


def learning_rate_drops(learning_rates: Curve) -> list[int]:
    """Iterations of learning-rate drops: the last iteration run at the old (higher) rate,
    as `trainer.StepResult.learning_rate_drops` counts them. Resets to a higher rate at the
    start of a scale step are not drops."""
    return [prev_it for (prev_it, prev), (_, rate) in zip(learning_rates, learning_rates[1:]) if rate < prev]


def plot_training_curves(path: str | Path, loss: Curve, learning_rate: Curve, reconstruction_error: Curve,
                         true_error: Curve = (), step_starts: Sequence[int] = (),
                         loss_terms: dict[str, Curve] | None = None) -> Path:
    """Write `training_curves_figure(...)` as a PNG at `path`; returns the path."""
    return _save(training_curves_figure(loss, learning_rate, reconstruction_error, true_error, step_starts, loss_terms),
                 path)


def training_curves_figure(loss: Curve, learning_rate: Curve, reconstruction_error: Curve, true_error: Curve = (),
                           step_starts: Sequence[int] = (), loss_terms: dict[str, Curve] | None = None) -> Figure:
    """A figure of the per-iteration training loss (top: ZSSR's L1 loss, or with `loss_terms`
    a GAN generator's total loss and the moving means of its terms, e.g. {"l1_loss": ...,
    "adversarial_loss": ...}) and the reconstruction error and, when known, the true error (MSE
    vs ground truth, bottom; both in [0, 1]^2 units, log scale). Learning-rate drops are dashed
    red lines, scale-step starts (after the first) dotted grey."""
    fig = Figure(figsize=(8, 6))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.08, hspace=0.08)  # constrained layout: 4x slower
    top, bottom = fig.subplots(2, 1, sharex=True)
    loss_terms = loss_terms or {}
    name = "generator loss" if loss_terms else "loss"
    if loss:
        x, y = np.array(loss).T
        top.plot(x, y, lw=0.5, color="tab:blue", alpha=0.4, label=f"{name} (per iteration)")
        window = min(len(y) // 20, 50)
        if window > 1:
            top.plot(x[window - 1:], _moving_mean(y, window), color="tab:blue", label=f"{name} ({window}-iteration mean)")
        for (term, curve), color in zip(loss_terms.items(), ("tab:green", "tab:purple", "tab:orange")):
            x, y = np.array(curve).T
            window = max(1, min(len(y) // 20, 50))
            top.plot(x[window - 1:], _moving_mean(y, window), color=color, lw=1,
                     label=term.replace("_", " ") + (f" ({window}-iteration mean)" if window > 1 else ""))
        top.set_yscale("log")
    top.set_ylabel("generator loss and its terms" if loss_terms else "L1 loss")
    for curve, label, style in ((reconstruction_error, "reconstruction error", "o-"),
                                (true_error, "true error (vs ground truth)", "s-")):
        if curve:
            x, y = np.array(curve).T
            bottom.plot(x, y, style, ms=3, label=label)
    bottom.set_yscale("log")
    bottom.set_ylabel("MSE")
    bottom.set_xlabel("iteration")
    for axes in (top, bottom):
        for i, it in enumerate(learning_rate_drops(learning_rate)):
            axes.axvline(it, color="tab:red", ls="--", lw=0.8, label="learning-rate drop" if i == 0 else None)
        for i, it in enumerate(step_starts[1:]):
            axes.axvline(it, color="grey", ls=":", lw=0.8, label="scale step start" if i == 0 else None)
        if axes.has_data():
            axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    return fig


def _moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The means of `window` consecutive values (len(values) - window + 1 of them)."""
    return np.convolve(values, np.ones(window) / window, "valid")


def detail_window(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (y, x) of the `size` x `size` window of `image` (H, W, C) in [0, 1] with the
    most gradient energy, i.e. where super-resolution detail is visible. Searched on a grid of
    half-window strides."""
    gray = image.mean(axis=2) if image.ndim == 3 else image
    gy, gx = np.gradient(gray.astype(np.float64))
    energy = np.pad(np.cumsum(np.cumsum(gy**2 + gx**2, 0), 1), ((1, 0), (1, 0)))
    stride = max(1, size // 2)
    best, best_yx = -1.0, (0, 0)
    for y in range(0, gray.shape[0] - size + 1, stride):
        for x in range(0, gray.shape[1] - size + 1, stride):
            total = energy[y + size, x + size] - energy[y, x + size] - energy[y + size, x] + energy[y, x]
            if total > best:
                best, best_yx = total, (y, x)
    return best_yx


def plot_crop_comparison(path: str | Path, bicubic: np.ndarray, sr: np.ndarray, gt: np.ndarray | None = None,
                         titles: dict[str, str] | None = None, size: int | None = None, sr_name: str = "ZSSR",
                         others: dict[str, np.ndarray] | None = None, bit_depth: int = 8) -> Path:
    """Write a PNG: the whole SR image with the crop marked, then the crop of bicubic | other
    results | SR | GT (GT when given), pixels shown unsmoothed. Images are (H, W, C) float in
    [0, 1], same size (GT is cut to the SR size). `sr_name` labels the SR panel ("ZSSR",
    "ZSRGAN"); `others` maps labels to further results shown before it (e.g. {"ZSSR": ...} next
    to a ZSRGAN result). `size`: crop side in pixels (default: a quarter of the shorter side,
    32..128). `titles` maps "bicubic"/"zssr" (the SR panel)/"gt" or a label of `others` to extra
    title text such as PSNR. An SR image that uses little of its range is shown stretched
    (`display_range`, the same for every panel), stated in the figure's title with the levels of
    `bit_depth` bits."""
    height, width = sr.shape[:2]
    size = size or int(np.clip(min(height, width) // 4, 32, 128))
    size = min(size, height, width)
    y, x = detail_window(gt[:height, :width] if gt is not None else sr, size)
    panels = [("bicubic", "bicubic", bicubic), *((k, k, v) for k, v in (others or {}).items()), ("zssr", sr_name, sr)]
    if gt is not None:
        panels.append(("gt", "ground truth", gt[:height, :width]))
    value_range = display_range(sr)
    fig = Figure(figsize=(4 * (len(panels) + 1), 4.3 if value_range is None else 4.6))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93 if value_range is None else 0.87, bottom=0.01, wspace=0.03)
    if value_range is not None:
        fig.suptitle(f"{describe_range(value_range, bit_depth)} (0.1-99.9 percentile of {sr_name})", fontsize=10)
    axes = fig.subplots(1, len(panels) + 1)
    axes[0].imshow(_displayable(sr, value_range))
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False, color="red", lw=1.5))
    axes[0].set_title(f"{sr_name} {width}x{height}, crop at ({x}, {y})", fontsize=9)
    for ax, (key, label, image) in zip(axes[1:], panels):
        ax.imshow(_displayable(image[y:y + size, x:x + size], value_range), interpolation="nearest")
        ax.set_title(f"{label} {(titles or {}).get(key, '')}".strip(), fontsize=9)
    for ax in axes:
        ax.axis("off")
    return _save(fig, path)


def _displayable(image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    image = stretch(image, value_range)
    return np.repeat(image, 3, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
