"""Kernel estimation (KernelGAN): networks, kernel extraction, constraints, schedule, post-processing."""

import re
import warnings

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage, signal

from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.kernel_estimation import constraints as C
from zssr_tf.kernel_estimation.crops import (FlatImageWarning, crop_probability, draw_top_lefts, gradient_map,
                                             sample_crop_positions)
from zssr_tf.kernel_estimation.estimator import (BicubicPhaseWarning, KernelEstimationError, KernelEstimationHistory,
                                                 KernelEstimationWarning, RunRecord, check_and_post_process,
                                                 estimate_kernel, runs_agree)
from zssr_tf.kernel_estimation.files import write_kernel_files
from zssr_tf.kernel_estimation.inputs import prepare_image
from zssr_tf.kernel_estimation.networks import (build_linear_generator, build_patch_discriminator,
                                                downscale_with_generator_kernel, extract_kernel, generate)
from zssr_tf.kernel_estimation.postprocess import (analytic_x4_kernel, average_kernels, post_process,
                                                   scale_kernel_variance, trim_negligible_border,
                                                   zero_negligible_taps)
from zssr_tf.kernel_estimation.schedule import ConstraintSchedule
from zssr_tf.kernel_estimation.strided import correlate_stride2
from zssr_tf.kernels import (bicubic_kernel, gaussian_kernel, kernel_distance, kernel_variances, load_kernel,
                              recenter_kernel)


def _random_images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_generator_discriminator_and_kernel_shapes():
    generator = build_linear_generator(seed=0)
    generated = generate(generator, tf.constant(_random_images((1, 64, 64, 3))))
    assert generated.shape == (1, 26, 26, 3)
    assert build_patch_discriminator(seed=0)(generated, training=True).shape == (1, 20, 20, 1)
    assert extract_kernel(generator).shape == (13, 13)


def test_extracted_kernel_reproduces_the_generator():
    # A large init gain gives the random linear net outputs of order 0.1, so 1e-5 is a real bound.
    generator = build_linear_generator(init_gain=1.0, seed=3)
    images = _random_images((1, 64, 64, 3), seed=1)
    generated = generate(generator, tf.constant(images)).numpy()[0]
    kernel = extract_kernel(generator).numpy().astype(np.float64)
    assert np.abs(generated).max() > 0.01
    for channel in range(3):
        # Valid correlation output j covers input rows j..j+12 = scipy's same-size output j+6.
        full = ndimage.correlate(images[0, :, :, channel].astype(np.float64), kernel, mode="constant")
        np.testing.assert_allclose(generated[:, :, channel], full[6:58:2, 6:58:2], atol=1e-5)
    fast = downscale_with_generator_kernel(tf.constant(images), tf.constant(kernel, tf.float32)).numpy()[0]
    np.testing.assert_allclose(fast, generated, atol=1e-5)


def test_gradients_through_the_kernel_equal_gradients_through_the_layers():
    generator = build_linear_generator(width=8, init_gain=1.0, seed=5)
    images = tf.constant(_random_images((1, 32, 32, 3), seed=2))
    # Compiled with XLA: oneDNN's filter gradient of G's layers aborts the process on some Intel
    # CPUs with AMX (training never takes that path; it trains through the kernel).
    @tf.function(jit_compile=True)
    def gradients():
        with tf.GradientTape(persistent=True) as tape:
            by_layers = tf.reduce_sum(tf.square(generate(generator, images)))
            by_kernel = tf.reduce_sum(tf.square(downscale_with_generator_kernel(images, extract_kernel(generator))))
        return (tape.gradient(by_layers, generator.trainable_variables),
                tape.gradient(by_kernel, generator.trainable_variables))

    for a, b in zip(*gradients()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-6 * float(tf.reduce_max(tf.abs(a))))


def _delta_response(generator):
    """G's kernel the direct way: a delta through its layers without the stride, flipped."""
    size = sum(layer.kernel.shape[0] - 1 for layer in generator.layers) + 1
    x = tf.pad(tf.ones((1, 1, 1, 1)), [[0, 0], [size - 1, size - 1], [size - 1, size - 1], [0, 0]])
    for layer in generator.layers:
        x = tf.nn.conv2d(x, layer.kernel, 1, "VALID")
    return tf.reverse(x[0, :, :, 0], [0, 1])


