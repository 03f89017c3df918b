"""ZSRGAN: discriminator sizes, the 8-variant batch and father sampling, the step schedule, the
GAN step with zero extra weights equal to ZSSR's, the perceptual loss and LPIPS-like metric on
VGG16 weights built here (random, saved, loaded through the package's loading code), errors."""

import types

import keras
import numpy as np
import pytest

from zssr_tf.augment import FatherSampler, dihedral, father_to_son, interpolate_son, kernel_symmetries
from zssr_tf.callbacks import StepLearningRate
from zssr_tf.config import AugmentConfig, load_config
from zssr_tf.data import PairMaker, make_dataset, with_loss_maps
from zssr_tf.degradation import random_anisotropic_kernel
from zssr_tf.errors import ZSSRError
from zssr_tf.gan.discriminator import build_discriminator
from zssr_tf.gan.lpips import HEAD_SIZES, TAPS, LpipsLike, load_heads
from zssr_tf.gan.model import ZSRGAN
from zssr_tf.gan.perceptual import PERCEPTUAL_LAYER, PerceptualLoss
from zssr_tf.gan.vgg import WEIGHT_SETTINGS, load_vgg16, save_truncated_weights
from zssr_tf.image_io import read_image
from zssr_tf.kernels import align_kernel, upscale_offset
from zssr_tf.model import build_zssr_net
from zssr_tf.trainer import ZSSR


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory):
    """Keras' own VGG16 (no top) with random weights, saved as a legacy .h5 full model (the
    layout of Keras' ImageNet file), and its relu3_1 features model for reference."""
    folder = tmp_path_factory.mktemp("vgg")
    keras.utils.set_random_seed(1)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    vgg.save(folder / "vgg16_random.h5")
    return folder / "vgg16_random.h5", vgg


@pytest.fixture(scope="module")
def baby(shared_data_dir):
    return read_image(shared_data_dir / "set5/lr_x2/baby.png")[0]


@pytest.mark.parametrize("crop, side", [(128, 5), (64, 1), (96, 3)])
def test_discriminator_output_size(crop, side):
    out = np.asarray(build_discriminator()(np.random.default_rng(0).random((2, crop, crop, 3), np.float32)))
    assert out.shape == (2, side, side, 1)
    assert np.all((out > 0) & (out < 1))


def test_dihedral_batch_holds_eight_distinct_transforms_of_one_square_pair(baby):
    maker = PairMaker(sources=(baby,), base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=64)),
                      scale_factor=(2.0, 2.0), kernel="cubic", noise_std=0.0, upscale_method="cubic", seed=3,
                      dihedral_batch=True)
    son, father = next(iter(make_dataset(maker, channels=3)))
    son, father = np.asarray(son), np.asarray(father)
    assert son.shape == father.shape == (8, 64, 64, 3)
    for batch in (son, father):
        flat = batch.reshape(8, -1)
        assert len({row.tobytes() for row in flat}) == 8  # pairwise distinct
    for k in range(8):
        np.testing.assert_array_equal(father[k], dihedral(father[0], k))
    assert np.mean(np.abs(son - father)) < 0.05  # each son is its own father's degraded version


