"""Short training runs on the Keras backend that KERAS_BACKEND names, as one JSON line on stdout.

Run by tests/test_backend.py in a subprocess (the backend is fixed when Keras is imported):
`python tests/backend_checks.py [--no-tensorflow]`; with --no-tensorflow, importing TensorFlow
fails, which shows the code run here does not need it.
`python tests/backend_checks.py --final-test NETWORK.keras IMAGE.npy OUT.npy [--no-tensorflow]`
instead runs only the final test of a saved network on an image and writes its output. Tiny networks, a few steps each: it
reports what the tests assert (shapes, sums, finiteness, counters), and for the steps the
backend does not run, the ZSSRError's message.
"""

import json
import sys

if "--no-tensorflow" in sys.argv:
    sys.modules["tensorflow"] = None  # `import tensorflow` now raises ImportError

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from zssr_tf import backend  # noqa: E402
from zssr_tf.augment import FatherSampler  # noqa: E402
from zssr_tf.config import AugmentConfig  # noqa: E402
from zssr_tf.config import load_config  # noqa: E402
from zssr_tf.data import PairMaker, training_dataset  # noqa: E402
from zssr_tf.errors import ZSSRError  # noqa: E402
from zssr_tf.gan.discriminator import build_discriminator  # noqa: E402
from zssr_tf.gan.model import ZSRGAN  # noqa: E402
from zssr_tf.kernel_estimation import estimate_kernel  # noqa: E402
from zssr_tf.model import build_zssr_net  # noqa: E402
from zssr_tf.precision import first_gpu, resolve_precision  # noqa: E402
from zssr_tf.trainer import ZSSR  # noqa: E402

# The final test of the equality test (tests/test_backend.py): a self-ensemble of 8 and
# back-projection, so every backend-dependent step of it is covered.
FINAL_TEST = ["depth=3", "width=8", "init_weights=none", "back_projection_iters=[4]"]

IMAGE = ndimage.gaussian_filter(np.random.default_rng(0).random((72, 72, 3)), (1.5, 1.5, 0)).astype(np.float32)
ESTIMATION = ["estimation_runs=1", "estimation_shave=0", "generator_width=8", "patch_discriminator_width=8",
              "patch_discriminator_layers=3", "estimation_learning_rate=0.01", "seed=1"]


def numbers(values) -> list[float]:
    return [float(v) for v in np.ravel(keras.ops.convert_to_numpy(values))]


def gradients() -> dict:
    """value_and_grad and compile_step on sum(w^2) with w = (1, 2, 3), the loss function also
    assigning sum(w) to a state variable: eagerly, then compiled twice (state carried over)."""
    weights = keras.Variable(np.array([1.0, 2.0, 3.0], np.float32))
    total = keras.Variable(np.float32(0.0), trainable=False)

    def loss():
        total.assign(keras.ops.sum(weights))
        return keras.ops.sum(weights ** 2), keras.ops.max(weights)

    def step():
        (value, largest), grads = backend.value_and_grad(loss, [weights], [total])
        weights.assign(weights - 0.25 * grads[0])  # w / 2
        return value, largest, grads[0]

    (value, largest), grads = backend.value_and_grad(loss, [weights], [total])
    eager = {"value": float(value), "aux": float(largest), "grads": numbers(grads[0]), "state": float(total)}
    compiled = backend.compile_step(step, [weights, total])
    first = [numbers(v) for v in compiled()]
    second = [numbers(v) for v in compiled()]
    return {"eager": eager, "compiled": [first, second], "weights": numbers(weights), "state": float(total)}


def kernel_report(kernel, history) -> dict:
    return {"shape": list(kernel.shape), "sum": float(kernel.sum()), "finite": bool(np.all(np.isfinite(kernel))),
            "raw_sum": float(history.raw_kernel.sum()), "iterations": history.iterations}


def kernelgan() -> dict:
    # A large init gain starts the generator's kernel well away from 0, so 20 steps of a high
    # learning rate bring its sum near 1 (with the default 0.1 it stays near 0 that long).
    config = load_config("blind", [*ESTIMATION, "estimation_iters=20", "init_gain=1.0"])
    kernel, history = estimate_kernel(IMAGE, config)
    return {**kernel_report(kernel, history), "kernel_sums": history.values["kernel_sum"]}


