"""pacing: a step's training ends at its deadline, measured on a fake clock (no real timing): a
cosine decay is re-targeted to end there without a jump in the rate, other schedules are stopped
there; and the deadline's shares between scale steps."""

import math
from types import SimpleNamespace

import keras
import pytest

from zssr_tf.callbacks import CosineLearningRate, StopAtMinLearningRate
from zssr_tf.pacing import FIT_HEADROOM, Deadline, PaceToDeadline, cosine_stop_phase


class FakeClock:
    """Seconds that advance only when an iteration (or a test) says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _train(pacer, schedule, clock, seconds_per_iteration, limit, test_every=0, test_seconds=0.0):
    """Call the hooks in `trainer.ZSSR._run_step`'s order, the clock advancing by
    `seconds_per_iteration(i)` each iteration and `test_seconds` more every `test_every` from 0.
    Returns (iterations run, the learning rate of each)."""
    model = SimpleNamespace(optimizer=keras.optimizers.Adam(1e-3), stop_training=False)
    stop = StopAtMinLearningRate(9e-6)
    callbacks = [c for c in (schedule, stop, pacer) if c is not None]
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    rates = []
    for batch in range(limit):
        for callback in callbacks:
            callback.on_train_batch_begin(batch)
        rates.append(float(model.optimizer.learning_rate))
        clock.now += seconds_per_iteration(batch) + (test_seconds if test_every and batch % test_every == 0 else 0)
        for callback in callbacks:
            callback.on_train_batch_end(batch)
        if model.stop_training:
            return batch + 1, rates
    return limit, rates


def _largest_jump(rates):
    return max(abs(a - b) for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("planned", [300, 1000])  # the plan thought the machine slower / faster than it is
def test_a_cosine_decay_is_retargeted_to_end_at_the_deadline(planned):
    clock = FakeClock()
    schedule = CosineLearningRate(planned)
    pacer = PaceToDeadline(62.5, schedule, cosine_stop_phase(1e-3, 9e-6), limit=4 * planned, clock=clock)
    ran, rates = _train(pacer, schedule, clock, lambda i: 0.125, 4 * planned)
    assert pacer.retargets and pacer.stopped_at is None  # the decay ended it, not the deadline
    assert 490 <= ran <= 500  # 0.125 s per iteration: 500 fit
    assert rates[-1] < 9e-6 < rates[-2]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    # Continuous: no step larger than the steepest of a plain cosine over the shorter length.
    assert _largest_jump(rates) <= 1e-3 * math.pi / 2 / min(planned, 500) * 1.2


def test_the_measured_speed_counts_the_periodic_tests_and_follows_a_slowdown():
    clock = FakeClock()
    schedule = CosineLearningRate(600)
    pacer = PaceToDeadline(90.0, schedule, cosine_stop_phase(1e-3, 9e-6), limit=2400, clock=clock)
    # 0.125 s per iteration plus a 1 s test every 50; twice as slow from iteration 300 on.
    ran, rates = _train(pacer, schedule, clock, lambda i: 0.125 if i < 300 else 0.25, 2400, test_every=50,
                        test_seconds=1.0)
    assert 88.0 <= clock.now <= 90.0
    assert rates[-1] < 2e-5  # the decay has (all but) ended: its end moved in with the slowdown
    assert pacer.retargets[-1][1] < 600 < pacer.retargets[0][1]


@pytest.mark.parametrize("schedule", [None, "policy"])
def test_other_schedules_are_stopped_at_the_deadline(schedule):
    clock = FakeClock()
    pacer = PaceToDeadline(12.5, None, limit=1000, clock=clock)
    ran, _ = _train(pacer, None, clock, lambda i: 0.125, 1000)
    assert pacer.stopped_at == ran - 1 and ran == 100 and not pacer.retargets


def test_no_stop_before_the_fewest_iterations():
    clock = FakeClock()
    clock.now = 5.0  # already late
    schedule = CosineLearningRate(200)
    pacer = PaceToDeadline(1.0, schedule, cosine_stop_phase(1e-3, 9e-6), min_iters=30, limit=800, clock=clock)
    ran, _ = _train(pacer, schedule, clock, lambda i: 0.125, 800)
    assert ran == 30 and pacer.stopped_at == 29


def test_the_fits_limit_bounds_the_retargeted_decay():
    clock = FakeClock()
    schedule = CosineLearningRate(100)
    pacer = PaceToDeadline(1000.0, schedule, cosine_stop_phase(1e-3, 9e-6), limit=400, clock=clock)
    ran, rates = _train(pacer, schedule, clock, lambda i: 0.125, 400)
    assert 395 <= ran <= 400 and rates[-1] < 3e-5  # the decay ends at the limit, not cut short in mid-rate


def test_retarget_keeps_the_rate_and_moves_the_end():
    schedule = CosineLearningRate(100)
    schedule.set_model(SimpleNamespace(optimizer=keras.optimizers.Adam(1e-3)))
    schedule.on_train_begin()
    assert schedule.phase(40) == pytest.approx(0.4)
    schedule.retarget(40, 160)
    assert schedule.phase(40) == pytest.approx(0.4) and schedule.phase(100) == pytest.approx(0.7)
    assert schedule.phase(160) == 1.0
    with pytest.raises(ValueError, match="must come after iteration 50"):
        schedule.retarget(50, 50)


def test_cosine_stop_phase():
    assert cosine_stop_phase(1e-3, 9e-6) == pytest.approx(0.9396, abs=1e-4)
    assert cosine_stop_phase(1e-3, 0.0) == cosine_stop_phase(1e-3, 2e-3) == 1.0


def test_the_deadline_shares_the_time_left_between_steps():
    deadline = Deadline(at=100.0, step_seconds=(10.0, 30.0), final_test=(2.0, 8.0), setup=5.0)
    # Step 1 at t=0: 100 - 10 (final tests) - 5 (step 2's set-up) = 85 s, a quarter of it.
    assert deadline.step_end(0, 0.0) == pytest.approx(85 / 4)
    assert deadline.step_end(1, 40.0) == pytest.approx(40 + 100 - 40 - 8)  # the last step: all that is left
    assert deadline.step_end(1, 99.0) == 99.0  # late: ends at once (the fewest iterations still run)


def _tiny_run(schedule: str, deadline: Deadline):
    import numpy as np

    from zssr_tf.config import load_config
    from zssr_tf.trainer import ZSSR

    config = load_config(overrides=["model.depth=3", "model.width=8", "max_iters=5", "run_test_every=2",
                                    "crop_size=16", "back_projection_iters=[1]", "progress_every=0",
                                    "scale_factors=[[1.5,1.5],[2,2]]", f"learning_rate_schedule={schedule}"])
    image = np.random.default_rng(0).random((20, 20, 3), np.float32)
    return ZSSR(config, verbose=False, deadline=deadline).run(image)


def test_the_trainer_paces_every_step():
    import time

    # A deadline already gone: every step stops at its fewest iterations.
    late = Deadline(at=time.perf_counter() - 1, step_seconds=(1.0, 1.0), final_test=(0.0, 0.0), min_iters=3)
    assert [s.iterations for s in _tiny_run("cosine", late).steps] == [3, 3]
    # One far away: the fit's limit is FIT_HEADROOM x max_iters, so max_iters (5) does not end a policy run.
    far = Deadline(at=time.perf_counter() + 3600, step_seconds=(1.0, 1.0), final_test=(0.0, 0.0))
    assert [s.iterations for s in _tiny_run("policy", far).steps] == [FIT_HEADROOM * 5] * 2