@pytest.mark.parametrize("alignment, scale_factor", [("direct", (2.0, 3.0)), ("block_centre", (1.0, 1.5))])
@pytest.mark.parametrize("loss_map", [False, True])
def test_dihedral_batch_degrades_each_transformed_father_with_the_steps_kernel(baby, alignment, scale_factor,
                                                                               loss_map):
    """Each son of the 8-variant batch is made from its own transformed father with the step's
    kernel and (sy, sx) factors, not the first son transformed: under a non-symmetric kernel and
    non-square factors a transformed son would carry a transformed kernel and the downscale on
    the wrong axis."""
    raw, _ = random_anisotropic_kernel(np.random.default_rng(5))
    assert kernel_symmetries(raw) == (0,)
    kernel = align_kernel(raw, scale_factor, alignment)
    offset = upscale_offset(scale_factor, alignment)
    sources, loss_map_scale = ((baby,), 0.0) if not loss_map else with_loss_maps((baby,))
    maker = PairMaker(sources=sources, base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=48)),
                      scale_factor=scale_factor, kernel=kernel, noise_std=0.0, upscale_method="cubic", seed=4,
                      dihedral_batch=True, upscale_offset=offset, loss_map_scale=loss_map_scale)
    batch = maker(7)
    son, father = batch[:2]
    side = father.shape[1]
    assert son.shape == father.shape == (8, side, side, 3) and side > 20
    mismatch = []
    for k in range(8):
        np.testing.assert_array_equal(father[k], dihedral(father[0], k))
        lr_son = father_to_son(father[k], scale_factor, kernel, 0.0, np.random.default_rng(0))
        assert lr_son.shape[:2] == (np.ceil(side / scale_factor[0]), np.ceil(side / scale_factor[1]))
        expected = interpolate_son(lr_son, scale_factor, (side, side), "cubic", offset)
        np.testing.assert_allclose(son[k], expected, atol=1e-6)
        mismatch.append(np.max(np.abs(son[k] - dihedral(son[0], k))))
    # The sons are not transforms of the first one (what transforming a single son gave).
    assert max(mismatch) > 1e-3  # far above float rounding (1e-6)
    if loss_map:
        weights = batch[2]
        assert weights.shape == (8, side, side, 1) and weights.max() > 0
        for k in range(8):
            np.testing.assert_array_equal(weights[k], dihedral(weights[0], k))


def test_zsrgan_fathers_are_large_downscales_of_the_input(baby):
    sampler = FatherSampler(AugmentConfig(
        crop_size=512, augment_leave_as_is_probability=0, augment_no_interpolate_probability=0, augment_min_scale=0.05,
        augment_scale_diff_sigma=0, augment_shear_sigma=0, augment_allow_rotation=False, augment_min_father_side=64,
        augment_scale_distribution="area"))
    rng = np.random.default_rng(0)
    scales = np.array([sampler._draw_scale([1.0], rng, 256)[1] for _ in range(4000)])
    low = 64.5 / 256
    assert scales.min() >= low and scales.max() <= 1
    # Density proportional to s^2 on [low, 1]: mean 3/4 (1 - low^4) / (1 - low^3), above uniform's.
    assert scales.mean() == pytest.approx(0.75 * (1 - low**4) / (1 - low**3), abs=0.01)
    assert scales.mean() > (low + 1) / 2 + 0.05
    fathers = [sampler.sample([baby], [1.0], rng) for _ in range(5)]
    assert all(min(f.shape[:2]) >= 64 and f.shape[0] == f.shape[1] for f in fathers)  # baby is square
    small = baby[:50, :60]  # a short side below 64 falls back to the input's own size
    assert sampler.sample([small], [1.0], rng).shape[:2] == (50, 60)


def test_step_schedule_halves_both_learning_rates_every_500_iterations():
    model = types.SimpleNamespace(optimizer=keras.optimizers.Adam(1e-3),
                                  discriminator_optimizer=keras.optimizers.Adam(2e-3))
    schedule = StepLearningRate(every=500, factor=0.5)
    schedule.set_model(model)
    schedule.on_train_begin()
    seen = {}
    for batch in range(2000):
        schedule.on_train_batch_begin(batch)
        if batch in (0, 499, 500, 999, 1000, 1500, 1999):
            seen[batch] = (float(model.optimizer.learning_rate), float(model.discriminator_optimizer.learning_rate))
    expected = {0: 1e-3, 499: 1e-3, 500: 5e-4, 999: 5e-4, 1000: 2.5e-4, 1500: 1.25e-4, 1999: 1.25e-4}
    for batch, rate in expected.items():
        assert seen[batch] == pytest.approx((rate, 2 * rate))
    assert schedule.drops == [499, 999, 1499]


def test_gan_path_without_extra_terms_trains_exactly_as_zssr(baby):
    keras.utils.set_random_seed(0)
    zssr = build_zssr_net(3, 8, 3)
    twin = build_zssr_net(3, 8, 3)
    twin.set_weights(zssr.get_weights())
    zssr.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_absolute_error")
    gan = ZSRGAN(twin, build_discriminator(), None, l1_weight=1.0, adversarial_weight=0.0, perceptual_weight=0.0)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert gan.discriminator is None  # a zero weight builds no discriminator step
    father = baby[None, :64, :64]
    son = np.clip(father + np.random.default_rng(0).normal(0, 0.05, father.shape), 0, 1).astype(np.float32)
    losses = [(float(zssr.train_on_batch(son, father)), float(gan.train_on_batch(son, father, return_dict=True)["loss"]))
              for _ in range(3)]
    for plain, gan_loss in losses:
        assert gan_loss == pytest.approx(plain, abs=1e-6)
    assert losses[2][0] < losses[0][0]  # they trained, identically
    # The default config does not build the GAN path at all.
    trainer = ZSSR(load_config(overrides=["model.depth=3", "model.width=8", "precision=float32"]), verbose=False)
    assert not isinstance(trainer._build_model(3), ZSRGAN)


