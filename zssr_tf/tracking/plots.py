"""Figures for a run: training curves and a side-by-side crop comparison, written as PNG.

Figures are built with matplotlib's object API (`Figure`, not `pyplot`): no global backend or
figure state, so this is safe on servers without a display and from any thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

Curve = Sequence[tuple[int, float]]  # (global iteration, value)


def learning_rate_drops(learning_rates: Curve) -> list[int]:
    """Iterations of learning-rate drops: the last iteration run at the old (higher) rate,
    as `trainer.StepResult.learning_rate_drops` counts them. Resets to a higher rate at the
    start of a scale step are not drops."""
    return [prev_it for (prev_it, prev), (_, rate) in zip(learning_rates, learning_rates[1:]) if rate < prev]


def plot_training_curves(path: str | Path, loss: Curve, learning_rate: Curve, reconstruction_error: Curve,
                         true_error: Curve = (), step_starts: Sequence[int] = ()) -> Path:
    """Write a PNG of the per-iteration L1 loss (top) and the reconstruction error and, when
    known, the true error (MSE vs ground truth, bottom; both in [0, 1]^2 units, log scale).
    Learning-rate drops are dashed red lines, scale-step starts (after the first) dotted grey."""
    fig = Figure(figsize=(8, 6))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.08, hspace=0.08)  # constrained layout: 4x slower
    top, bottom = fig.subplots(2, 1, sharex=True)
    if loss:
        x, y = np.array(loss).T
        top.plot(x, y, lw=0.5, color="tab:blue", alpha=0.4, label="loss (per iteration)")
        window = min(len(y) // 20, 50)
        if window > 1:
            top.plot(x[window - 1:], np.convolve(y, np.ones(window) / window, "valid"), color="tab:blue",
                     label=f"loss ({window}-iteration mean)")
        top.set_yscale("log")
    top.set_ylabel("L1 loss")
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
    return _save(fig, path)


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
                         others: dict[str, np.ndarray] | None = None) -> Path:
    """Write a PNG: the whole SR image with the crop marked, then the crop of bicubic | other
    results | SR | GT (GT when given), pixels shown unsmoothed. Images are (H, W, C) float in
    [0, 1], same size (GT is cut to the SR size). `sr_name` labels the SR panel ("ZSSR",
    "ZSRGAN"); `others` maps labels to further results shown before it (e.g. {"ZSSR": ...} next
    to a ZSRGAN result). `size`: crop side in pixels (default: a quarter of the shorter side,
    32..128). `titles` maps "bicubic"/"zssr" (the SR panel)/"gt" or a label of `others` to extra
    title text such as PSNR."""
    height, width = sr.shape[:2]
    size = size or int(np.clip(min(height, width) // 4, 32, 128))
    size = min(size, height, width)
    y, x = detail_window(gt[:height, :width] if gt is not None else sr, size)
    panels = [("bicubic", "bicubic", bicubic), *((k, k, v) for k, v in (others or {}).items()), ("zssr", sr_name, sr)]
    if gt is not None:
        panels.append(("gt", "ground truth", gt[:height, :width]))
    fig = Figure(figsize=(4 * (len(panels) + 1), 4.3))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.03)
    axes = fig.subplots(1, len(panels) + 1)
    axes[0].imshow(_displayable(sr))
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False, color="red", lw=1.5))
    axes[0].set_title(f"{sr_name} {width}x{height}, crop at ({x}, {y})", fontsize=9)
    for ax, (key, label, image) in zip(axes[1:], panels):
        ax.imshow(_displayable(image[y:y + size, x:x + size]), interpolation="nearest")
        ax.set_title(f"{label} {(titles or {}).get(key, '')}".strip(), fontsize=9)
    for ax in axes:
        ax.axis("off")
    return _save(fig, path)


def _displayable(image: np.ndarray) -> np.ndarray:
    image = np.clip(image, 0, 1)
    return np.repeat(image, 3, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
