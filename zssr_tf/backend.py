"""Hand-written training steps on any Keras backend: gradients and compiled steps.

Keras runs the same layers and `keras.ops` on TensorFlow, JAX and PyTorch, but each backend
differentiates and compiles in its own way (Keras' guides "Customizing what happens in fit()"
for TensorFlow, JAX and PyTorch): TensorFlow records a `tf.GradientTape` and compiles with
`tf.function`; JAX differentiates pure functions of the variables' values (`jax.value_and_grad`
over a `keras.StatelessScope` that maps each variable to a value, which is what
`Model.stateless_call` and `Optimizer.stateless_apply` do inside) and compiles them with
`jax.jit`; PyTorch records on the tensors themselves (`torch.autograd`). This module is the one
place that knows which. A step written with `value_and_grad`, `optimizer.apply` and `keras.ops`
runs on all three; `compile_step` compiles it, and `jax_fit_train_step` lets such a step be a
`Model.train_step` under JAX's `fit`.

Kernel estimation does not run on PyTorch (`check_supported`): Keras' spectral normalisation,
in its discriminator, assigns its kernel in place inside the forward pass, which torch's
autograd rejects when it differentiates through that pass.

`select_backend` sets the backend before Keras is imported and `import_library` loads its
library (one clear error when it is not installed); importing this module does not import Keras.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from zssr_tf.errors import ZSSRError

# Keras 3's training backends: the ones `select_backend` takes and the steps here run on (Keras'
# numpy and openvino backends only run inference).
BACKENDS = ("tensorflow", "jax", "torch")
# Each backend's library (its import and distribution name) and how to install it.
LIBRARIES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
INSTALL = {"tensorflow": "pip install tensorflow", "jax": "pip install 'zssr-tf[jax]'", "torch": "pip install torch"}


def select_backend(name: str | None) -> str:
    """Choose the Keras backend before Keras is imported; returns the backend that will run.

    `name`: one of BACKENDS, or None to keep `KERAS_BACKEND` (TensorFlow when unset). Sets
    KERAS_BACKEND (importing the package already set XLA_PYTHON_CLIENT_PREALLOCATE=false, see
    `zssr_tf/__init__.py`). Raises ZSSRError for an unknown name, and when Keras is already
    loaded with another backend (the backend is fixed when Keras is imported).
    """
    wanted = name or os.environ.get("KERAS_BACKEND", "tensorflow")
    if wanted not in BACKENDS:
        raise ZSSRError(f"unknown Keras backend {wanted!r}: use one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        if keras.config.backend() != wanted:
            raise ZSSRError(f"Keras is already loaded with the {keras.config.backend()} backend, so {wanted} cannot be "
                            f"chosen now: set KERAS_BACKEND={wanted} before starting Python")
        return wanted
    os.environ["KERAS_BACKEND"] = wanted
    return wanted


def import_library(name: str) -> None:
    """Import the library of Keras backend `name` (one of BACKENDS). Raises ZSSRError naming the
    package to install when it cannot be imported."""
    try:
        __import__(LIBRARIES[name])
    except ImportError as err:
        raise ZSSRError(f"the {name} Keras backend needs the {LIBRARIES[name]} package, which cannot be imported "
                        f"({err}): {INSTALL[name]}") from None


def library_version(name: str) -> str:
    """The installed version of backend `name`'s library (e.g. "0.10.2"), "unknown" when its
    distribution has no metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(LIBRARIES[name])
    except PackageNotFoundError:
        return "unknown"


def train_step_jit(jit_compile: bool) -> bool:
    """`Model.compile`'s jit_compile for the current backend, given the config's
    `train.jit_compile` (which means what it means on TensorFlow: XLA instead of TensorFlow's own
    graph, which on CPU runs oneDNN's convolutions and is the faster one there). JAX: always True,
    XLA being JAX's only compiler (measured on CPU: experiments/reports/backends.md). PyTorch:
    False (eager; `torch.compile` costs minutes of compilation for one small network)."""
    name = backend_name()
    return jit_compile if name == "tensorflow" else name == "jax"


def backend_name() -> str:
    """The Keras backend this process runs ("tensorflow", "jax" or "torch")."""
    import keras

    return keras.config.backend()


def check_supported(what: str, backends: Sequence[str] = BACKENDS) -> None:
    """Raise ZSSRError naming the `backends` that run `what` (e.g. "kernel estimation") when the
    current Keras backend is not one of them."""
    if backend_name() not in backends:
        names = " and ".join(filter(None, [", ".join(backends[:-1]), backends[-1]]))
        raise ZSSRError(f"{what} runs on the {names} Keras backend{'s' if len(backends) > 1 else ''}, not on "
                        f"{backend_name()}: set KERAS_BACKEND to {'one of them' if len(backends) > 1 else 'it'}")