def test_perceptual_loss_on_weights_loaded_from_files(random_vgg, baby, tmp_path):
    path, vgg = random_vgg
    reference = keras.Model(vgg.input, vgg.get_layer("block3_conv1").output)
    x = np.random.default_rng(0).random((1, 40, 40, 3), np.float32) * 200 - 100
    np.testing.assert_allclose(load_vgg16(str(path))(x), reference(x), rtol=1e-5, atol=1e-4)
    truncated = save_truncated_weights(str(path), tmp_path / "relu3_1.weights.h5")
    assert truncated.stat().st_size < 3e6
    loss = PerceptualLoss.from_weights(str(truncated))
    np.testing.assert_allclose(loss.features(x), reference(x), rtol=1e-5, atol=1e-4)
    a = baby[None, :64, :64]
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    assert float(loss(a, a)) == 0.0
    assert float(loss(b, a)) > 0.0
    gray = a.mean(axis=3, keepdims=True)
    assert float(loss(gray, gray)) == 0.0 and float(loss(b.mean(axis=3, keepdims=True), gray)) > 0.0


def test_missing_vgg_weights_stop_a_zsrgan_run_with_one_clear_error(tmp_path, monkeypatch, baby):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    config = load_config("zsrgan", ["model.depth=3", "model.width=8", "max_iters=2", "precision=float32"])
    with pytest.raises(ZSSRError, match=r"Keras' cache at .*empty_keras_home.*loss\.perceptual_weights=PATH"):
        ZSSR(config, verbose=False).run(baby[:64, :64])
    with pytest.raises(ZSSRError, match="not found"):
        load_vgg16(str(tmp_path / "nowhere.h5"))
    (tmp_path / "other.h5").write_bytes(b"")
    with pytest.raises(ZSSRError, match="is not an HDF5 file"):
        load_vgg16(str(tmp_path / "other.h5"))


def test_missing_imagenet_weights_name_the_setting_and_the_way_out_of_each_user(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    with pytest.raises(ZSSRError) as perceptual:
        load_vgg16("imagenet")
    message = str(perceptual.value)
    assert message.startswith("the perceptual loss needs VGG16 ImageNet weights and none are on this machine")
    assert "as loss.perceptual_weights=PATH" in message and "save_truncated_weights" in message
    assert "loss.perceptual_weight=0 needs no VGG16 weights" in message and "\n" not in message
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "heads.npz", **{f"lin{i}": rng.random(n) for i, n in enumerate(HEAD_SIZES)})
    with pytest.raises(ZSSRError) as lpips:
        LpipsLike("imagenet", tmp_path / "heads.npz")
    message = str(lpips.value)
    assert message.startswith("the LPIPS-like metric needs VGG16 ImageNet weights")
    assert "as loss.lpips_vgg_weights=PATH" in message and "leave loss.lpips_vgg_weights and loss.lpips_heads " \
        "unset (null)" in message
    # A truncated relu3_1 file cannot serve LPIPS (relu1_2 ... relu5_3): not offered there.
    assert "perceptual" not in message and "truncated" not in message
    assert WEIGHT_SETTINGS["loss.lpips_vgg_weights"].last_layer == TAPS[-1]
    assert WEIGHT_SETTINGS["loss.perceptual_weights"].last_layer == PERCEPTUAL_LAYER