def fkp() -> dict:
    config = load_config("blind", [*ESTIMATION, "method=fkp", "estimation_iters=10"])
    return kernel_report(*estimate_kernel(IMAGE, config))


def pair_maker(dihedral_batch: bool) -> PairMaker:
    return PairMaker(sources=(IMAGE,), base_scales=(1.0,), sampler=FatherSampler(AugmentConfig(crop_size=64)),
                     scale_factor=(2.0, 2.0),
                     kernel="cubic", noise_std=0.0, upscale_method="cubic", seed=3, dihedral_batch=dihedral_batch)


def zsrgan() -> dict:
    keras.utils.set_random_seed(4)
    generator, discriminator = build_zssr_net(3, 8, 3), build_discriminator(3, 8)
    model = ZSRGAN(generator, discriminator, None, 1.0, 0.1, 0.0)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-4), jit_compile=True)
    before = [numbers(generator.trainable_variables[0]), numbers(discriminator.trainable_variables[0])]
    history = model.fit(training_dataset(pair_maker(True), 3), epochs=1, steps_per_epoch=3, verbose=0)
    return {"logs": {name: values[-1] for name, values in history.history.items()},
            "g_iterations": int(model.optimizer.iterations),
            "d_iterations": int(model.discriminator_optimizer.iterations),
            "changed": [numbers(generator.trainable_variables[0]) != before[0],
                        numbers(discriminator.trainable_variables[0]) != before[1]]}


def core_fit() -> dict:
    keras.utils.set_random_seed(5)
    model = build_zssr_net(3, 8, 3)
    model.compile(keras.optimizers.Adam(1e-3), "mean_absolute_error")
    before = numbers(model.trainable_variables[0])
    dataset = training_dataset(pair_maker(False), 3)
    history = model.fit(dataset, epochs=1, steps_per_epoch=4, verbose=0)
    return {"dataset": type(dataset).__name__, "loss": history.history["loss"],
            "iterations": int(model.optimizer.iterations), "changed": numbers(model.trainable_variables[0]) != before}


def zssr_run() -> dict:
    """ZSSR(config).run end to end: a tiny network, a few iterations, the reconstruction and
    ground-truth tests, the final test."""
    config = load_config(None, ["depth=3", "width=8", "init_weights=none", "max_iters=12", "crop_size=32",
                                "run_test_every=4", "gt_test_every=6", "progress_every=0", "seed=2"])
    lr = IMAGE[::2, ::2]
    result = ZSSR(config, verbose=False).run(lr, gt=IMAGE)
    step = result.steps[0]
    return {"shape": list(result.sr.shape), "finite": bool(np.isfinite(result.sr).all()),
            "range": [float(result.sr.min()), float(result.sr.max())], "iterations": result.iterations,
            "tests": len(step.reconstruction_errors), "psnr": result.metrics["zssr"]["psnr"],
            "bicubic_psnr": result.metrics["bicubic"]["psnr"]}


def final_test_of(network_path: str, image_path: str, out_path: str) -> None:
    """The final test (FINAL_TEST settings) of the network saved at `network_path` on the image
    in `image_path`, written to `out_path`."""
    from zssr_tf.inference.trained import TrainedZSSR

    network = keras.saving.load_model(network_path, compile=False)
    trained = TrainedZSSR(load_config(None, FINAL_TEST), [network], [None], [None])
    np.save(out_path, trained.super_resolve(np.load(image_path)))


if "--final-test" in sys.argv:
    final_test_of(*sys.argv[sys.argv.index("--final-test") + 1:][:3])
    sys.exit(0)


def run(check, *args):
    try:
        return check(*args)
    except ZSSRError as err:
        return {"error": str(err)}


print(json.dumps({
    "backend": keras.config.backend(), "gpu": first_gpu(), "auto_precision": resolve_precision("auto"),
    "gradients": run(gradients),
    "kernelgan": run(kernelgan), "fkp": run(fkp), "zsrgan": run(zsrgan),
    "core_fit": run(core_fit), "zssr_run": run(zssr_run), "tensorflow_loaded": sys.modules.get("tensorflow") is not None,
}))
