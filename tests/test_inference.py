"""A trained ZSSR outside its training: the scale-step plan, saving and re-applying networks."""

import pytest

from zssr_tf.config import load_config
from zssr_tf.inference.plan import plan_scale_steps


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
