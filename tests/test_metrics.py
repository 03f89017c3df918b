import math

import numpy as np
import pytest
from PIL import Image

from zssr_tf.errors import ZSSRError
from zssr_tf.metrics import calculate_psnr, calculate_ssim, evaluate, to_y_channel

SET5 = ["baby", "bird", "butterfly", "head", "woman"]
SET14 = [
    "baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers",
    "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra",
]  # fmt: skip


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float32) / 255.0


@pytest.mark.parametrize(
    ("dataset", "names", "psnr_range", "ssim_expected"),
    [
        # Bicubic x2 rows of the SelfExSR README / SR papers' baseline tables.
        ("set5", SET5, (33.63, 33.66), 0.9292),
        ("set14", SET14, (30.21, 30.24), 0.8683),
    ],
)
def test_bicubic_x2_baseline_matches_published_numbers(
    request, dataset, names, psnr_range, ssim_expected
):
    # Set5 is shipped in tests/data; Set14 as a whole only in a full benchmark folder.
    shared_data_dir = request.getfixturevalue("full_data_dir" if dataset == "set14" else "shared_data_dir")
    scores = []
    for name in names:
        low_res = Image.open(shared_data_dir / dataset / "lr_x2" / f"{name}.png")
        upscaled = low_res.resize((2 * low_res.width, 2 * low_res.height), Image.BICUBIC)
        hr = _load(shared_data_dir / dataset / "hr" / f"{name}.png")
        gt = hr[: 2 * low_res.height, : 2 * low_res.width]
        scores.append(evaluate(np.asarray(upscaled, dtype=np.float32) / 255.0, gt, 2))
    psnr = np.mean([s["psnr"] for s in scores])
    ssim = np.mean([s["ssim"] for s in scores])
    print(f"{dataset} bicubic x2: PSNR {psnr:.4f} dB, SSIM {ssim:.4f}")
    assert psnr_range[0] <= psnr <= psnr_range[1]
    assert ssim == pytest.approx(ssim_expected, abs=0.001)


def test_identical_images_score_infinite_psnr_and_unit_ssim():
    image = np.random.default_rng(0).random((32, 40, 3), dtype=np.float32)
    for y_only in (True, False):
        assert calculate_psnr(image, image, 2, test_y_channel=y_only) == math.inf
        assert calculate_ssim(image, image, 2, test_y_channel=y_only) == pytest.approx(1.0)
    assert evaluate(image, image, 2) == {"psnr": math.inf, "ssim": 1.0, "psnr_rgb": math.inf}


def test_known_mse_gives_known_psnr():
    first = np.full((20, 20), 100 / 255, dtype=np.float32)
    second = np.full((20, 20), 110 / 255, dtype=np.float32)
    # Every gray level differs by 10, so MSE = 100.
    assert calculate_psnr(first, second, 0) == pytest.approx(10 * math.log10(255**2 / 100))


def test_differences_inside_the_shaved_border_are_ignored():
    first = np.zeros((20, 20, 3), dtype=np.float32)
    second = first.copy()
    second[:3] = 1.0
    assert calculate_psnr(first, second, 3) == math.inf
    assert calculate_psnr(first, second, 2) < math.inf


def test_shape_mismatch_raises_naming_both_shapes():
    with pytest.raises(ZSSRError, match=r"\(8, 8, 3\).*\(8, 9, 3\)"):
        calculate_psnr(np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32), 0)
    with pytest.raises(ZSSRError, match=r"\(16, 16\).*\(16, 16, 3\)"):
        calculate_ssim(np.zeros((16, 16), np.float32), np.zeros((16, 16, 3), np.float32), 0)


def test_y_channel_follows_matlab_rgb2ycbcr():
    pixels = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0]]], dtype=np.float32)
    np.testing.assert_array_equal(to_y_channel(pixels), [[16, 235, 81, 145]])


def test_gray_images_are_compared_on_their_gray_levels():
    rng = np.random.default_rng(1)
    gray = rng.random((24, 24, 1), dtype=np.float32)
    noisy = np.clip(gray + rng.normal(0, 0.05, gray.shape).astype(np.float32), 0, 1)
    np.testing.assert_array_equal(to_y_channel(gray), np.round(gray[:, :, 0] * 255))
    scores = evaluate(noisy, gray, 2)
    assert scores == evaluate(noisy[:, :, 0], gray[:, :, 0], 2)
    assert scores["psnr"] == scores["psnr_rgb"]
    assert 0 < scores["ssim"] < 1


def test_evaluate_crops_the_larger_image_top_left():
    rng = np.random.default_rng(2)
    gt = rng.random((33, 35, 3), dtype=np.float32)
    sr = np.clip(gt[:32, :34] + 0.02, 0, 1)
    expected = evaluate(sr, gt[:32, :34], 2)
    assert evaluate(sr, gt, 2) == expected
    assert evaluate(gt, sr, (2, 2)) == evaluate(gt[:32, :34], sr, 2)


def test_evaluate_rejects_sizes_the_scale_cannot_explain():
    with pytest.raises(ZSSRError, match="32x32 px.*64x64 px"):
        evaluate(np.zeros((32, 32, 3), np.float32), np.zeros((64, 64, 3), np.float32), 2)


def test_16_bit_metrics_see_what_8_bit_rounding_hides():
    """A 12-bit frame in 16 bits and two results 8 and 32 levels (of 65535) off everywhere: at 16
    bits the PSNRs are exactly those of errors of 8 and 32 (12.04 dB apart); rounded to 8 bits,
    rounding noise of the same size as the errors swamps the difference."""
    rng = np.random.default_rng(4)
    gt_levels = rng.integers(64, 4000, (40, 40, 1))
    sign = np.where(rng.random((40, 40, 1)) < 0.5, -1, 1)
    gt = (gt_levels / 65535).astype(np.float32)
    close, far = (evaluate(((gt_levels + e * sign) / 65535).astype(np.float32), gt, 2, bit_depth=16) for e in (8, 32))
    assert close["psnr_16bit"] == pytest.approx(10 * math.log10(65535**2 / 8**2))
    assert far["psnr_16bit"] == pytest.approx(10 * math.log10(65535**2 / 32**2))
    assert close["psnr"] - far["psnr"] < 8  # 8-bit: not the 12.04 dB the errors differ by
    assert 0 < far["ssim_16bit"] < close["ssim_16bit"] < 1
    assert "psnr_16bit" not in evaluate(gt, gt, 2)  # 8-bit data: the protocol's numbers only
