"""Initial weights: the paper's random init, a file written by the package, the shipped warm start,
and files that do not fit the network (refused by the checks made before training)."""

import keras
import numpy as np
import pytest

from zssr_tf.augment import interpolate_son
from zssr_tf.checks import check_inputs
from zssr_tf.config import WARM_START_NETWORK, load_config
from zssr_tf.degradation import degrade
from zssr_tf.errors import ZSSRError
from zssr_tf.image_io import read_image
from zssr_tf.kernels import gaussian_kernel
from zssr_tf.inputs import setting_warnings
from zssr_tf.metrics import evaluate
from zssr_tf.model import build_zssr_net
from zssr_tf.trainer import ZSSR
from zssr_tf.warm_start import WARM_START, kernel_shapes, read_init_weights, save_weights, set_init_weights

TINY = ["model.depth=3", "model.width=8", "max_iters=2", "learning_rate_schedule=step", "run_test_every=1",
        "learning_rate_slope_range=3", "crop_size=16", "back_projection_iters=[1]", "progress_every=0",
        "precision=float32"]
TWO_STEPS = ["scale_factors=[[1.5, 1.5], [2, 2]]", "init_net_for_each_sf=true"]


def kernels(network: keras.Model) -> dict[str, np.ndarray]:
    return {layer.name: np.asarray(layer.get_weights()[0]) for layer in network.layers
            if isinstance(layer, keras.layers.Conv2D)}


