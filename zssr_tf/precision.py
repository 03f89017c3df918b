"""Choosing the compute precision: the fastest one the device runs natively, on the Keras backend
this process runs (TensorFlow, JAX or PyTorch; each is asked about its own devices)."""

from __future__ import annotations

from pathlib import Path

from zssr_tf.backend import backend_name
from zssr_tf.errors import ZSSRError


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX tiles or AVX-512 BF16), where oneDNN's
    bf16 convolutions run about twice as fast as float32 ones."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def first_gpu() -> tuple[str, tuple[int, int]] | None:
    """The first GPU the Keras backend computes on: (its name, its CUDA compute capability as
    (major, minor); (0, 0) where the backend does not say), or None when it has none.

    TensorFlow: `tf.config`; JAX: `jax.devices("gpu")`; PyTorch: `torch.cuda`.
    """
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        return details.get("device_name", "GPU"), tuple(details.get("compute_capability", (0, 0)))
    if name == "jax":
        import jax

        try:
            gpu = jax.devices("gpu")[0]
        except RuntimeError:  # no GPU platform
            return None
        capability = str(getattr(gpu, "compute_capability", "0.0")).split(".")
        return gpu.device_kind, (int(capability[0]), int(capability[1]) if len(capability) > 1 else 0)
    if name == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0))
    return None


def resolve_precision(precision: str) -> str:
    """Map 'auto' to a Keras dtype policy name; check that an explicit choice can run.

    auto, on every backend: mixed_bfloat16 on GPUs of compute capability >= 8 (Ampere+),
    mixed_float16 on older tensor-core GPUs (7.x), float32 on other GPUs. On the CPU:
    mixed_bfloat16 with TensorFlow on CPUs with native bf16 (AMX or AVX-512 BF16; measured
    through oneDNN), float32 otherwise and on the other backends (their CPU bf16 is unmeasured).
    Raises ZSSRError for mixed_float16 without a GPU.
    """
    gpu = first_gpu()
    if precision == "mixed_float16" and gpu is None:
        raise ZSSRError("train.precision mixed_float16 needs a GPU; use mixed_bfloat16 or float32 on the CPU")
    if precision != "auto":
        return precision
    if gpu is not None:
        capability = gpu[1]
        if capability >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if backend_name() == "tensorflow" and cpu_has_native_bf16() else "float32"


def device_name() -> str:
    """The GPU's name, or the CPU model, for logs."""
    gpu = first_gpu()
    if gpu is not None:
        return gpu[0]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"
