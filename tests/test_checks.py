"""The pre-flight checks of a run's inputs: images, ground truth, kernels, metric and weight files."""

import numpy as np
import pytest

from zssr_tf.checks import check_inputs
from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError


def test_gray_ground_truth_for_rgb_input_fails():
    with pytest.raises(ZSSRError, match="is gray but the input is RGB"):
        check_inputs(load_config(), np.zeros((20, 30, 3)), gt=np.zeros((40, 60)))


def test_images_must_be_floats_in_0_1(shared_data_dir, tmp_path):
    import cv2

    from zssr_tf.image_io import read_image

    config = load_config()
    path = shared_data_dir / "set5/lr_x2/baby.png"
    pixels = cv2.imread(str(path))  # uint8, as a Python user would read it
    with pytest.raises(ZSSRError, match=r"the image has uint8 pixels, not floats in \[0, 1\]: .*image / 255"):
        check_inputs(config, pixels)
    with pytest.raises(ZSSRError, match=r"values from 0 to 255, outside \[0, 1\]: .*read_image"):
        check_inputs(config, pixels.astype(np.float32))
    with pytest.raises(ZSSRError, match="the ground truth has uint16 pixels"):
        check_inputs(config, np.zeros((20, 30, 3), np.float32), gt=np.zeros((40, 60, 3), np.uint16))
    # What read_image gives for 8- and 16-bit files passes unchanged; a little resize overshoot is clipped.
    cv2.imwrite(str(tmp_path / "deep.png"), pixels[:32, :32].astype(np.uint16) * 256 + 128)
    for file in (path, tmp_path / "deep.png"):
        read = read_image(file)[0]
        np.testing.assert_array_equal(check_inputs(config, read)[0], read)
    assert check_inputs(config, read * 1.005)[0].max() == 1.0


def test_direct_without_a_kernel_and_small_adversarial_images_fail_before_training(shared_data_dir):
    """Both are found by check_inputs, i.e. by the CLI and a sweep's point check before any
    TensorFlow work, not in the middle of a run."""
    from zssr_tf.image_io import read_image

    image = read_image(shared_data_dir / "set5" / "lr_x2" / "head.png")[0]
    direct = load_config("given_kernel", ["kernel_alignment=direct"])
    with pytest.raises(ZSSRError, match="applies to a numeric kernel.*kernels: patterns"):
        check_inputs(direct, image)
    check_inputs(load_config("given_kernel", ["kernel_alignment=direct", "kernel=estimate"]), image)  # estimated later
    gan = load_config("zsrgan", ["perceptual_weight=0"])
    with pytest.raises(ZSSRError, match="at least 64 pixels"):
        check_inputs(gan, image[:48, :48])
    check_inputs(gan, image[:64, :64])


def test_lpips_files_warn_once_without_gt_and_with_gt_are_checked_before_tensorflow(tmp_path):
    import subprocess
    import sys
    import warnings

    from zssr_tf.errors import ZSSRWarning

    heads, vgg = tmp_path / "heads.npz", tmp_path / "vgg.h5"
    config = load_config("zsrgan", ["perceptual_weight=0", f"lpips_heads={heads}", f"lpips_vgg_weights={vgg}"])
    image, gt = np.zeros((64, 64, 3), np.float32), np.zeros((128, 128, 3), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a user's run has it
        check_inputs(config, image)
        check_inputs(config, image)  # checked again (e.g. once per point of a sweep): still one warning
    lpips = [w for w in caught if "LPIPS" in str(w.message)]
    assert [(w.category, str(w.message)) for w in lpips] == [(ZSSRWarning, (
        "loss.lpips_heads and loss.lpips_vgg_weights are set but the run has no ground truth, so the LPIPS-like "
        "metric is not computed: pass the high-resolution image with --gt (a sweep's ground_truth), or leave both "
        "unset (null)"))]

    with pytest.raises(ZSSRError, match=r"LPIPS heads file '.*heads\.npz' not found: convert lpips' vgg\.pth"):
        check_inputs(config, image, gt)
    heads.write_bytes(b"")  # the content is load_heads' to check
    with pytest.raises(ZSSRError, match=r"VGG16 weights file '.*vgg\.h5' not found: .*loss\.lpips_vgg_weights=PATH"):
        check_inputs(config, image, gt)
    vgg.write_text("not weights\n")
    with pytest.raises(ZSSRError, match=r"vgg\.h5 is not an HDF5 file \(Keras weights are \.h5 / \.weights\.h5\)"):
        check_inputs(config, image, gt)
    # All of it without TensorFlow, which the command line loads only after these checks.
    script = ("import sys, numpy as np\n"
              "from zssr_tf.checks import check_inputs\nfrom zssr_tf.config import load_config\n"
              "from zssr_tf.errors import ZSSRError\n"
              f"config = load_config('zsrgan', ['perceptual_weight=0', 'lpips_heads={heads}', "
              f"'lpips_vgg_weights={vgg}'])\n"
              "try:\n    check_inputs(config, np.zeros((64, 64, 3), np.float32), np.zeros((128, 128, 3), np.float32))\n"
              "except ZSSRError as err:\n    print(err)\n"
              "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "is not an HDF5 file" in out and out.endswith("[]\n")


def test_perceptual_loss_weights_are_checked_with_the_inputs(tmp_path):
    image = np.zeros((64, 64, 3), np.float32)
    missing = load_config("zsrgan", [f"perceptual_weights={tmp_path / 'vgg.h5'}"])
    with pytest.raises(ZSSRError, match=r"VGG16 weights file '.*vgg\.h5' not found: .*loss\.perceptual_weights=PATH"
                                        r".*loss\.perceptual_weight=0 needs no VGG16 weights"):
        check_inputs(missing, image)
    check_inputs(load_config("zsrgan", [f"perceptual_weights={tmp_path / 'vgg.h5'}", "perceptual_weight=0"]), image)