def test_vgg_weights_path_that_is_missing_a_directory_or_not_hdf5(tmp_path):
    with pytest.raises(ZSSRError) as missing:
        load_vgg16(str(tmp_path / "nowhere.h5"), "block5_conv3", setting="loss.lpips_vgg_weights")
    assert str(missing.value) == (
        f"VGG16 weights file {str(tmp_path / 'nowhere.h5')!r} not found: give Keras' "
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (all 13 conv layers, up to block5_conv3) as "
        "loss.lpips_vgg_weights=PATH, or loss.lpips_vgg_weights=imagenet for the copy in Keras' cache; or run "
        "without the LPIPS-like metric: leave loss.lpips_vgg_weights and loss.lpips_heads unset (null)")
    with pytest.raises(ZSSRError, match=r"is a directory, not a VGG16 weights file: give Keras' .*"
                                        r"loss\.perceptual_weights=PATH.*loss\.perceptual_weight=0"):
        load_vgg16(str(tmp_path))
    (tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")
    with pytest.raises(ZSSRError, match=r"is a directory, not a VGG16 weights file: give .*_notop\.h5 as "
                                        r"loss\.perceptual_weights=PATH$"):
        load_vgg16(str(tmp_path))
    (tmp_path / "x.h5").write_text("not weights\n")
    with pytest.raises(ZSSRError) as text:
        load_vgg16(str(tmp_path / "x.h5"))
    assert str(text.value).startswith(f"{tmp_path / 'x.h5'} is not an HDF5 file (Keras weights are .h5 / "
                                      ".weights.h5): give Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 ")
    assert "signature" not in str(text.value)  # h5py's own message does not leak through


def test_weights_file_without_the_needed_vgg16_layers_fails_before_keras_reads_it(random_vgg, tmp_path, recwarn,
                                                                                   capsys, caplog):
    path, vgg = random_vgg
    relu3_1 = save_truncated_weights(str(path), tmp_path / "relu3_1.weights.h5")
    relu4_1 = save_truncated_weights(str(path), tmp_path / "relu4_1.weights.h5", "block4_conv1")
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense_a"), keras.layers.Dense(2)])
    small.save_weights(tmp_path / "small.weights.h5")
    inputs = keras.Input((None, None, 3))
    narrow = keras.Model(inputs, keras.layers.Conv2D(32, 3, name="block1_conv1")(inputs))
    narrow.save_weights(tmp_path / "narrow.weights.h5")
    (tmp_path / "relu3_1.h5").write_bytes(relu3_1.read_bytes())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "heads.npz", **{f"lin{i}": rng.random(n) for i, n in enumerate(HEAD_SIZES)})
    recwarn.clear()
    capsys.readouterr()

    with pytest.raises(ZSSRError) as lpips:
        LpipsLike(str(relu3_1), tmp_path / "heads.npz")
    assert str(lpips.value).startswith(
        f"{relu3_1} is not VGG16 weights up to block5_conv3: it holds VGG16 only up to block3_conv1, the 8 layers "
        "block3_conv2 to block5_conv3 are missing; give Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 "
        "(all 13 conv layers, up to block5_conv3) as loss.lpips_vgg_weights=PATH")
    with pytest.raises(ZSSRError) as other:
        load_vgg16(str(tmp_path / "small.weights.h5"))
    assert str(other.value).startswith(
        f"{tmp_path / 'small.weights.h5'} is not VGG16 weights up to block3_conv1: it has none of VGG16's layers "
        "(block1_conv1 ...), only dense_a, dense; give Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 or "
        "a truncated .weights.h5 made by zssr_tf.gan.vgg.save_truncated_weights as loss.perceptual_weights=PATH")
    with pytest.raises(ZSSRError, match=r"its block1_conv1 has \(3, 3, 3, 32\) and \(32,\), not VGG16's kernel "
                                        r"\(3, 3, 3, 64\) and bias \(64,\); give "):
        load_vgg16(str(tmp_path / "narrow.weights.h5"))
    with pytest.raises(ZSSRError, match=r"relu3_1\.h5 holds Keras 3 weights, .* rename it \(e\.g\. "
                                        r"relu3_1\.weights\.h5\)"):
        load_vgg16(str(tmp_path / "relu3_1.h5"))
    assert list(recwarn) == []  # no Keras "Skipping nested container" or mismatch warnings
    captured = capsys.readouterr()
    assert "Skipping" not in captured.out + captured.err and not caplog.records
    # A truncated file that goes beyond the needed layer serves it.
    reference = keras.Model(vgg.input, vgg.get_layer("block3_conv1").output)
    x = np.random.default_rng(0).random((1, 24, 24, 3), np.float32) * 200 - 100
    np.testing.assert_allclose(load_vgg16(str(relu4_1))(x), reference(x), rtol=1e-5, atol=1e-4)


