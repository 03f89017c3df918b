"""End-to-end quality: a short ZSSR run on a real Set5 image clearly beats bicubic."""

import pytest

from zssr_tf.config import load_config
from zssr_tf.image_io import read_image
from zssr_tf.metrics import evaluate
from zssr_tf.trainer import ZSSR

pytestmark = pytest.mark.slow  # a 300-iteration run of the full-size network


def test_short_run_beats_bicubic_on_set5_head(shared_data_dir):
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/head.png")
    gt, _, _ = read_image(shared_data_dir / "set5/hr/head.png")
    config = load_config(overrides=["max_iters=300", "crop_size=64", "back_projection_iters=[4]", "progress_every=0"])
    result = ZSSR(config, verbose=False).run(lr, gt=gt)
    zssr, bicubic = evaluate(result.sr, gt, 2), evaluate(result.bicubic, gt, 2)
    print(f"head x2: ZSSR {zssr['psnr']:.2f} dB / {zssr['ssim']:.4f}, bicubic {bicubic['psnr']:.2f} dB / "
          f"{bicubic['ssim']:.4f}, {result.iterations} iterations")
    assert zssr["psnr"] > bicubic["psnr"] + 0.5
    assert zssr["ssim"] > bicubic["ssim"]