@pytest.mark.parametrize("structure", [(7, 5, 3, 1, 1, 1), (3, 3, 3), (5, 3, 1), (1, 7, 1, 3), (3, 9), (11,)])
def test_composed_kernel_and_its_gradients_equal_a_delta_through_the_layers(structure):
    generator = build_linear_generator(structure, width=16, init_gain=1.0, seed=sum(structure))
    size = sum(structure) - len(structure) + 1
    tap_weights = tf.reshape(tf.range(size * size, dtype=tf.float32), (size, size))
    with tf.GradientTape(persistent=True) as tape:
        composed, direct = extract_kernel(generator), _delta_response(generator)
        # Nonlinear and different for every tap, so that a tap in the wrong place shows.
        losses = [tf.reduce_sum(tf.sin(3 * k) * tap_weights) for k in (composed, direct)]
    assert composed.shape == (size, size)
    scale = float(tf.reduce_max(tf.abs(direct)))
    assert scale > 0.01
    np.testing.assert_allclose(composed.numpy(), direct.numpy(), atol=1e-6 * scale)
    for a, b in zip(*(tape.gradient(loss, generator.trainable_variables) for loss in losses)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5 * float(tf.reduce_max(tf.abs(b))))


def _correlate_subsample(image, kernel, step):
    return signal.correlate2d(image, kernel, mode="valid")[::step, ::step]


def test_analytic_x4_kernel_is_x2_twice():
    rng = np.random.default_rng(4)
    k2 = rng.random((7, 7))
    k2 /= k2.sum()
    image = rng.random((80, 80))
    twice = _correlate_subsample(_correlate_subsample(image, k2, 2), k2, 2)
    once = _correlate_subsample(image, analytic_x4_kernel(k2, crop=False), 4)
    assert analytic_x4_kernel(k2, crop=False).shape == (19, 19)
    n = min(twice.shape[0], once.shape[0])
    np.testing.assert_allclose(once[:n, :n], twice[:n, :n], atol=1e-12)
    cropped = analytic_x4_kernel(k2)
    assert cropped.shape == (13, 13) and cropped.sum() == pytest.approx(1.0)
    assert analytic_x4_kernel(np.ones((17, 17)) / 289).shape == (33, 33)


def test_post_processing_is_non_negative_and_centred():
    rng = np.random.default_rng(7)
    raw = gaussian_kernel(13, 1.5, 0.8, 0.4) + rng.normal(0, 0.002, (13, 13))
    raw = np.roll(raw, (1, -2), axis=(0, 1))  # off-centre
    cleaned = zero_negligible_taps(raw, keep=40)
    assert cleaned.min() >= 0 and cleaned.sum() == pytest.approx(1.0)
    assert np.count_nonzero(cleaned) >= 41
    shifted = recenter_kernel(cleaned, 2)
    wanted = shifted.shape[0] // 2 + 0.5 * (2 - shifted.shape[0] % 2)
    np.testing.assert_allclose(ndimage.center_of_mass(shifted), (wanted, wanted), atol=0.05)
    assert shifted.shape[0] > 13
    np.testing.assert_array_equal(post_process(raw), shifted)


def _second_moments(kernel):
    """(var_y, var_x, cov_yx) in px^2 of a kernel with sum 1."""
    y, x = np.mgrid[:kernel.shape[0], :kernel.shape[1]]
    cy, cx = ndimage.center_of_mass(kernel)
    return np.array([np.sum(kernel * (y - cy) ** 2), np.sum(kernel * (x - cx) ** 2),
                     np.sum(kernel * (y - cy) * (x - cx))])


def test_average_of_kernels_is_centred_and_averages_their_moments():
    # Two estimates of an isotropic blur, one too tall and one too wide, sitting a fraction of a
    # pixel apart: their mean has the mean second moments (they are linear in the taps once
    # both are centred), i.e. it is round again, at the x2 block centre.
    tall = ndimage.shift(gaussian_kernel(15, 1.8, 1.2, 0.0), (0.3, -0.4), order=3)
    wide = gaussian_kernel(13, 1.2, 1.8, 0.0)
    mean = average_kernels([tall, wide])
    assert mean.sum() == pytest.approx(1.0, abs=1e-3)
    wanted = mean.shape[0] // 2 + 0.5
    np.testing.assert_allclose(ndimage.center_of_mass(mean), (wanted, wanted), atol=0.02)
    expected = (_second_moments(tall / tall.sum()) + _second_moments(wide)) / 2
    np.testing.assert_allclose(_second_moments(mean / mean.sum()), expected, atol=0.03)
    assert abs(_second_moments(mean)[0] - _second_moments(mean)[1]) < 0.03
    # The paddings of the centrings (23 x 23 before trimming) are cut back to the inputs' size.
    assert mean.shape[0] <= tall.shape[0]
    # One kernel: itself at the block centre, less the outer ring of spline ringing.
    alone, recentred = average_kernels([wide]), recenter_kernel(wide, 2)
    assert alone.shape == (15, 15) and recentred.shape == (17, 17)
    np.testing.assert_allclose(alone, recentred[1:-1, 1:-1], atol=2e-5)
    with pytest.raises(ValueError, match="odd"):
        average_kernels([np.ones((4, 4)) / 16])