def value_and_grad(fn: Callable[[], tuple[Any, Any]], variables: Sequence, state: Sequence = ()):
    """Call `fn()` and differentiate the loss it returns with respect to `variables`.

    fn: no arguments; returns (loss, aux): a float scalar tensor and any nest of tensors.
    variables: the Keras variables to differentiate by (e.g. `model.trainable_variables`).
    state: every other Keras variable that fn reads and that changes during training, or that
        fn assigns: batch-norm statistics, spectral-norm vectors, a discriminator's weights and
        its optimizer's variables when fn also takes a discriminator step.
    Returns ((loss, aux), grads), grads a list of tensors shaped like `variables`.

    Assignments fn makes to `variables` and `state` take effect, as when fn runs plainly. On
    TensorFlow this is `tf.GradientTape`; on PyTorch `torch.autograd.grad` (`state` is not
    needed there), which fails when fn assigns in place a variable it used before. On JAX, fn
    runs under `jax.value_and_grad` as a pure function of the variables' values (a
    `keras.StatelessScope`) and the values fn assigned are written back afterwards; there a
    variable fn assigns and then reads (Keras' SpectralNormalization does so with its kernel) is
    differentiated through the assignment, while TensorFlow's tape stops at it. Raises ZSSRError
    on other backends (`check_supported`).
    """
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, aux = fn()
        return (loss, aux), tape.gradient(loss, list(variables))
    if name == "torch":
        import torch

        loss, aux = fn()
        return (loss, aux), list(torch.autograd.grad(loss, [v.value for v in variables]))
    check_supported("this training step")
    import jax
    import keras

    variables, state = list(variables), list(state)
    current = [v.value for v in state]  # read here: inside `compile_step` these are its mapped values

    def pure(values):
        with keras.StatelessScope(state_mapping=[*zip(variables, values), *zip(state, current)]) as scope:
            loss, aux = fn()
        return loss, (aux, [scope.get_current_value(v) for v in variables + state])

    (loss, (aux, updated)), grads = jax.value_and_grad(pure, has_aux=True)([v.value for v in variables])
    for variable, value in zip(variables + state, updated):
        variable.assign(value)
    return (loss, aux), grads


def compile_step(step: Callable, variables: Sequence, jit_compile: bool = False,
                 varying_shapes: bool = False) -> Callable:
    """A compiled `step(*args)` that reads and assigns the Keras `variables` (every variable of
    the networks and optimizers it trains; constant ones may be left out). Call it like `step`;
    it returns what `step` returns, as backend tensors.

    TensorFlow: `tf.function(step, jit_compile=jit_compile)`, with `varying_shapes` one graph
    for inputs of many shapes (`reduce_retracing`). JAX: always `jax.jit` (XLA is
    JAX's compiler), over a pure function of the variables' values that writes the new values
    back after each call; it compiles again for new argument shapes. PyTorch: `step` itself,
    run eagerly. Raises ZSSRError on other backends (`check_supported`).
    """
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(step, jit_compile=jit_compile, reduce_retracing=varying_shapes)
    if name == "torch":
        return step
    check_supported("this training step")
    import jax
    import keras

    unique = list({id(v): v for v in variables}.values())

    def pure(values, args):
        with keras.StatelessScope(state_mapping=list(zip(unique, values))) as scope:
            outputs = step(*args)
        return outputs, [scope.get_current_value(v) for v in unique]

    compiled = jax.jit(pure)

    def run(*args):
        outputs, values = compiled([v.value for v in unique], args)
        for variable, value in zip(unique, values):
            variable.assign(value)
        return outputs

    return run


def compile_inference(fn: Callable, variables: Sequence) -> Callable:
    """A compiled `fn(*args)` that only reads the Keras `variables` (a network's forward pass),
    for inputs of any shape; call it like `fn`, it returns what `fn` returns as backend tensors.

    TensorFlow: one `tf.function` for every shape (`compile_step` with `varying_shapes`). JAX:
    `jax.jit` of a pure function of the variables' values (compiled again for each new input
    shape). PyTorch: `fn` run eagerly under `torch.no_grad()` (no graph kept for gradients).
    """
    name = backend_name()
    if name == "tensorflow":
        return compile_step(fn, variables, varying_shapes=True)
    if name == "torch":
        import torch

        def run_without_grad(*args):
            with torch.no_grad():
                return fn(*args)

        return run_without_grad
    check_supported("inference")
    import jax
    import keras

    unique = list({id(v): v for v in variables}.values())

    def pure(values, args):
        with keras.StatelessScope(state_mapping=list(zip(unique, values))):
            return fn(*args)

    compiled = jax.jit(pure)
    return lambda *args: compiled([v.value for v in unique], args)


def jax_fit_train_step(model, step: Callable[[Any], dict], state, data):
    """Run `step(data)`, a TensorFlow-style `train_step` (it calls `value_and_grad` and
    `optimizer.apply`, returns the logs), as JAX's `Model.fit` calls `train_step(state, data)`.

    `state` = (trainable, non-trainable, optimizer, metrics variable values) in the order of
    `model.trainable_variables`, `model.non_trainable_variables`, `model.optimizer.variables`
    and `model.metrics_variables`; returns (logs, new state) in the same layout. Every variable
    step reads that changes during training must be among these (a second optimizer's
    variables: track them as the model's non-trainable variables).
    """
    import keras

    groups = [model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables]
    mapping = [pair for group, values in zip(groups, state) for pair in zip(group, values)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = step(data)
    return logs, tuple([scope.get_current_value(v) for v in group] for group in groups)
