"""Figures and previews: images that use little of their range are shown stretched, and say so."""

import cv2
import numpy as np

from zssr_tf.tracking import plots
from zssr_tf.tracking.plots import describe_range, display_range, plot_crop_comparison, write_previews


def twelve_bit_frame(seed: int = 0, shape=(64, 64, 1)) -> np.ndarray:
    """A 12-bit microscope-like frame stored in 16 bits: levels 0..4095 of 65535, smooth + noise."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    base = 2048 + 1500 * np.sin(x / 5.0) * np.cos(y / 7.0)
    noisy = base[..., None] + np.random.default_rng(seed).normal(0, 100, shape)
    return (np.clip(np.round(noisy), 0, 4095) / 65535).astype(np.float32)


def dark_fraction(path) -> float:
    figure = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return float(np.mean(figure < 20))


def test_display_range_only_for_images_that_use_little_of_their_range():
    full = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    assert display_range(full) is None
    low, high = display_range(twelve_bit_frame())
    assert 0 <= low < high <= 4095 / 65535
    assert describe_range((low, high), 16).startswith("display stretched: 16-bit levels ")


def test_crop_figure_of_a_12_bit_frame_is_not_black(tmp_path, monkeypatch):
    sr, bicubic, gt = twelve_bit_frame(0), twelve_bit_frame(1), twelve_bit_frame(2)
    stretched = plot_crop_comparison(tmp_path / "stretched.png", bicubic, sr, gt, bit_depth=16)
    monkeypatch.setattr(plots, "STRETCH_BELOW", 0.0)  # what the figure looked like without a stretch
    plain = plot_crop_comparison(tmp_path / "plain.png", bicubic, sr, gt, bit_depth=16)
    assert dark_fraction(plain) > 0.5  # the panels are black
    assert dark_fraction(stretched) < 0.15


def test_previews_are_stretched_8_bit_copies_named_by_their_range(tmp_path):
    sr = twelve_bit_frame(0)
    paths = write_previews(tmp_path, {"in_x2_zssr": sr, "in_x2_bicubic": twelve_bit_frame(1)}, 16)
    low, high = (int(round(v * 65535)) for v in display_range(sr))
    assert [p.name for p in paths] == [f"in_x2_zssr_display_{low}-{high}.png", f"in_x2_bicubic_display_{low}-{high}.png"]
    preview = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    assert preview.dtype == np.uint8 and preview.shape == (64, 64)
    assert preview.min() == 0 and preview.max() == 255  # 0.1 .. 99.9 percentiles reach black and white
    full_range = np.random.default_rng(2).random((16, 16, 3)).astype(np.float32)
    assert write_previews(tmp_path / "none", {"photo": full_range}, 8) == []


def test_training_curves_name_the_loss_they_draw():
    iterations = np.arange(200)
    l1 = list(zip(iterations, 0.05 * np.exp(-iterations / 100)))
    rates = [(0, 1e-3), (120, 1e-4)]
    zssr = plots.training_curves_figure(l1, rates, [(0, 1e-3), (100, 5e-4)])
    assert zssr.axes[0].get_ylabel() == "L1 loss"
    assert "loss (10-iteration mean)" in zssr.axes[0].get_legend_handles_labels()[1]
    # ZSRGAN: the total is the generator's weighted sum, and each term is drawn under it.
    adversarial = [(i, 0.7) for i in iterations]
    total = [(i, a + b) for (i, a), (_, b) in zip(l1, adversarial)]
    gan = plots.training_curves_figure(total, rates, [], loss_terms={"l1_loss": l1, "adversarial_loss": adversarial})
    labels = gan.axes[0].get_legend_handles_labels()[1]
    assert gan.axes[0].get_ylabel() == "generator loss and its terms"
    assert {"generator loss (per iteration)", "l1 loss (10-iteration mean)", "adversarial loss (10-iteration mean)",
            "learning-rate drop"} <= set(labels)
    drawn = {line.get_label(): line.get_ydata() for line in gan.axes[0].get_lines()}
    np.testing.assert_allclose(drawn["adversarial loss (10-iteration mean)"], 0.7)
    assert len(drawn["l1 loss (10-iteration mean)"]) == 191
