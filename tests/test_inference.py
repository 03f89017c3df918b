"""A trained ZSSR outside its training: the scale-step plan, saving and re-applying networks."""

import numpy as np
import pytest

from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.inference.plan import plan_scale_steps
from zssr_tf.inference.trained import TrainedZSSR
from zssr_tf.kernels import gaussian_kernel
from zssr_tf.trainer import ZSSR

TINY = ["init_weights=none", "model.depth=3", "model.width=8", "max_iters=4", "run_test_every=2", "learning_rate_slope_range=6",
        "crop_size=16", "back_projection_iters=[1]", "progress_every=0", "precision=float32"]


@pytest.mark.parametrize("overrides, expected", [
    ([], (40, 60)),
    (["scale_factors=[[1.5, 1.5], [2, 2]]"], (40, 60)),
    (["scale_factors=[[2, 2], [4, 4]]", "base_change_sfs=[[2, 2]]"], (80, 120)),
    (["scale_factors=[[1.5, 2]]"], (30, 60)),
    (["scale_factors=[[3, 3]]"], (60, 90)),
])
def test_the_plan_ends_at_the_final_output_size(overrides, expected):
    assert plan_scale_steps((20, 30), load_config(overrides=overrides))[-1].output_shape == expected


def test_without_a_base_change_every_step_upscales_the_input():
    plan = plan_scale_steps((20, 30), load_config(overrides=["scale_factors=[[1.5, 1.5], [2, 2]]",
                                                               "back_projection_iters=[3, 4]"]))
    assert [(p.relative_sf, p.base_index, p.input_shape, p.output_shape, p.changes_base, p.back_projection_iters)
            for p in plan] == [((1.5, 1.5), None, (20, 30), (30, 45), False, 3),
                               ((2.0, 2.0), None, (20, 30), (40, 60), False, 4)]


def test_after_a_base_change_steps_upscale_that_output_by_the_rest_of_the_factor():
    plan = plan_scale_steps((11, 13), load_config(overrides=[
        "scale_factors=[[1.5, 1.5], [2, 2], [4, 4]]", "base_change_sfs=[[1.5, 1.5]]"]))
    assert [p.changes_base for p in plan] == [True, False, False]
    assert [p.base_index for p in plan] == [None, 0, 0]
    assert plan[0].output_shape == (17, 20)  # 16.5 and 19.5 rounded up
    assert [p.input_shape for p in plan[1:]] == [(17, 20), (17, 20)]
    assert plan[1].relative_sf == pytest.approx((4 / 3, 4 / 3)) and plan[2].relative_sf == pytest.approx((8 / 3, 8 / 3))
    assert plan[2].output_shape == (46, 54)  # 17 * 8/3 = 45.3, 20 * 8/3 = 53.3, rounded up


def smooth_image(h: int, w: int, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(x / 3.0) * np.cos(y / 4.0)
    return np.repeat(base[..., None], channels, axis=2).astype(np.float32)


def test_a_saved_and_loaded_trained_zssr_gives_the_pixels_of_the_training(tmp_path):
    config = load_config("given_kernel", TINY + ["scale_factors=[[1.5, 1.5], [2, 2]]", "base_change_sfs=[[1.5, 1.5]]",
                                                 "back_projection_iters=[1]"])
    image = smooth_image(18, 20)
    result = ZSSR(config, verbose=False).run(image, kernels=[gaussian_kernel(9, 1.2), gaussian_kernel(9, 1.0)])
    trained = result.trained
    # Each step keeps its own network: the second step trained the first one's further.
    assert trained.networks[0] is not trained.networks[1]
    assert not all(np.array_equal(a, b) for a, b in zip(trained.networks[0].get_weights(),
                                                         trained.networks[1].get_weights()))
    np.testing.assert_allclose(trained.super_resolve(image), result.sr, atol=1e-6)

    trained.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "step_0.keras", "step_0_kernel.npy", "step_0_kernel_symmetries.npy",
        "step_1.keras", "step_1_kernel.npy", "step_1_kernel_symmetries.npy"]
    loaded = TrainedZSSR.load(tmp_path / "model", config)
    assert loaded.symmetries == trained.symmetries
    for ours, theirs in zip(loaded.kernels, trained.kernels):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(loaded.super_resolve(image), trained.super_resolve(image))


def test_a_bicubic_run_saves_no_kernel_files_and_a_missing_step_is_named(tmp_path):
    config = load_config(overrides=TINY + ["scale_factors=[[1.5, 1.5], [2, 2]]"])
    trained = ZSSR(config, verbose=False).run(smooth_image(16, 16)).trained
    assert trained.kernels == [None, None] and trained.symmetries == [None, None]
    trained.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0.keras", "step_1.keras"]
    (tmp_path / "step_1.keras").unlink()
    with pytest.raises(ZSSRError, match=r"no trained network for scale step\(s\) \[1\]"):
        TrainedZSSR.load(tmp_path, config)