def test_trimming_a_kernel_cuts_only_rings_that_hold_almost_nothing():
    core = gaussian_kernel(9, 1.5, 0.8, 0.4)
    padded = np.pad(core, 4)
    padded[0, 0] = padded[-1, 5] = 1e-6  # ringing in the outer ring
    trimmed = trim_negligible_border(padded)
    np.testing.assert_allclose(trimmed, core, atol=1e-5)
    assert trimmed.sum() == pytest.approx(padded.sum(), abs=1e-12)
    # A ring holding more than the fraction stays, and so does everything inside it.
    padded[2, 8] = 0.01
    assert trim_negligible_border(padded).shape == (13, 13)
    # The middle tap stays the middle one; nothing is cut below 3 x 3.
    assert trim_negligible_border(np.pad([[1.0]], 3)).shape == (3, 3)
    with pytest.raises(ValueError, match="square"):
        trim_negligible_border(np.ones((5, 7)))


def test_scaling_a_kernels_variance_keeps_its_gaussian_shape_and_orientation():
    wide = gaussian_kernel(17, 1.6, 0.9, 0.4)
    narrow = scale_kernel_variance(wide, 0.5)
    # The Gaussian of half the covariance, moved to the x2 block centre like every estimate.
    np.testing.assert_allclose(narrow, recenter_kernel(gaussian_kernel(17, 1.6 / np.sqrt(2), 0.9 / np.sqrt(2), 0.4), 2),
                               atol=1e-12)
    np.testing.assert_allclose(kernel_variances(narrow), np.array(kernel_variances(wide)) / 2, rtol=1e-3)
    np.testing.assert_allclose(scale_kernel_variance(wide, 1.0), recenter_kernel(wide / wide.sum(), 2), atol=1e-15)
    for factor in (0, 1.5):
        with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
            scale_kernel_variance(wide, factor)
    with pytest.raises(ValueError, match="no positive taps"):
        scale_kernel_variance(-wide, 0.5)


