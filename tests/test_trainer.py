"""The scale-step loop: sizes of gradual steps, base changes, kernels per step, input checks."""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from zssr_tf.callbacks import ScaleStepCallback
from zssr_tf.config import load_config
from zssr_tf.degradation import degrade
from zssr_tf.errors import ZSSRError, ZSSRWarning
from zssr_tf.image_io import read_image
from zssr_tf.kernels import gaussian_kernel
from zssr_tf.metrics import calculate_psnr
from zssr_tf.trainer import ZSSR

REPO = Path(__file__).resolve().parents[1]
TINY = ["init_weights=none", "model.depth=3", "model.width=8", "max_iters=4", "run_test_every=2", "learning_rate_slope_range=6",
        "crop_size=16", "back_projection_iters=[1]", "progress_every=0", "precision=float32"]


def smooth_image(h: int, w: int, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(x / 3.0) * np.cos(y / 4.0)
    return np.repeat(base[..., None], channels, axis=2).astype(np.float32)


def test_gradual_non_square_steps_have_the_right_sizes():
    config = load_config(overrides=TINY + ["scale_factors=[[1.0, 1.5], [1.5, 1.0], [1.5, 1.5], [2.0, 1.5], [2.0, 2.0]]"])
    result = ZSSR(config, verbose=False).run(smooth_image(20, 22))
    shapes = [s.output.shape for s in result.steps]
    assert shapes == [(20, 33, 3), (30, 22, 3), (30, 33, 3), (40, 33, 3), (40, 44, 3)]
    assert result.sr.shape == (40, 44, 3) and result.bicubic.shape == (40, 44, 3)
    assert result.iterations == 5 * 4
    # Reconstruction errors are numbered by global iteration across steps.
    iterations = [i for s in result.steps for i, _ in s.reconstruction_errors]
    assert iterations == sorted(iterations) and iterations[-1] >= 16


class StepRecorder(ScaleStepCallback):
    """Keeps the `ScaleStep` each scale step starts with."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_scale_step_begin(self, step, predict):
        self.steps.append(step)


@pytest.mark.parametrize("base_change", [True, False])
def test_base_change_makes_the_output_the_new_input(base_change):
    """After a base change the x4 step trains and tests on the x2 output at x2; without one, on
    the input at x4. The output sizes are the same either way."""
    overrides = ["scale_factors=[[2, 2], [4, 4]]", f"base_change_sfs={[[2, 2]] if base_change else []}"]
    recorder = StepRecorder()
    image = smooth_image(12, 14)
    result = ZSSR(load_config(overrides=TINY + overrides), callbacks=[recorder], verbose=False).run(image)
    assert [s.output.shape[:2] for s in result.steps] == [(24, 28), (48, 56)]
    second = recorder.steps[1]
    assert second.scale_factor == (4.0, 4.0)
    if base_change:
        assert second.relative_sf == (2.0, 2.0)
        np.testing.assert_array_equal(second.input_image, result.steps[0].output)
    else:
        assert second.relative_sf == (4.0, 4.0)
        np.testing.assert_array_equal(second.input_image, image)


def test_grayscale_image_gives_grayscale_output():
    result = ZSSR(load_config(overrides=TINY), verbose=False).run(smooth_image(16, 16, channels=1)[..., 0])
    assert result.sr.shape == (32, 32, 1)


def test_given_kernel_is_used_for_sons(shared_data_dir):
    """An LR image made with a wide anisotropic blur: sons made with that kernel teach the network
    to undo it, bicubic sons do not. Without back-projection only the sons carry the kernel.
    Measured: 24.5 dB with the kernel, 23.1-23.3 dB with bicubic sons, 22.8 dB plain bicubic."""
    hr = read_image(shared_data_dir / "set5" / "hr" / "butterfly.png")[0][96:160, 96:160]
    kernel = gaussian_kernel(13, 2.2, 0.8)
    lr = degrade(hr, kernel, 2)
    config = load_config("given_kernel", [
        "model.depth=4", "model.width=16", "init_weights=none", "crop_size=32", "max_iters=200",
        "learning_rate_schedule=cosine",
        "run_test_every=50", "back_projection_iters=[0]", "progress_every=0", "precision=float32"])
    given = ZSSR(config, verbose=False).run(lr, kernels=[kernel])
    bicubic_sons = ZSSR(config, verbose=False).run(lr)
    assert given.sr.shape == hr.shape and np.all((given.sr >= 0) & (given.sr <= 1))
    psnr_given, psnr_bicubic_sons = (calculate_psnr(r.sr, hr, crop_border=4) for r in (given, bicubic_sons))
    assert psnr_given > psnr_bicubic_sons + 0.5, (psnr_given, psnr_bicubic_sons)


def test_kernel_count_must_match_steps():
    config = load_config(overrides=TINY + ["scale_factors=[[1.5, 1.5], [2, 2]]"])
    with pytest.raises(ZSSRError, match="1 kernel.*2 scale step"):
        ZSSR(config, verbose=False).run(smooth_image(16, 16), kernels=[gaussian_kernel(9, 1.0)])


@pytest.mark.parametrize("shape, message", [((5, 40, 3), "too small"), ((16, 16, 2), "shape")])
def test_bad_images_are_refused(shape, message):
    with pytest.raises(ZSSRError, match=message):
        ZSSR(load_config(overrides=TINY), verbose=False).run(np.zeros(shape, np.float32))


def test_same_seed_same_result():
    config = load_config(overrides=TINY)
    a = ZSSR(config, verbose=False).run(smooth_image(16, 16)).sr
    b = ZSSR(config, verbose=False).run(smooth_image(16, 16)).sr
    np.testing.assert_array_equal(a, b)


def test_direct_alignment_needs_a_numeric_kernel():
    config = load_config("given_kernel", TINY + ["kernel_alignment=direct"])
    with pytest.raises(ZSSRError, match="applies to a numeric kernel"):
        ZSSR(config, verbose=False).run(smooth_image(16, 16))


@pytest.mark.parametrize("kernel, father_transforms, ensemble", [
    (gaussian_kernel(9, 1.2), list(range(8)), list(range(8))),            # isotropic: everything back
    (gaussian_kernel(9, 0.8, 1.6), [0, 2, 4, 6], [0, 2, 4, 6]),            # axis-aligned: flips and 180
    (gaussian_kernel(9, 0.8, 1.6, 0.5), [0, 2], [0, 2]),                   # rotated: only 180 degrees
])
def test_kernel_symmetries_reach_fathers_and_ensemble(capsys, kernel, father_transforms, ensemble):
    """The given_kernel preset turns rotations off; the kernel's own symmetries come back, and
    the trainer says which (its log line)."""
    config = load_config("given_kernel", TINY + ["kernel_alignment=direct", "progress_every=50"])
    result = ZSSR(config, verbose=True).run(smooth_image(24, 24), kernels=[kernel])
    assert result.sr.shape == (48, 48, 3)
    log = capsys.readouterr().out
    assert f"father transforms {father_transforms}, self-ensemble {ensemble}" in log
    off = load_config("given_kernel", TINY + ["kernel_symmetry=false"])
    ZSSR(off, verbose=True).run(smooth_image(24, 24), kernels=[kernel])
    assert "father transforms [0], self-ensemble [0]" in capsys.readouterr().out


def test_default_config_warns_when_its_transforms_break_the_kernels_symmetry():
    """The default config rotates fathers and runs the 8-way self-ensemble; with a kernel that is
    not symmetric under those transforms the user is told, and given_kernel is quiet."""
    rotated = gaussian_kernel(9, 0.8, 1.6, 0.5)  # symmetric under 180 degrees only
    with pytest.warns(ZSSRWarning, match=r"not symmetric under dihedral transforms \[1, 3, 4, 5, 6, 7\]"):
        ZSSR(load_config(overrides=TINY), verbose=False).run(smooth_image(24, 24), kernels=[rotated])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not symmetric under", category=ZSSRWarning)
        ZSSR(load_config("given_kernel", TINY), verbose=False).run(smooth_image(24, 24), kernels=[rotated])
        ZSSR(load_config(overrides=TINY), verbose=False).run(smooth_image(24, 24), kernels=[gaussian_kernel(9, 1.2)])


def test_cosine_schedule_stops_once_the_rate_falls_below_the_minimum():
    config = load_config(overrides=[*TINY, "learning_rate_schedule=cosine", "max_iters=40", "run_test_every=10",
                                    "learning_rate_slope_range=30"])
    result = ZSSR(config, verbose=False).run(smooth_image(24, 24))
    # 1e-3 * (1 + cos(pi * k / 40)) / 2 is first below 9e-6 at k = 38: iterations 0..38 run.
    assert result.iterations == 39
    assert result.steps[0].learning_rate_drops == []
    assert [i for i, _ in result.steps[0].reconstruction_errors] == [0, 10, 20, 30]


def test_a_training_stopped_early_leaves_no_input_pipeline_running():
    import gc

    import tensorflow as tf

    gc.collect()
    # Pipelines another test still holds (e.g. in a kept traceback) are not this run's.
    before = {id(o) for o in gc.get_objects() if isinstance(o, tf.data.Iterator)}
    config = load_config(overrides=[*TINY, "learning_rate_schedule=cosine", "max_iters=40"])
    assert ZSSR(config, verbose=False).run(smooth_image(24, 24)).iterations < 40  # stopped by the schedule
    # Left to a later collection, its threads would run on, and at exit could hold the process up.
    assert not [o for o in gc.get_objects() if isinstance(o, tf.data.Iterator) and id(o) not in before]


@pytest.mark.parametrize("what", ["image", "gt", "kernel"])
def test_non_finite_inputs_are_refused_before_training(what):
    image, gt, kernel = smooth_image(16, 16), smooth_image(32, 32), gaussian_kernel(9, 1.0)
    {"image": image, "gt": gt, "kernel": kernel}[what][3, 4] = np.nan
    zssr = ZSSR(load_config("given_kernel", TINY), verbose=False)
    with pytest.raises(ZSSRError, match="NaN or infinite"):
        zssr.run(image, gt=gt, kernels=[kernel])
    assert zssr.model is None  # refused before any network was built


def test_non_finite_final_test_output_is_an_error(monkeypatch):
    import zssr_tf.trainer as trainer

    monkeypatch.setattr(trainer, "final_test", lambda *args: np.full((32, 32, 3), np.nan, np.float32))
    with pytest.raises(ZSSRError, match="final test .* NaN or infinite pixels, so there is no result"):
        ZSSR(load_config(overrides=TINY), verbose=False).run(smooth_image(16, 16))


def test_far_out_learning_rate_warns():
    from zssr_tf.errors import ZSSRWarning

    with pytest.warns(ZSSRWarning, match=r"learning_rate=0.5 is far outside .*1e-05 to 0.01"):
        ZSSR(load_config(overrides=TINY + ["learning_rate=0.5", "max_iters=1"]), verbose=False).run(smooth_image(16, 16))


def test_networks_with_nan_weights_give_an_error_not_an_image():
    from zssr_tf.inference.trained import TrainedZSSR
    from zssr_tf.model import build_zssr_net

    network = build_zssr_net(3, 8, 3)
    network.set_weights([np.full_like(w, np.nan) for w in network.get_weights()])
    with pytest.raises(ZSSRError, match="NaN or infinite pixels, so there is no result"):
        TrainedZSSR(load_config(overrides=TINY), [network], [None], [None]).super_resolve(smooth_image(16, 16))


def test_reapplying_networks_checks_the_image_first():
    from zssr_tf.inference.trained import TrainedZSSR
    from zssr_tf.model import build_zssr_net

    trained = TrainedZSSR(load_config(overrides=TINY), [build_zssr_net(3, 8, 3)], [None], [None])
    image = smooth_image(16, 16)
    image[3, 4, 1] = np.nan
    with pytest.raises(ZSSRError, match="the image has 1 NaN or infinite value"):  # not "training diverged"
        trained.super_resolve(image)
    with pytest.raises(ZSSRError, match="trained on 3-channel images"):
        trained.super_resolve(smooth_image(16, 16, channels=1))
    with pytest.raises(ZSSRError, match="too small for scale x2"):
        trained.super_resolve(smooth_image(5, 16))


def test_kernel_estimate_without_kernels_is_an_error_not_a_bicubic_run():
    blind = load_config("blind", TINY)
    with pytest.raises(ZSSRError, match="no kernels were passed.*estimate_kernel.*or set kernel=given"):
        ZSSR(blind, verbose=False).run(smooth_image(16, 16))
    # With the estimated kernels passed (as experiments/bench_blind.py does), the blind config trains.
    result = ZSSR(blind, verbose=False).run(smooth_image(16, 16), kernels=[gaussian_kernel(9, 1.2)])
    assert result.sr.shape == (32, 32, 3)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "float32"])
def test_only_mixed_precision_skips_a_non_finite_gradient_step(precision):
    # oneDNN's bf16 convolution gradients on CPU are sometimes NaN from finite inputs; under mixed
    # precision the optimizer must skip such a step instead of writing NaN into the weights.
    import keras
    import tensorflow as tf

    trainer = ZSSR(load_config(overrides=TINY[:-1] + [f"precision={precision}"]), verbose=False)
    optimizer = trainer._adam(1e-3, 0.9)
    weights = keras.Variable(np.ones(3, np.float32))
    optimizer.apply([tf.constant([np.nan, 1.0, 1.0])], [weights])
    if precision == "float32":  # no mixed precision, no skipping: the NaN reaches the weights
        assert np.isnan(weights.numpy()).any()
        return
    np.testing.assert_array_equal(weights.numpy(), np.ones(3))
    optimizer.apply([tf.constant([1.0, 1.0, 1.0])], [weights])
    assert np.all(np.isfinite(weights.numpy())) and np.all(weights.numpy() < 1)


@pytest.mark.slow
def test_ground_truth_scores_come_with_the_result_without_mlflow(tmp_path):
    """The Python API scores a run against its ground truth by itself: per test iteration, per
    step and at the end, with neither MLflow nor tracking imported."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from zssr_tf.config import load_config
        from zssr_tf.trainer import ZSSR
        y, x = np.mgrid[0:32, 0:32]
        gt = np.repeat((0.5 + 0.25 * np.sin(x / 3.0) * np.cos(y / 4.0))[..., None], 3, axis=2).astype(np.float32)
        lr = gt[::2, ::2].copy()
        config = load_config(overrides={TINY + ["max_iters=6", "gt_test_every=3",
                                                "scale_factors=[[1.5, 1.5], [2, 2]]"]!r})
        result = ZSSR(config, verbose=False).run(lr, gt=gt)
        print([[i for i, _ in s.gt_tests] for s in result.steps])
        print(sorted(result.steps[0].gt_tests[0][1]), sorted(result.steps[1].scores))
        print(result.metrics["zssr"] is result.steps[-1].scores, sorted(result.metrics))
        print(round(result.metrics["zssr"]["psnr"], 6), round(result.metrics["bicubic"]["psnr"], 6))
        print(sorted(m for m in sys.modules if m == "mlflow" or m.startswith(("mlflow.", "zssr_tf.tracking"))))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    iterations, keys, final, psnrs, imported = done.stdout.splitlines()
    assert iterations == "[[0, 3], [6, 9]]"  # global iterations: the second step starts at 6
    assert keys == "['psnr', 'ssim', 'true_error'] ['psnr', 'psnr_rgb', 'ssim']"
    assert final == "True ['bicubic', 'zssr']"
    zssr_psnr, bicubic_psnr = map(float, psnrs.split())
    assert 10 < bicubic_psnr < 60 and 10 < zssr_psnr < 60
    assert imported == "[]"


def test_ground_truth_test_under_direct_scores_the_final_tests_grid(shared_data_dir):
    from zssr_tf.callbacks import GroundTruthTest, ScaleStepCallback
    from zssr_tf.image_io import read_image
    from zssr_tf.inference.trained import final_test
    from zssr_tf.metrics import evaluate

    lr = read_image(shared_data_dir / "set5/lr_x2/baby.png")[0][100:148, 100:148]
    hr = read_image(shared_data_dir / "set5/hr/baby.png")[0][200:296, 200:296]
    config = load_config(overrides=TINY + ["kernel_alignment=direct", "output_flip=false", "max_iters=1"])
    kernel = gaussian_kernel(9, 1.2)

    class Steps(ScaleStepCallback):
        def on_scale_step_begin(self, step, predict):
            self.step = step

    steps = Steps()
    ZSSR(config, callbacks=[steps], verbose=False).run(lr, gt=hr, kernels=[kernel])
    step = steps.step
    # Under "direct" LR pixel i sits on HR pixel 2i: the interpolation passes through it there ...
    np.testing.assert_allclose(step.interpolated[::2, ::2], lr, atol=1e-5)
    assert step.bicubic_scores == evaluate(np.clip(step.interpolated, 0, 1), hr, (2.0, 2.0))
    # ... and the ground-truth test scores what the final test returns for the same network.
    identity = lambda batch: np.asarray(batch)  # noqa: E731  an untrained residual net's output
    psnr = GroundTruthTest(identity, step.interpolated, hr, (2.0, 2.0)).test()["psnr"]
    final = final_test(identity, config, lr, (2.0, 2.0), hr.shape[:2], step.kernel, 0)
    assert psnr == pytest.approx(evaluate(final, hr, (2.0, 2.0))["psnr"], abs=1e-9)
