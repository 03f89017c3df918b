"""Estimated kernels on disk: `.npy`, `.mat` (variable `Kernel`, as KernelGAN and DIV2KRK write
them) and a PNG picture with the kernel's taps and its sum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import io as scipy_io


def write_kernel_files(kernel: np.ndarray, out_dir: str | Path, stem: str) -> dict[str, Path]:
    """Write `<stem>.npy`, `<stem>.mat` (variable `Kernel`, float64) and `<stem>.png` of the 2-D
    `kernel` into `out_dir` (created). Returns {"npy": path, "mat": path, "png": path}.
    `zssr_tf.kernels.load_kernel` reads the .npy and .mat back."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = np.asarray(kernel, np.float64)
    paths = {"npy": out_dir / f"{stem}.npy", "mat": out_dir / f"{stem}.mat", "png": out_dir / f"{stem}.png"}
    np.save(paths["npy"], kernel)
    scipy_io.savemat(str(paths["mat"]), {"Kernel": kernel})
    plot_kernel(kernel, paths["png"], title=stem)
    return paths


def plot_kernel(kernel: np.ndarray, path: str | Path, title: str = "") -> Path:
    """A PNG picture of a 2-D kernel: taps as an image (one pixel per tap, colour bar), its size,
    sum and centre of mass in the title. Uses matplotlib's object API (no global state)."""
    fig = Figure(figsize=(4.2, 3.6))
    axes = fig.subplots()
    shown = axes.imshow(kernel, cmap="viridis", interpolation="nearest")
    fig.colorbar(shown, ax=axes)
    rows, cols = np.indices(kernel.shape)
    total = kernel.sum()
    com = (float((rows * kernel).sum() / total), float((cols * kernel).sum() / total)) if total else (np.nan, np.nan)
    axes.set_title(f"{title}\n{kernel.shape[0]}x{kernel.shape[1]}, sum {total:.3f}, "
                   f"centre ({com[0]:.2f}, {com[1]:.2f})", fontsize=8)
    fig.savefig(path, dpi=100)
    return Path(path)