def test_several_estimation_runs_average_the_runs_seeded_one_after_another(shared_data_dir, monkeypatch):
    # The GAN itself is tested elsewhere; here the runs' seeds, iteration count and averaging.
    def one_run(image, config, seed, callback):
        assert image.min() >= -1 and image.max() <= 1  # prepared once, [-1, 1]
        for i in range(4 if callback else 0):
            callback(i, {"g_loss": float(seed)})
        return post_process(gaussian_kernel(13, 1.0 + 0.2 * seed, 1.5, 0.3)), KernelEstimationHistory(
            values={"g_loss": [float(seed)] * 4}, raw_kernel=np.full((13, 13), seed), seconds=1.0, iterations=4)

    monkeypatch.setattr("zssr_tf.kernel_estimation.estimator._estimate_once", one_run)
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    seen = []
    kernel, history = estimate_kernel(lr, load_config("blind", ["estimation_iters=4", "estimation_runs=3", "seed=5"]),
                                      callback=lambda i, values: seen.append((i, values["g_loss"])))
    assert seen == [(i, float(5 + i // 4)) for i in range(12)]
    assert history.iterations == 12 and history.runs_averaged == 3 and history.seconds > 0
    assert history.values["g_loss"] == [v for _, v in seen] and history.raw_kernel[0, 0] == 5
    runs = [one_run(np.zeros((1, 1, 3)), None, seed, None)[0] for seed in (5, 6, 7)]
    np.testing.assert_allclose(kernel, average_kernels(runs))
    single, _ = estimate_kernel(lr, load_config("blind", ["seed=5", "estimation_runs=1"]))
    np.testing.assert_array_equal(single, runs[0])
    narrowed, _ = estimate_kernel(lr, load_config("blind", ["seed=5", "estimation_runs=1", "estimate_variance_scale=0.5"]))
    np.testing.assert_allclose(narrowed, scale_kernel_variance(runs[0], 0.5))


@pytest.mark.parametrize("failing, survivors", [({6}, (5, 7)), ({5, 6, 7}, ())])
def test_a_collapsed_run_is_left_out_of_the_average(shared_data_dir, monkeypatch, failing, survivors):
    def one_run(image, config, seed, callback):
        callback(0, {"g_loss": 0.0})  # one iteration each, kept or not
        if seed in failing:
            raise KernelEstimationError(f"the estimated kernel collapsed (seed {seed})")
        return post_process(gaussian_kernel(13, 1.0 + 0.2 * seed, 1.5, 0.3)), KernelEstimationHistory(
            values={"g_loss": [0.0]}, raw_kernel=np.ones((13, 13)), seconds=1.0, iterations=1)

    monkeypatch.setattr("zssr_tf.kernel_estimation.estimator._estimate_once", one_run)
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    config = load_config("blind", ["estimation_runs=3", "seed=5"])
    with pytest.warns(KernelEstimationWarning, match=r"run 2 of 3 \(seed 6\) failed and is left out"):
        if not survivors:
            with pytest.raises(KernelEstimationError, match="all 3 kernel estimation runs failed.*seed 7"):
                estimate_kernel(lr, config)
            return
        kernel, history = estimate_kernel(lr, config)
    np.testing.assert_allclose(kernel, average_kernels([one_run(None, None, seed, lambda *_: None)[0]
                                                        for seed in survivors]))
    assert history.iterations == 3 and history.runs_averaged == 2


@pytest.mark.slow
@pytest.mark.parametrize("schedule, warning", [
    (["bicubic_similar_threshold=1e-12"], "never left its bicubic phase"),
    # similar to bicubic at iteration 3 (three losses under the threshold); then 5 -> 0.05 -> 5e-4 at the
    # decays of iterations 200 and 400
    (["bicubic_similar_threshold=1e9"], "switched on: the bicubic weight was still 5e+00 (they start under 0.005, "
                                        "by iteration 400 here)"),
    (["bicubic_similar_threshold=1e9", "bicubic_min_weight=0.01"], None),  # never switched on by these settings
    (["bicubic_similar_threshold=1e9", "bicubic_decay_every=1", "bicubic_decay_factor=1e6"], None),
])
def test_a_run_still_tied_to_the_bicubic_target_is_a_warning(shared_data_dir, schedule, warning):
    # 5 iterations: the bicubic phase never ends; it ends but the weight is still decaying; the
    # settings never switch the constraints on (no advice to give); the weight falls under the
    # switch at the first decay.
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    config = load_config("blind", ["estimation_iters=5", "estimation_runs=1", "estimation_shave=0", "generator_width=8",
                                   "patch_discriminator_width=8", "bicubic_target=channel_sum", *schedule])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimate_kernel(lr, config)
        except KernelEstimationError:
            pass  # 5 iterations leave the raw kernel near 0; the warning comes first
    phase = [str(w.message) for w in caught if issubclass(w.category, BicubicPhaseWarning)]
    assert len(phase) == (warning is not None)
    if warning is not None:
        assert warning in phase[0]
    if warning == "never left its bicubic phase":
        assert "per_channel" in phase[0]


def test_constraint_values_on_hand_made_kernels():
    delta = np.zeros((13, 13), np.float32)
    delta[6, 6] = 1
    delta = tf.constant(delta)
    assert float(C.centralization_loss(delta, C.kernel_centre(13, 2))) == pytest.approx(0.25)
    assert float(C.sum_to_one_loss(delta)) == 0
    assert float(C.sum_to_one_loss(2 * delta)) == pytest.approx(1.0)
    mask = C.boundary_mask(13)
    assert np.all(mask[2:11, 2:11] == 0)
    ring = mask[np.pad(np.zeros((9, 9), bool), 2, constant_values=True)]
    assert ring.min() == pytest.approx(2.14, abs=0.01) and ring.max() == pytest.approx(5.76, abs=0.01)
    assert float(C.boundaries_loss(delta, tf.constant(mask))) == 0
    corner = np.zeros((13, 13), np.float32)
    corner[0, 0] = 1
    assert float(C.boundaries_loss(tf.constant(corner), tf.constant(mask))) == pytest.approx(mask[0, 0] / 169)
    assert float(C.sparsity_loss(delta)) == pytest.approx((1 + 168 * 1e-8**0.2) / 169, rel=1e-4)


def test_bicubic_targets_per_channel_and_channel_sum():
    flat = np.ones((1, 64, 64, 3), np.float32) * np.array([0.1, 0.2, 0.3], np.float32)
    per_channel = C.bicubic_downscale(tf.constant(flat), 26, "per_channel").numpy()
    channel_sum = C.bicubic_downscale(tf.constant(flat), 26, "channel_sum").numpy()
    assert per_channel.shape == channel_sum.shape == (1, 26, 26, 3)
    # The 26x26 crop stays clear of the zero padding: a constant image keeps its values.
    np.testing.assert_allclose(per_channel[0], np.broadcast_to([0.1, 0.2, 0.3], (26, 26, 3)), atol=1e-6)
    np.testing.assert_allclose(channel_sum[0], 0.6, atol=1e-6)


def test_stride2_correlations_as_matrix_products_match_scipy():
    rng = np.random.default_rng(11)
    images = rng.random((2, 40, 36, 3)).astype(np.float32)
    kernel = rng.normal(0, 1, (9, 9)).astype(np.float32)
    out = correlate_stride2(tf.constant(images), tf.constant(kernel)).numpy()
    assert out.shape == (2, 16, 14, 3)
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(out[n, :, :, c], _correlate_subsample(images[n, :, :, c], kernel, 2), atol=1e-4)
    # The bicubic reference: zero padding 3, stride 2, centre crop; out_size 29 (a 7x7 generator)
    # reaches into the padding, 26 (13x13) does not.
    crop = rng.random((1, 64, 64, 3)).astype(np.float32)
    for out_size in (26, 29):
        got = C.bicubic_downscale(tf.constant(crop), out_size, "per_channel").numpy()[0]
        for c in range(3):
            full = _correlate_subsample(np.pad(crop[0, :, :, c], 3), bicubic_kernel(2), 2)
            start = (full.shape[0] - out_size) // 2
            np.testing.assert_allclose(got[:, :, c], full[start:start + out_size, start:start + out_size], atol=1e-5)


def test_schedule_on_a_scripted_bicubic_loss():
    schedule = ConstraintSchedule(load_config().kernel_estimation)
    # Under the threshold at 5, 6, (7 is over), 8, 9, 10: the third in a row is iteration 10.
    losses = {i: 0.3 for i in (5, 6, 8, 9, 10)}
    weights, rates = {}, {}
    for iteration in range(3000):
        schedule.update(iteration, losses.get(iteration, 0.3 if iteration > 10 else 0.5))
        weights[iteration], rates[iteration] = schedule.bicubic_weight, schedule.learning_rate
        if iteration == 300:  # a run stopped here: its projection is where the full run switched on
            assert schedule.constraints_on_by(iteration) == 400 and schedule.bicubic_weight == 0.05
    assert schedule.similar_to_bicubic_at == 10
    assert [weights[i] for i in (199, 200, 399, 400, 599, 600, 2999)] == [5, 0.05, 0.05, 5e-4, 5e-4, 5e-6, 5e-6]
    assert schedule.constraints_on_at == 400
    assert (schedule.centralization_weight, schedule.sparsity_weight) == (1.0, 5.0)
    drops = [i for i in range(1, 3000) if rates[i] < rates[i - 1]]
    assert drops == [750, 1500, 2250] and rates[2999] == pytest.approx(2e-7)


def test_schedule_never_set_keeps_the_constraints_off():
    schedule = ConstraintSchedule(load_config().kernel_estimation)
    for iteration in range(1000):
        schedule.update(iteration, 0.3 if iteration % 3 else 0.5)  # never three in a row
    assert schedule.similar_to_bicubic_at is None and schedule.bicubic_weight == 5.0
    assert schedule.constraints_on_at is None and schedule.sparsity_weight == 0
    assert schedule.constraints_on_by(999) is None


def test_kernel_files_use_the_mat_variable_kernel(tmp_path):
    kernel = post_process(gaussian_kernel(13, 1.2, 2.0, 0.3))
    paths = write_kernel_files(kernel, tmp_path, "photo_kernel_x2")
    assert {p.name for p in paths.values()} == {"photo_kernel_x2.npy", "photo_kernel_x2.mat", "photo_kernel_x2.png"}
    for suffix in ("mat", "npy"):
        np.testing.assert_allclose(load_kernel(paths[suffix]), kernel / kernel.sum(), atol=1e-12)
    assert paths["png"].stat().st_size > 1000


def test_crops_follow_edges_and_stay_on_the_x2_grid():
    image = np.zeros((120, 160, 3), np.float32)
    image[:, 100:] = 1.0  # one vertical edge at column 100
    g_corners, d_corners = sample_crop_positions(image, 64, 26, 500, np.random.default_rng(0))
    assert g_corners.shape == d_corners.shape == (500, 2)
    assert np.all(g_corners % 2 == 0) and np.all(d_corners % 2 == 0)
    assert np.all(g_corners <= [120 - 64, 160 - 64]) and np.all(d_corners >= 0)
    d_columns = d_corners[:, 1] + 13
    assert np.all(np.abs(d_columns - 100) <= 20)  # every D crop centre near the edge
    assert gradient_map(image).mean() == pytest.approx(1.0)


def test_flat_image_warns_and_samples_uniformly():
    with pytest.warns(FlatImageWarning, match="bicubic"):
        g_corners, _ = sample_crop_positions(np.full((100, 100, 3), 0.5, np.float32), 64, 26, 300,
                                             np.random.default_rng(0))
    assert len(np.unique(g_corners[:, 0])) > 5


@pytest.mark.parametrize("crop", [64, 26, 13])
def test_crop_centres_are_exactly_those_whose_crop_fits(crop):
    """Every centre draw_top_lefts can place without clamping keeps its probability, the rest
    get none: rows crop//2 .. h - crop + crop//2 (columns alike)."""
    image = np.random.default_rng(1).random((70, 90, 3))
    prob = crop_probability(gradient_map(image), crop)
    rows, cols = np.nonzero(prob.sum(axis=1))[0], np.nonzero(prob.sum(axis=0))[0]
    half = crop // 2
    np.testing.assert_array_equal(rows, np.arange(half, 70 - crop + half + 1))
    np.testing.assert_array_equal(cols, np.arange(half, 90 - crop + half + 1))
    corners = draw_top_lefts(prob, crop, 400, np.random.default_rng(0))
    assert corners.min() >= 0 and np.all(corners <= [70 - crop, 90 - crop])


def test_image_as_large_as_the_generator_crop_is_not_flat(shared_data_dir):
    """An image whose side equals generator_crop_size has one crop position: it gets the whole
    probability, and no flat-image warning."""
    image = read_image(shared_data_dir / "set5/hr/bird.png")[0][60:124, 80:144]
    assert crop_probability(gradient_map(image), 64)[32, 32] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", FlatImageWarning)
        g_corners, d_corners = sample_crop_positions(image, 64, 26, 50, np.random.default_rng(0))
    assert np.all(g_corners == 0) and len(np.unique(d_corners, axis=0)) > 3


def test_too_small_image_is_a_clear_error():
    with pytest.raises(ZSSRError, match=r"at least 64 pixels.*\(kernel=given\) or estimation_shave=0"):
        prepare_image(np.zeros((70, 90, 3), np.float32), shave=10, crop_size=64)
    with pytest.raises(ZSSRError, match=r"use a larger image or the bicubic kernel \(kernel=given\)$"):
        prepare_image(np.zeros((60, 90, 3), np.float32), shave=0, crop_size=64)
    prepared = prepare_image(np.ones((71, 90), np.float32), shave=0, crop_size=64)
    assert prepared.shape == (70, 90, 1) and prepared.max() == 1.0


@pytest.mark.parametrize("raw, message", [
    (np.full((13, 13), np.nan), "NaN"),
    (np.full((13, 13), 0.0001), "collapsed: its taps sum to 0.0169"),
    (np.full((13, 13), -0.005), "collapsed"),
])
def test_collapsed_estimates_are_errors_naming_the_bicubic_fallback(raw, message):
    with pytest.raises(KernelEstimationError, match=message) as error:
        check_and_post_process(raw, keep=40)
    assert "bicubic kernel (kernel=given)" in str(error.value)


class _ScriptedGAN:
    """Stands in for estimator.KernelGAN: a bicubic loss under the threshold from the start (so the
    constraints switch on at iteration 400), a kernel that settles on a Gaussian as 0.98^iteration,
    or one whose taps are all 0 for the seeds in `collapsing`."""

    collapsing: set = set()
    d_crop_size = 26

    def __init__(self, config, channels, seed):
        self.seed, self.iteration = seed, 0
        self.settled = gaussian_kernel(13, 1.2, 1.6, 0.4)

    def set_learning_rate(self, rate):
        pass

    def train_step(self, g_input, d_real, fake_noise, *weights):
        kernel = self.settled * (1 + 0.5 * 0.98 ** self.iteration * np.cos(np.arange(13))[:, None])
        if self.seed in self.collapsing:
            kernel = np.zeros((13, 13))
        self.iteration += 1
        values = np.array([0.5, 0.5, 0.1, 0, 0, 0, 0, 0.5, kernel.sum()], np.float32)
        return values, kernel.astype(np.float32)


SCRIPTED = ["estimation_shave=0", "seed=5", "estimation_iters=3000", "kernel_stop_tolerance=0",
            "runs_agree_tolerance=0", "collapse_check_iters=300"]


def _scripted_estimate(monkeypatch, shared_data_dir, overrides, collapsing=()):
    monkeypatch.setattr("zssr_tf.kernel_estimation.estimator.KernelGAN", _ScriptedGAN)
    monkeypatch.setattr(_ScriptedGAN, "collapsing", set(collapsing))
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    seen = []
    config = load_config("blind", [*SCRIPTED, *overrides])
    kernel, history = estimate_kernel(lr, config, callback=lambda i, values: seen.append(i))
    return kernel, history, seen


def test_a_run_whose_kernel_never_grows_stops_early_and_is_left_out(shared_data_dir, monkeypatch):
    with pytest.warns(KernelEstimationWarning) as caught:
        kernel, history, seen = _scripted_estimate(monkeypatch, shared_data_dir, ["estimation_runs=3",
                                                                                   "estimation_iters=500"], {6})
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert ("run 2 of 3 (seed 6) failed and is left out of the average (it stopped after 300 iterations): the kernel "
            "collapsed: its taps summed to at most 0 over the first 300 iterations") in messages[0]
    assert [(r.seed, r.iterations, r.stopped) for r in history.runs] == [
        (5, 500, "end"), (6, 300, "collapsed_early"), (7, 500, "end")]
    assert history.runs_averaged == 2 and history.iterations == 1300 and len(seen) == 1300
    assert "300 (collapsed early, left out)" in history.describe_runs()
    script = _ScriptedGAN(None, 3, 5)
    last = [script.train_step(None, None, None)[1] for _ in range(500)][-1].astype(np.float64)
    np.testing.assert_allclose(kernel, average_kernels([post_process(last)] * 2), atol=1e-6)


@pytest.mark.parametrize("check_at, iterations", [(300, 300), (0, 3000)])
def test_every_run_collapsing_is_an_error_naming_the_fallback(shared_data_dir, monkeypatch, check_at, iterations):
    # collapse_check_iters=0 keeps today's behaviour: the run goes to its end and fails there.
    seen = []
    monkeypatch.setattr("zssr_tf.kernel_estimation.estimator.KernelGAN", _ScriptedGAN)
    monkeypatch.setattr(_ScriptedGAN, "collapsing", {5, 6})
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    config = load_config("blind", [*SCRIPTED, "estimation_runs=2", f"collapse_check_iters={check_at}"])
    with pytest.warns(KernelEstimationWarning, match=f"seed 5.*after {iterations} iterations"):
        with pytest.raises(KernelEstimationError, match="all 2 kernel estimation runs failed") as error:
            estimate_kernel(lr, config, callback=lambda i, values: seen.append(i))
    assert len(seen) == 2 * iterations
    assert "bicubic kernel (kernel=given)" in str(error.value)
    single = load_config("blind", [*SCRIPTED, "estimation_runs=1", f"collapse_check_iters={check_at}"])
    with pytest.raises(KernelEstimationError, match="collapsed") as error:
        estimate_kernel(lr, single)
    assert "bicubic kernel (kernel=given)" in str(error.value)


def test_a_run_stops_when_its_kernel_stops_moving(shared_data_dir, monkeypatch):
    # The scripted kernel moves by 0.98^i: every 100 iterations from iteration 400 (constraints on)
    # the move shrinks 7-fold, so a tolerance stops the run at the first check that falls under it.
    _, full, _ = _scripted_estimate(monkeypatch, shared_data_dir, ["estimation_runs=1"])
    assert full.runs[0].stopped == "end" and full.iterations == 3000
    kernel, history, seen = _scripted_estimate(monkeypatch, shared_data_dir, [
        "estimation_runs=1", "kernel_stop_every=100", "kernel_stop_tolerance=1e-6"])
    ran = history.iterations
    assert history.runs[0].stopped == "kernel_still" and len(seen) == ran and 700 < ran < 3000
    assert (ran - 1 - 400) % 100 == 0  # checked every 100 iterations once the constraints are on
    script = _ScriptedGAN(None, 3, 5)
    kernels = [script.train_step(None, None, None)[1] for _ in range(ran)]
    assert kernel_distance(kernels[-1], kernels[-101]) < 1e-6 <= kernel_distance(kernels[-101], kernels[-201])
    np.testing.assert_allclose(kernel, post_process(kernels[-1].astype(np.float64)), atol=1e-6)
    assert f"{ran} (kernel stopped moving)" == history.describe_runs()


@pytest.mark.parametrize("spread, runs", [(0.0, 2), (1.0, 3)])
def test_runs_stop_once_they_agree(shared_data_dir, monkeypatch, spread, runs):
    def one_run(image, config, seed, callback):
        callback(0, {"g_loss": 0.0})
        kernel = post_process(gaussian_kernel(13, 1.2 + spread * (seed - 5), 1.5, 0.3))
        return kernel, KernelEstimationHistory(values={"g_loss": [0.0]}, raw_kernel=kernel, seconds=1.0, iterations=1,
                                               runs=[RunRecord(seed, 1, "end")])

    monkeypatch.setattr("zssr_tf.kernel_estimation.estimator._estimate_once", one_run)
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    config = load_config("blind", ["estimation_runs=3", "seed=5", "runs_agree_tolerance=0.02"])
    kernel, history = estimate_kernel(lr, config)
    assert [r.seed for r in history.runs] == list(range(5, 5 + runs)) and history.runs_averaged == runs
    assert history.runs_agreed == (runs < 3)
    kept = [one_run(None, None, seed, lambda *_: None)[0] for seed in range(5, 5 + runs)]
    assert runs_agree(kept, 0.02) == (spread == 0) and not runs_agree(kept, 0) and not runs_agree(kept[:1], 1.0)
    np.testing.assert_allclose(kernel, average_kernels(kept))


@pytest.mark.parametrize("override, message", [
    ("collapse_check_iters=-1", "kernel_estimation.collapse_check_iters must be >= 0 (0: no run is stopped early"),
    ("collapse_check_iters=1.5", "kernel_estimation.collapse_check_iters must be a whole number"),
    ("kernel_stop_every=0", "kernel_estimation.kernel_stop_every must be >= 1 iteration, got 0"),
    ("kernel_stop_tolerance=-0.01", "kernel_estimation.kernel_stop_tolerance must be >= 0 (0: every run goes to"),
    ("kernel_stop_tolerance=small", "kernel_estimation.kernel_stop_tolerance must be a number"),
    ("runs_agree_tolerance=-1", "kernel_estimation.runs_agree_tolerance must be >= 0 (0: always estimation_runs"),
])
def test_early_stopping_settings_are_checked(override, message):
    with pytest.raises(ZSSRError, match=re.escape(message)):
        load_config("blind", [override])


@pytest.mark.slow
def test_the_real_generator_stops_early_when_collapsed_or_still(shared_data_dir, monkeypatch):
    # Tiny networks; a large init gain grows the kernel's sum to ~1 within 10 iterations, and a
    # bicubic weight that falls under the switch at its first decay turns the constraints on at
    # iteration 10; a huge tolerance then stops the run at the first check, 10 iterations later.
    lr, _, _ = read_image(shared_data_dir / "set5/lr_x2/butterfly.png")
    tiny = ["estimation_iters=200", "estimation_runs=1", "estimation_shave=0", "generator_width=8",
            "patch_discriminator_width=8", "init_gain=1.0", "collapse_check_iters=20", "seed=5"]
    config = load_config("blind", [*tiny, "bicubic_similar_threshold=1e9", "bicubic_decay_every=10",
                                   "bicubic_decay_factor=1e6", "kernel_stop_every=10", "kernel_stop_tolerance=10"])
    kernel, history = estimate_kernel(lr, config)
    assert history.constraints_on_at == 10
    assert [(r.iterations, r.stopped) for r in history.runs] == [(21, "kernel_still")] and history.iterations == 21
    assert abs(kernel.sum() - 1) < 0.1
    # The same generator with its kernel scaled by 1e-3 (an exact 0 makes the centre-of-mass loss
    # NaN, a divergence stopped at iteration 0): stopped at collapse_check_iters.
    from zssr_tf.kernel_estimation import estimator

    extract = estimator.extract_kernel
    monkeypatch.setattr(estimator, "extract_kernel", lambda generator: 1e-3 * extract(generator))
    seen = []
    with pytest.raises(KernelEstimationError, match=r"summed to at most 0\.00\d+ over the first 20 iterations"):
        estimate_kernel(lr, load_config("blind", tiny), callback=lambda i, values: seen.append(i))
    assert seen == list(range(20))
