import io
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from zssr_tf.callbacks import (CosineLearningRate, GroundTruthTest, IterationLogs, LearningRatePolicy, NonFiniteCheck,
                               ProgressLogger, ReconstructionTest, StopAtMinLearningRate, reconstruction_windows,
                               slope_and_std)
from zssr_tf.errors import ZSSRError
from zssr_tf.metrics import evaluate
from zssr_tf.model import build_zssr_net


@pytest.fixture
def model():
    net = build_zssr_net(depth=3, width=8)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_absolute_error")
    return net


def _lr(model) -> float:
    return float(model.optimizer.learning_rate)


def _drive(callback, model, error_at, iterations):
    """Call the hooks as `fit` does, logging `error_at(i)` as reconstruction_error every 50 iterations."""
    callback.set_model(model)
    callback.on_train_begin()
    for i in range(iterations):
        logs = {"reconstruction_error": error_at(i)} if i % 50 == 0 else {}
        callback.on_train_batch_end(i, logs)


def test_policy_drops_on_flat_curve_at_first_check(model):
    policy = LearningRatePolicy()
    _drive(policy, model, lambda i: 0.01 + 1e-4 * (-1) ** (i // 50), 300)
    assert policy.drops == [299]
    assert _lr(model) == pytest.approx(1e-4, rel=1e-6)


def test_policy_waits_min_iters_between_drops(model):
    policy = LearningRatePolicy()
    _drive(policy, model, lambda i: 0.01 + 1e-4 * (-1) ** (i // 50), 600)
    assert policy.drops == [299, 599]
    assert _lr(model) == pytest.approx(1e-5, rel=1e-6)


def test_policy_holds_on_falling_curve(model):
    noise = np.random.default_rng(0).normal(0, 1e-5, 600)
    policy = LearningRatePolicy()
    _drive(policy, model, lambda i: 1.0 - 1e-3 * i + noise[i], 600)
    assert policy.drops == []
    assert len(policy.test_errors) == 12
    assert _lr(model) == pytest.approx(1e-3, rel=1e-6)


def test_slope_and_std_on_noisy_line():
    x = np.arange(0, 500, 50, dtype=float)
    y = 2.0 - 3e-3 * x + np.random.default_rng(0).normal(0, 0.05, x.size)
    slope, std = slope_and_std(list(x), list(y))
    (expected_slope, _), cov = np.polyfit(x, y, 1, cov=True)
    assert slope == pytest.approx(expected_slope, rel=1e-9)
    assert std == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-9)
    residuals = y - np.polyval(np.polyfit(x, y, 1), x)
    textbook = np.sqrt(np.sum(residuals**2) / (x.size - 2) / np.sum((x - x.mean()) ** 2))
    assert std == pytest.approx(textbook, rel=1e-9)
    assert slope == pytest.approx(-3e-3, abs=3 * std)


def test_legacy_slope_std_scales_the_residuals_by_n_minus_4():
    x = np.arange(0, 250, 50, dtype=float)  # the policy's 5-point fit
    y = 0.01 - 1e-6 * x + np.random.default_rng(1).normal(0, 1e-4, x.size)
    slope, std = slope_and_std(x, y)
    legacy_slope, legacy_std = slope_and_std(x, y, legacy=True)
    residuals = y - np.polyval(np.polyfit(x, y, 1), x)
    # NumPy < 1.16: covariance = inv(V'V) * sum(residuals^2) / (n - deg - 3).
    old_numpy = np.sqrt(np.sum(residuals**2) / (x.size - 4) / np.sum((x - x.mean()) ** 2))
    assert legacy_slope == slope
    assert legacy_std == pytest.approx(old_numpy, rel=1e-9)
    assert legacy_std == pytest.approx(np.sqrt(3) * std, rel=1e-9)
    with pytest.raises(ValueError, match="at least 5 points"):
        slope_and_std(x[:4], y[:4], legacy=True)


def test_legacy_slope_std_drops_where_the_current_one_holds(model):
    # A falling curve whose slope is between 1 and sqrt(3) standard errors times the ratio.
    wiggle = [0.0, 2e-5, -2e-5, 0.0, 0.0, 0.0]
    curve = lambda i: 0.01 - 5e-8 * i + wiggle[(i // 50) % 6]  # noqa: E731
    x = np.arange(50, 300, 50)
    slope, std = slope_and_std(x, [curve(i) for i in x])
    assert std < -1.5 * slope < np.sqrt(3) * std
    current, legacy = LearningRatePolicy(), LearningRatePolicy(legacy_slope_std=True)
    _drive(current, model, curve, 300)
    assert current.drops == []
    _drive(legacy, model, curve, 300)
    assert legacy.drops == [299]


def test_cosine_learning_rate_decays_to_zero_over_total(model):
    schedule = CosineLearningRate(total=100)
    schedule.set_model(model)
    schedule.on_train_begin()
    rates = []
    for batch in range(101):
        schedule.on_train_batch_begin(batch)
        rates.append(_lr(model))
    assert rates[0] == pytest.approx(1e-3, rel=1e-6)
    assert rates[50] == pytest.approx(5e-4, rel=1e-5)
    assert rates[100] == pytest.approx(0, abs=1e-12)
    assert all(a > b for a, b in zip(rates[:100], rates[1:]))
    # The default minimum learning rate (9e-6) is reached in the last ~6% of the iterations.
    assert next(i for i, r in enumerate(rates) if r < 9e-6) == 94


def test_cosine_learning_rate_also_decays_a_discriminator_from_its_own_rate():
    gan = SimpleNamespace(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(4e-4))
    schedule = CosineLearningRate(total=100)
    schedule.set_model(gan)
    schedule.on_train_begin()
    schedule.on_train_batch_begin(50)
    assert float(gan.optimizer.learning_rate) == pytest.approx(5e-4, rel=1e-5)
    assert float(gan.discriminator_optimizer.learning_rate) == pytest.approx(2e-4, rel=1e-5)


def test_policy_fits_at_least_three_tests(model):
    # slope_range // run_test_every = 2 tests would make np.polyfit(cov=True) fail: the policy waits for 3.
    policy = LearningRatePolicy(check_every=10, min_iters=0, slope_range=100, run_test_every=50)
    _drive(policy, model, lambda i: 0.01 + 1e-4 * (-1) ** (i // 50), 200)
    assert policy.drops[0] == 109  # tests at 0, 50, 100: the first check after them drops on a flat curve


def test_reconstruction_windows_auto_full_when_small_and_fixed_crops_when_large():
    assert reconstruction_windows((256, 256), "auto", 512 * 512) is None
    assert reconstruction_windows((2000, 3000), "full", 512 * 512) is None
    windows = reconstruction_windows((2000, 3000), "auto", 512 * 512, seed=3)
    assert windows == reconstruction_windows((2000, 3000), "crops", 512 * 512, seed=3)
    assert len(windows) == 4 and sum(h * w for _, _, h, w in windows) <= 512 * 512
    assert all(0 <= t and t + h <= 2000 and 0 <= l and l + w <= 3000 for t, l, h, w in windows)
    assert windows != reconstruction_windows((2000, 3000), "crops", 512 * 512, seed=4)
    # A forced crop test on a small image: one crop of the whole short side.
    assert [w[2:] for w in reconstruction_windows((100, 180), "crops", 512 * 512)] == [(100, 100)]
    # A budget below one 256x256 crop: one crop of sqrt(budget) per side.
    assert [w[2:] for w in reconstruction_windows((1000, 1000), "auto", 100 * 100)] == [(100, 100)]
    with pytest.raises(ValueError, match="not one of"):
        reconstruction_windows((10, 10), "some")


def test_reconstruction_error_on_crops_equals_the_whole_image_error_there():
    keras.utils.set_random_seed(0)
    # A residual as large as the input, so zero padding at a crop's border shows in the error.
    net = build_zssr_net(depth=3, width=8, init_variance=2.0)
    rng = np.random.default_rng(0)
    lr_image = rng.random((90, 120, 3)).astype(np.float32)
    son = np.clip(lr_image + rng.normal(0, 0.05, lr_image.shape), 0, 1).astype(np.float32)
    predict = lambda batch: net(batch, training=False).numpy()  # noqa: E731
    windows = [(0, 0, 40, 40), (50, 80, 40, 40), (20, 30, 40, 40)]
    whole = np.clip(predict(son[None])[0], 0, 1)
    expected = np.mean([np.square(whole[t:t + h, l:l + w] - lr_image[t:t + h, l:l + w]) for t, l, h, w in windows])
    on_crops = ReconstructionTest(predict, lr_image, son, 50, windows, margin=3).error()
    assert on_crops == pytest.approx(expected, rel=1e-5)
    # Without context around each crop the border pixels see zero padding instead: a different error.
    no_margin = ReconstructionTest(predict, lr_image, son, 50, windows, margin=0).error()
    assert abs(no_margin - expected) > 1e-4 * expected
    full = ReconstructionTest(predict, lr_image, son, 50).error()
    assert full == pytest.approx(float(np.mean(np.square(whole - lr_image))), rel=1e-6)


def test_stop_at_min_learning_rate(model):
    stopper = StopAtMinLearningRate(9e-6)
    stopper.set_model(model)
    stopper.on_train_begin()
    model.optimizer.learning_rate.assign(1e-5)
    stopper.on_train_batch_end(3)
    assert not model.stop_training and stopper.stopped_at is None
    model.optimizer.learning_rate.assign(1e-6)
    stopper.on_train_batch_end(4)
    assert model.stop_training and stopper.stopped_at == 4


def test_iteration_logs(model):
    callback = IterationLogs(100)
    callback.set_model(model)
    model.optimizer.learning_rate.assign(3e-4)
    for batch in (0, 7):
        logs = {"loss": 0.5}
        callback.on_train_batch_end(batch, logs)
        assert logs["iteration"] == 100 + batch
        assert logs["learning_rate"] == pytest.approx(3e-4, rel=1e-6)


def test_progress_logger(model):
    stream = io.StringIO()
    logger = ProgressLogger(every=10, stream=stream)
    logger.set_model(model)
    logger.on_train_begin()
    for batch in range(25):
        logger.on_train_batch_end(batch, {"loss": 0.25 + batch / 1000, "learning_rate": 1e-3})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for line, batch in zip(lines, (0, 10, 20)):
        assert f"iter {batch:5d}" in line
        assert f"loss {0.25 + batch / 1000:.4f}" in line
        assert "lr 1e-03" in line


def test_progress_logger_silent_when_every_is_zero(model):
    stream = io.StringIO()
    logger = ProgressLogger(every=0, stream=stream)
    logger.set_model(model)
    logger.on_train_begin()
    for batch in range(25):
        logger.on_train_batch_end(batch, {"loss": 0.25, "learning_rate": 1e-3})
    assert stream.getvalue() == ""


class _DivideLearningRate(keras.callbacks.Callback):
    """Divides the learning rate by 10 after every 5th batch and counts the batches run."""

    def on_train_begin(self, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (batch + 1) % 5 == 0:
            self.model.optimizer.learning_rate.assign(float(self.model.optimizer.learning_rate) / 10)


def test_fit_stops_at_min_learning_rate(model):
    pairs = np.random.default_rng(0).random((2, 4, 16, 16, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((pairs[0], pairs[1])).batch(1).repeat()
    divider, stopper = _DivideLearningRate(), StopAtMinLearningRate(9e-6)
    model.fit(dataset, epochs=1, steps_per_epoch=1000, shuffle=False, verbose=0,
              callbacks=[IterationLogs(), divider, stopper])
    # Drops after batches 4, 9, 14: 1e-3 -> 1e-6, so batch 14 is the last one run.
    assert stopper.stopped_at == 14
    assert divider.batches == 15
    assert _lr(model) == pytest.approx(1e-6, rel=1e-5)


def test_progress_lines_show_psnr_elapsed_time_and_an_eta_bounded_by_the_cap(model, monkeypatch):
    now = [0.0]  # seconds; 2 iterations per second below
    monkeypatch.setattr("zssr_tf.callbacks.time", SimpleNamespace(perf_counter=lambda: now[0]))
    stream = io.StringIO()
    logger = ProgressLogger(every=10, max_iters=100, stream=stream)
    logger.set_model(model)
    logger.on_train_begin()
    for batch in range(21):
        now[0] = batch / 2
        logs = {"loss": 0.25, "learning_rate": 1e-3}
        if batch % 10 == 0:
            logs.update(reconstruction_error=1e-3, psnr=30.0 + batch / 10)
        logger.on_train_batch_end(batch, logs)
    lines = stream.getvalue().splitlines()
    assert "PSNR 30.00 dB" in lines[0] and "ETA" not in lines[0]  # no rate yet at iteration 0
    # At iteration 20, 20 iterations took 10 s: 2 it/s, 79 iterations left at most.
    assert "PSNR 32.00 dB" in lines[2] and "2.0 it/s" in lines[2]
    assert "elapsed 00:10" in lines[2] and "ETA <= 00:39" in lines[2]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(model):
    stream = _Terminal()
    logger = ProgressLogger(every=10, label="[step 1/1 x2] ", max_iters=30, stream=stream)
    logger.set_model(model)
    logger.on_train_begin()
    for batch in range(30):
        logger.on_train_batch_end(batch, {"loss": 0.25, "learning_rate": 1e-3, "psnr": 31.5})
    logger.on_train_end()
    shown = stream.getvalue()
    assert "\r" in shown and "30/30" in shown and "[step 1/1 x2]" in shown and "PSNR 31.50 dB" in shown
    assert "iter " not in shown  # the bar replaces the progress lines


@pytest.mark.parametrize("key, bad", [("loss", float("nan")), ("loss", float("inf")),
                                      ("reconstruction_error", float("nan"))])
def test_non_finite_check_stops_at_the_first_bad_value(model, key, bad):
    check = NonFiniteCheck(iteration_offset=100)
    check.set_model(model)
    check.on_train_begin()
    for i in range(3):  # huge but finite values pass: only NaN/inf is certain divergence
        check.on_train_batch_end(i, {"loss": 1e13, "reconstruction_error": 0.1})
    with pytest.raises(ZSSRError, match=r"training diverged: .* at iteration 103 \(learning rate 0.001\).*"
                                        r"Lower train.learning_rate"):
        check.on_train_batch_end(3, {"loss": 0.1, key: bad})


def test_ground_truth_test_puts_its_scores_into_the_logs_of_its_iterations(model):
    rng = np.random.default_rng(0)
    gt = rng.random((24, 24, 3), dtype=np.float32)
    interpolated = np.clip(gt + rng.normal(0, 0.05, gt.shape).astype(np.float32), 0, 1)
    identity = lambda batch: np.asarray(batch)  # noqa: E731  an untrained residual net's output
    test = GroundTruthTest(identity, interpolated, gt, (2.0, 2.0), every=3)
    test.set_model(model)
    test.on_train_begin()
    logged = []
    for batch in range(7):
        logs = {"loss": 0.1}
        test.on_train_batch_end(batch, logs)
        logged.append(logs)
    assert [i for i, logs in enumerate(logged) if "psnr" in logs] == [0, 3, 6] == test.iterations
    scores = logged[0]
    assert set(scores) == {"loss", "psnr", "ssim", "true_error"}
    expected = evaluate(interpolated, gt, (2.0, 2.0))
    assert scores["psnr"] == pytest.approx(expected["psnr"]) and scores["ssim"] == pytest.approx(expected["ssim"])
    assert scores["true_error"] == pytest.approx(float(np.mean((interpolated - gt) ** 2)))
    assert test.scores == [{k: v for k, v in logs.items() if k != "loss"} for logs in logged[::3]]
    never = GroundTruthTest(identity, interpolated, gt, (2.0, 2.0), every=0)
    never.on_train_begin()
    logs = {}
    never.on_train_batch_end(0, logs)
    assert logs == {} and never.iterations == []
