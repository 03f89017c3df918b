"""Choosing the compute precision: the fastest one the device runs natively."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from zssr_tf.errors import ZSSRError


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX tiles or AVX-512 BF16), where oneDNN's
    bf16 convolutions run about twice as fast as float32 ones."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str) -> str:
    """Map 'auto' to a Keras dtype policy name; check that an explicit choice can run.

    auto: mixed_bfloat16 on GPUs of compute capability >= 8 (Ampere+),
    mixed_float16 on older tensor-core GPUs (7.x), mixed_bfloat16 on CPUs with native bf16
    (AMX or AVX-512 BF16), float32 otherwise.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if precision == "mixed_float16" and not gpus:
        raise ZSSRError("train.precision mixed_float16 needs a GPU; use mixed_bfloat16 or float32 on the CPU")
    if precision != "auto":
        return precision
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def device_name() -> str:
    """The GPU's name, or the CPU model, for logs."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"