def test_lpips_heads_files_that_are_not_float_arrays(tmp_path):
    import pickle
    import re
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "zsrgan.md").read_text()
    assert "\n## LPIPS-like metric\n" in page and "lpips.__file__" in page  # the messages' reference
    with pytest.raises(ZSSRError, match=r"LPIPS heads file '.*nowhere\.npz' not found: convert lpips' vgg\.pth to a "
                                        r"\.npz as docs/zsrgan\.md \(LPIPS-like metric\) shows and give it as "
                                        r"loss\.lpips_heads=PATH; or run without the LPIPS-like metric"):
        load_heads(tmp_path / "nowhere.npz")
    pickled = re.escape(" holds Python objects (pickled), not the float arrays lin0..lin4, and pickles are not loaded "
                        "(they can run code): convert lpips' vgg.pth to a .npz of float arrays lin0..lin4 as docs/zsrgan.md "
                        "(LPIPS-like metric) shows, each head as tensor.numpy()") + "$"
    objects = {f"lin{i}": np.array([None] * n, dtype=object) for i, n in enumerate(HEAD_SIZES)}
    np.savez(tmp_path / "objects.npz", **objects)
    with pytest.raises(ZSSRError, match=pickled) as error:
        load_heads(tmp_path / "objects.npz")
    assert "allow_pickle" not in str(error.value)
    with open(tmp_path / "dict.npz", "wb") as f:
        pickle.dump({f"lin{i}": [0.5] * n for i, n in enumerate(HEAD_SIZES)}, f)
    with pytest.raises(ZSSRError, match=pickled):
        load_heads(tmp_path / "dict.npz")
    (tmp_path / "text.npz").write_text("lin0 = 1\n")
    with pytest.raises(ZSSRError, match=r"text\.npz is not a \.npz file: convert"):
        load_heads(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.ones(64))
    with pytest.raises(ZSSRError, match=r"one\.npy is a single \.npy array, not a \.npz with arrays lin0\.\.lin4"):
        load_heads(tmp_path / "one.npy")
    np.savez(tmp_path / "negative.npz", **{f"lin{i}": -np.ones(n) for i, n in enumerate(HEAD_SIZES)})
    with pytest.raises(ZSSRError, match="finite and non-negative"):
        load_heads(tmp_path / "negative.npz")


def test_lpips_like_distance(random_vgg, baby, tmp_path):
    path, _ = random_vgg
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "heads.npz", **{f"lin{i}": rng.random((1, n, 1, 1)) for i, n in enumerate(HEAD_SIZES)})
    metric = LpipsLike(str(path), tmp_path / "heads.npz")
    a = baby[:64, :64]
    near = np.clip(a + rng.normal(0, 0.02, a.shape), 0, 1).astype(np.float32)
    far = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
    assert metric.distance(a, a) == 0.0
    assert 0 < metric.distance(near, a) < metric.distance(far, a)
    assert metric.distance(far, a) == pytest.approx(metric.distance(a, far), rel=1e-5)
    np.savez(tmp_path / "bad.npz", lin0=np.ones(3))
    with pytest.raises(ZSSRError, match="lin0..lin4"):
        LpipsLike(str(path), tmp_path / "bad.npz")