class InitialKernels(keras.callbacks.Callback):
    """The network's kernels as each scale step's training begins."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(kernels(self.model))


def initial_kernels(overrides: list[str], channels: int = 3) -> list[dict[str, np.ndarray]]:
    """The kernels every scale step of a ZSSR run with `overrides` started training from."""
    y, x = np.mgrid[0:16, 0:16]
    image = np.repeat((0.5 + 0.25 * np.sin(x / 3.0) * np.cos(y / 4.0))[..., None], channels, axis=2)
    callback = InitialKernels()
    ZSSR(load_config(overrides=overrides), callbacks=[callback], verbose=False).run(image.astype(np.float32))
    return callback.seen


def test_none_keeps_the_random_init():
    keras.utils.set_random_seed(0)  # as ZSSR.run seeds with run.seed 0 before building
    today = kernels(build_zssr_net(3, 8, 3))
    (started,) = initial_kernels(TINY + ["init_weights=none"])
    assert started.keys() == today.keys()
    for name, kernel in today.items():
        np.testing.assert_array_equal(started[name], kernel)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_written_weights_start_every_scale_step(tmp_path, dtype):
    network = build_zssr_net(3, 8, 3, init_variance=2.0)
    path = save_weights(network, tmp_path / "mine.weights", dtype=dtype)  # the path as given, no .npz added
    # A .npz name in the config; init_net_for_each_sf restarts the second step from the file too.
    path = path.rename(tmp_path / "mine.npz")
    steps = initial_kernels(TINY + TWO_STEPS + [f"init_weights={path}"])
    assert len(steps) == 2
    for started in steps:
        for name, kernel in kernels(network).items():
            np.testing.assert_array_equal(started[name], kernel.astype(dtype).astype(np.float32))


def test_shipped_warm_start_beats_cubic_before_training(shared_data_dir):
    """The shipped network, untrained on the image, already adds detail the cubic upscale lacks
    on a MATLAB-made x2 LR image it never saw (Set5 bird: 40.57 dB against 36.79)."""
    assert WARM_START.stat().st_size < 500_000  # a few hundred KB in the package
    config = load_config(overrides=["init_weights=warm_start"])
    lr = read_image(shared_data_dir / "set5/lr_x2/bird.png")[0]
    hr = read_image(shared_data_dir / "set5/hr/bird.png")[0]
    network = build_zssr_net()
    set_init_weights(network, read_init_weights(config.model, channels=3))
    cubic = interpolate_son(lr, (2.0, 2.0), hr.shape[:2], config.scale.upscale_method)
    sr = np.clip(keras.ops.convert_to_numpy(network(cubic[None], training=False))[0], 0, 1)
    assert evaluate(sr, hr, 2)["psnr"] > evaluate(cubic, hr, 2)["psnr"] + 2.0


def test_rgb_weights_on_a_gray_image_give_the_mean_of_the_rgb_outputs(shared_data_dir):
    """A gray image is an RGB one with equal channels: the converted network's output is the
    mean of the RGB network's three output channels on it (so the warm start serves gray
    photos too, e.g. `--config fast` on a microscope frame)."""
    config = load_config(overrides=["init_weights=warm_start"])
    rgb_net, gray_net = build_zssr_net(), build_zssr_net(channels=1)
    set_init_weights(rgb_net, read_init_weights(config.model, channels=3))
    set_init_weights(gray_net, read_init_weights(config.model, channels=1))
    lr = read_image(shared_data_dir / "set5/lr_x2/bird.png")[0].mean(axis=2, keepdims=True)
    cubic = interpolate_son(lr, (2.0, 2.0), (2 * lr.shape[0], 2 * lr.shape[1]), config.scale.upscale_method)
    gray = keras.ops.convert_to_numpy(gray_net(cubic[None], training=False))[0]
    rgb = keras.ops.convert_to_numpy(rgb_net(np.repeat(cubic, 3, axis=2)[None], training=False))[0]
    np.testing.assert_allclose(gray[..., 0], rgb.mean(axis=2), atol=1e-4)  # float32 sums in another order
    check_inputs(config, lr)  # accepted before training


@pytest.mark.parametrize("init_weights, channels, message", [
    ("small", 3, r"depth 3 \(this run: 8\), width 8 \(this run: 64\); run with model.depth=3 and model.width=8"),
    ("other", 3, r"holds arrays \['weights'\] .* not the 3x3 conv kernels"),
    ("text", 3, r"cannot be read as a .npz weights file \(not a .npz archive\); give a file written by"),
    ("missing", 3, "no such file; give the path of a .npz weights file"),
])
def test_a_file_that_does_not_fit_is_refused_before_training(tmp_path, init_weights, channels, message):
    files = {"small": lambda path: save_weights(build_zssr_net(3, 8, 3), path),
             "other": lambda path: np.savez(path, weights=np.zeros((3, 3))),
             "text": lambda path: path.write_text("not weights")}
    if init_weights in files or init_weights == "missing":
        path = tmp_path / f"{init_weights}.npz"
        files.get(init_weights, lambda _: None)(path)
        init_weights = str(path)
    config = load_config(overrides=[f"init_weights={init_weights}"])
    with pytest.raises(ZSSRError, match=message):
        check_inputs(config, np.zeros((20, 20, channels), np.float32))


def test_default_starts_from_the_shipped_warm_start_and_says_so(capsys):
    # The default network (depth 8, width 64, one x2 step): init_weights "auto" is the warm start.
    quick = [o for o in TINY if not o.startswith("model.")]
    (started,) = initial_kernels(quick)
    shipped = read_init_weights(load_config().model, channels=3)
    assert started.keys() == shipped.keys()
    for name, kernel in shipped.items():
        np.testing.assert_array_equal(started[name], kernel)
    image = np.full((16, 16, 3), 0.5, np.float32)
    ZSSR(load_config(overrides=[*quick, "progress_every=1"])).run(image)
    assert "network: the shipped warm start (x2); learning rate: 0.001, x0.5 every 500 iterations" in capsys.readouterr().out


def test_the_shipped_file_is_the_network_auto_picks_it_for():
    with np.load(WARM_START) as data:
        shapes = {key: data[key].shape for key in data.files}
    assert shapes == kernel_shapes(WARM_START_NETWORK["depth"], WARM_START_NETWORK["width"], 3)


def test_warm_start_on_a_first_step_other_than_x2_is_warned_about():
    assert not setting_warnings(load_config(overrides=["init_weights=warm_start"]))
    (message,) = setting_warnings(load_config(overrides=["init_weights=warm_start", "scale_factors=[[4, 4]]"]))
    assert "trained for x2, and the first scale step is x4" in message and "init_weights=auto or none" in message
    assert not setting_warnings(load_config(overrides=["scale_factors=[[4, 4]]"]))  # auto: random init there


def test_unknown_value_is_refused_by_the_config():
    with pytest.raises(ZSSRError, match="init_weights is 'warmstart'; use none .*, warm_start .* or the path"):
        load_config(overrides=["init_weights=warmstart"])


BLIND_PRESETS = ("blind", "blind_real", "given_kernel")


@pytest.mark.parametrize("preset", BLIND_PRESETS)
def test_the_blind_warm_start_loads_for_every_preset_that_uses_it(preset):
    config = load_config(preset)
    assert config.model.init_weights == "warm_start_blind"
    loaded = read_init_weights(config.model, channels=3)
    assert {name: kernel.shape for name, kernel in loaded.items()} == kernel_shapes(8, 64, 3)
    assert all(np.isfinite(kernel).all() for kernel in loaded.values())


def test_auto_picks_the_blind_warm_start_when_the_kernel_is_estimated():
    assert load_config(overrides=["kernel=estimate"]).model.init_weights == "warm_start_blind"
    assert load_config(overrides=["kernel=estimate", "scale_factors=[[4, 4]]"]).model.init_weights == "none"
    assert load_config().model.init_weights == "warm_start"


def blurred_bird(shared_data_dir):
    """(LR, HR, kernel) of Set5 bird blurred with an anisotropic Gaussian and subsampled x2 on
    the block-centre grid: a kernel far from bicubic."""
    hr = read_image(shared_data_dir / "set5/hr/bird.png")[0]
    kernel = gaussian_kernel(11, 2.0, 0.9, angle=0.6)
    return degrade(hr, kernel, 2, "block_centre"), hr, kernel


def test_the_blind_warm_start_undoes_blur_the_bicubic_one_does_not(shared_data_dir):
    """Untrained on the image, the kernel-aware warm start already sharpens a blurred LR image's
    cubic upscale; the bicubic warm start, trained for MATLAB's kernel, gains far less there."""
    lr, hr, _ = blurred_bird(shared_data_dir)
    cubic = interpolate_son(lr, (2.0, 2.0), hr.shape[:2], "cubic")
    scores = {}
    for init_weights in ("warm_start", "warm_start_blind"):
        network = build_zssr_net()
        set_init_weights(network, read_init_weights(load_config(overrides=[f"init_weights={init_weights}"]).model, 3))
        sr = np.clip(keras.ops.convert_to_numpy(network(cubic[None], training=False))[0], 0, 1)
        scores[init_weights] = evaluate(sr, hr, 2)["psnr"]
    cubic_psnr = evaluate(cubic, hr, 2)["psnr"]
    assert scores["warm_start_blind"] > cubic_psnr + 1.5
    assert scores["warm_start_blind"] > scores["warm_start"] + 0.5


def test_a_short_run_from_the_blind_warm_start_beats_the_random_start(shared_data_dir):
    """The same 40 iterations of the `given_kernel` preset with the true kernel on a blurred image
    score higher from the blind warm start than from random weights."""
    lr, hr, kernel = blurred_bird(shared_data_dir)
    scores = {}
    for init_weights in ("none", "warm_start_blind"):
        config = load_config("given_kernel", [f"init_weights={init_weights}", "learning_rate_schedule=cosine",
                                              "max_iters=40", "crop_size=64", "back_projection_iters=[0]",
                                              "progress_every=0", "precision=float32"])
        scores[init_weights] = evaluate(ZSSR(config, verbose=False).run(lr, kernels=[kernel]).sr, hr, 2)["psnr"]
    assert scores["warm_start_blind"] > scores["none"] + 1.0
