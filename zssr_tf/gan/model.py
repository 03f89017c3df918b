"""The ZSRGAN training model: the ZSSR generator and the discriminator with their own train step.

Shaped like the Keras DCGAN example (keras-io `generative/dcgan_overriding_train_step.py`): a
`keras.Model` subclass holding both networks, `compile` taking one optimizer per network, a
`train_step` that applies them with `optimizer.apply`. `model.fit` drives it on the same
training pairs and callbacks as plain ZSSR; the callbacks see the generator's optimizer as
`model.optimizer`, and calling the model runs the generator only. The step is written once with
`keras.ops` and `zssr_tf.backend.value_and_grad`, so it runs on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import keras
from keras import ops

from zssr_tf import backend


class ZSRGAN(keras.Model):
    """Generator `generator` (the ZSSR net: interpolated son -> SR, float32 [N, h, w, C]),
    optional `discriminator` (images -> patch probabilities, see `discriminator.py`) and optional
    `perceptual` loss (callable (sr, father) -> scalar, see `perceptual.py`).

    One training iteration on a batch (interpolated sons, fathers), as ZSRGAN (Lee et al. 2021):
    SR = G(son); a discriminator step on ½·[BCE(D(father), 1) + BCE(D(SR), 0)] (SR held fixed);
    then a generator step on l1_weight·|SR − father| + adversarial_weight·BCE(D'(SR), 1) +
    perceptual_weight·perceptual(SR, father), D' being the just-updated discriminator. Terms
    with weight 0 are not computed; with only L1 the step equals ZSSR's compiled L1 step.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model | None = None, perceptual=None,
                 l1_weight: float = 1.0, adversarial_weight: float = 0.0, perceptual_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if adversarial_weight > 0 and discriminator is None:
            raise ValueError("adversarial_weight > 0 needs a discriminator")
        if perceptual_weight > 0 and perceptual is None:
            raise ValueError("perceptual_weight > 0 needs a perceptual loss")
        self.generator = generator
        self.discriminator = discriminator if adversarial_weight > 0 else None
        self.perceptual = perceptual if perceptual_weight > 0 else None
        self.l1_weight = l1_weight
        self.adversarial_weight = adversarial_weight
        self.perceptual_weight = perceptual_weight
        self.bce = keras.losses.BinaryCrossentropy()

    def compile(self, optimizer, discriminator_optimizer=None, jit_compile=False):
        """`optimizer` trains the generator (and is `model.optimizer` for the callbacks);
        `discriminator_optimizer` the discriminator, when there is one. Raises ZSSRError on a
        backend the step does not run on (`backend.check_supported`)."""
        backend.check_supported("ZSRGAN's training step")
        super().compile(optimizer=optimizer, jit_compile=jit_compile)
        self.discriminator_optimizer = discriminator_optimizer
        # Build the optimizers on their own network's variables (Keras would otherwise build
        # the generator's on every trainable variable of this model, discriminator included).
        self.optimizer.build(self.generator.trainable_variables)
        if self.discriminator is not None:
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            # Tracked as this model's non-trainable variables, so that JAX's `fit`, which passes
            # the model's variables and `model.optimizer`'s alone, carries them from step to step.
            self._discriminator_optimizer_variables = list(self.discriminator_optimizer.variables)

    def call(self, inputs, training=False):
        """The generator alone: interpolated sons [N, h, w, C] float32 -> SR [N, h, w, C]."""
        return self.generator(inputs, training=training)

    def train_step(self, *args):
        """One iteration (`_train_step`). TensorFlow's `fit` calls it with `data`; JAX's with
        (state, data), and takes (logs, state) back (`backend.jax_fit_train_step`)."""
        if backend.backend_name() == "jax":
            return backend.jax_fit_train_step(self, self._train_step, *args)
        return self._train_step(*args)

    def _train_step(self, data):
        """One iteration on `data` = (interpolated sons, fathers[, sample weights]), each
        [N, h, w, C] float32 in [0, 1] (the weights are not used): the discriminator step, then
        the generator step (see the class docstring). Returns the logs: "loss" (the generator's
        weighted total), "l1_loss", and when computed "adversarial_loss", "perceptual_loss",
        "discriminator_loss", "discriminator_real", "discriminator_fake" (mean D outputs) and
        "discriminator_learning_rate"."""
        son, father, _ = keras.utils.unpack_x_y_sample_weight(data)
        generator = self.generator

        def generator_loss():
            sr = generator(son, training=True)
            logs = {}
            if self.discriminator is not None:
                # Held fixed: the discriminator step does not train the generator.
                logs.update(self._discriminator_step(father, ops.stop_gradient(sr)))
            l1 = ops.mean(ops.abs(sr - father))
            loss = self.l1_weight * l1
            logs["l1_loss"] = l1
            if self.discriminator is not None:
                d_sr = self.discriminator(sr, training=True)
                adversarial = self.bce(ops.ones_like(d_sr), d_sr)
                loss = loss + self.adversarial_weight * adversarial
                logs["adversarial_loss"] = adversarial
            if self.perceptual is not None:
                perceptual = self.perceptual(sr, father)
                loss = loss + self.perceptual_weight * perceptual
                logs["perceptual_loss"] = perceptual
            return self.optimizer.scale_loss(loss), {"loss": loss, **logs}

        state = [*generator.non_trainable_variables, *self.optimizer.variables]
        if self.discriminator is not None:
            state += [*self.discriminator.variables, *self.discriminator_optimizer.variables]
        variables = generator.trainable_variables
        (_, logs), grads = backend.value_and_grad(generator_loss, variables, state)
        self.optimizer.apply(grads, variables)
        return logs

    def _discriminator_step(self, father, sr):
        """One discriminator update on real fathers and fixed SR outputs; its logs."""
        discriminator, optimizer = self.discriminator, self.discriminator_optimizer

        def discriminator_loss():
            d_real = discriminator(father, training=True)
            d_fake = discriminator(sr, training=True)
            d_loss = 0.5 * (self.bce(ops.ones_like(d_real), d_real) + self.bce(ops.zeros_like(d_fake), d_fake))
            return optimizer.scale_loss(d_loss), (d_loss, d_real, d_fake)

        variables = discriminator.trainable_variables
        (_, (d_loss, d_real, d_fake)), grads = backend.value_and_grad(
            discriminator_loss, variables, [*discriminator.non_trainable_variables, *optimizer.variables])
        optimizer.apply(grads, variables)
        return {"discriminator_loss": d_loss, "discriminator_real": ops.mean(d_real),
                "discriminator_fake": ops.mean(d_fake),
                "discriminator_learning_rate": ops.convert_to_tensor(optimizer.learning_rate)}