@pytest.mark.slow
def test_zsrgan_preset_end_to_end_through_the_cli(random_vgg, shared_data_dir, tmp_path, capsys):
    from mlflow import MlflowClient

    from zssr_tf.cli import main
    from zssr_tf.image_io import write_image

    path, _ = random_vgg
    truncated = save_truncated_weights(str(path), tmp_path / "relu3_1.weights.h5")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "heads.npz", **{f"lin{i}": rng.random(n) for i, n in enumerate(HEAD_SIZES)})
    lr, info = read_image(shared_data_dir / "set5/lr_x2/baby.png")[::2]
    hr = read_image(shared_data_dir / "set5/hr/baby.png")[0]
    write_image(tmp_path / "lr.png", lr[:72, :72], info)
    write_image(tmp_path / "hr.png", hr[:144, :144], info)
    code = main(["train", str(tmp_path / "lr.png"), "--gt", str(tmp_path / "hr.png"), "--config", "zsrgan",
                 "--out", str(tmp_path / "out"), "crop_size=64", "max_iters=4", "model.depth=3", "model.width=8",
                 "learning_rate_step_every=2", "run_test_every=2", "learning_rate_slope_range=6", "progress_every=0",
                 "precision=float32", f"perceptual_weights={truncated}", f"lpips_vgg_weights={path}",
                 f"lpips_heads={tmp_path / 'heads.npz'}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    sr = read_image(tmp_path / "out/lr_x2_zssr.png")[0]
    assert sr.shape == (144, 144, 3)

    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("zssr").experiment_id])
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and metrics["final/iterations"] == 4
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/learning_rate")}
    assert history == pytest.approx({0: 1e-3, 1: 1e-3, 2: 5e-4, 3: 5e-4})
    assert 0 < metrics["final/lpips_like"] and 0 < metrics["final/bicubic_lpips_like"]
    assert (f"LPIPS-like  zssr {metrics['final/lpips_like']:.4f}     bicubic {metrics['final/bicubic_lpips_like']:.4f}"
            in out)
    # The network `zssr predict` re-applies is the generator alone.
    model_dir = client.download_artifacts(run.info.run_id, "model", str(tmp_path / "artifacts"))
    generator = keras.saving.load_model(f"{model_dir}/step_0.keras", compile=False)
    assert generator.name == "zssr" and not any("discriminator" in layer.name for layer in generator.layers)
    assert main(["predict", "--run-id", run.info.run_id, str(tmp_path / "lr.png"), "--out", str(tmp_path / "again")]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "again/lr_x2_zssr.png")[0], sr)
    # Every GAN term, the discriminator's outputs and its learning rate, at every iteration.
    for key in ("l1_loss", "adversarial_loss", "perceptual_loss", "discriminator_loss", "discriminator_real",
                "discriminator_fake", "discriminator_learning_rate"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, f"train/{key}")] == [0, 1, 2, 3], key


def test_crop_figure_shows_bicubic_zssr_zsrgan_and_gt(baby, tmp_path):
    import matplotlib.image

    from zssr_tf.tracking.plots import plot_crop_comparison

    image = np.repeat(np.repeat(baby[:64, :64], 2, 0), 2, 1)
    three = plot_crop_comparison(tmp_path / "three.png", image, image, image)
    four = plot_crop_comparison(tmp_path / "four.png", image, image, image, sr_name="ZSRGAN",
                                others={"ZSSR": image})
    # One more panel of the same width: the overview plus bicubic | ZSSR | ZSRGAN | GT.
    widths = [matplotlib.image.imread(p).shape[1] for p in (three, four)]
    assert widths == [1600, 2000]


def test_zsrgan_preset_has_the_reports_settings_and_loss_keys_are_validated():
    config = load_config("zsrgan")
    loss, train, augment = config.loss, config.train, config.augment
    assert (loss.l1_weight, loss.adversarial_weight, loss.perceptual_weight) == (1.0, 1.0, 1.0)
    assert (train.learning_rate, train.adam_beta_1, loss.discriminator_learning_rate, loss.discriminator_beta_1) == (
        1e-3, 0.5, 1e-3, 0.5)
    assert (train.learning_rate_schedule, train.learning_rate_step_every, train.max_iters) == ("step", 500, 2000)
    assert augment.augment_dihedral_batch and augment.augment_min_father_side == 64
    assert (config.test.output_flip, config.test.back_projection_iters) == (False, (0,))
    assert not config.scale.kernel_symmetry  # one plain pass and no free rotation, even with --kernel
    assert config.method_name == "ZSRGAN" and load_config().method_name == "ZSSR"
    for overrides, message in [
        (["adversarial_weight=1"], "augment_min_father_side >= 64"),
        (["learning_rate_schedule=exponential"], "learning_rate_schedule"),
        (["lpips_heads=h.npz"], "go together"),
        (["perceptual_weight=-1"], "must be >= 0"),
        (["l1_weight=2"], "keep it at 1"),
        (["augment_scale_distribution=log"], "augment_scale_distribution"),
    ]:
        with pytest.raises(ZSSRError, match=message):
            load_config(overrides=overrides)
