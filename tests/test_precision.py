"""Choosing the compute precision from what the hardware runs natively."""

import pytest

from zssr_tf import precision
from zssr_tf.errors import ZSSRError


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse avx512f amx_bf16 amx_tile", "mixed_bfloat16"),
    ("fpu sse avx512f avx512_bf16", "mixed_bfloat16"),
    ("fpu sse avx2", "float32"),
])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"model name\t: Test CPU\nflags\t\t: {flags}\n")
    real_path = precision.Path
    monkeypatch.setattr(precision, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.setattr(precision, "first_gpu", lambda: None)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("float32") == "float32"
    assert precision.device_name() == "Test CPU"


@pytest.mark.parametrize("gpu, expected", [
    (("NVIDIA H100", (9, 0)), "mixed_bfloat16"), (("NVIDIA A100", (8, 0)), "mixed_bfloat16"),
    (("Tesla V100", (7, 0)), "mixed_float16"), (("Tesla P100", (6, 0)), "float32"),
])
def test_auto_on_gpu_follows_its_compute_capability(monkeypatch, gpu, expected):
    monkeypatch.setattr(precision, "first_gpu", lambda: gpu)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("mixed_float16") == "mixed_float16"
    assert precision.device_name() == gpu[0]


def test_float16_needs_a_gpu(monkeypatch):
    monkeypatch.setattr(precision, "first_gpu", lambda: None)
    with pytest.raises(ZSSRError, match="needs a GPU"):
        precision.resolve_precision("mixed_float16")


def test_auto_tile_size_fits_the_budget():
    from zssr_tf.ensemble import auto_tile_size

    tile = auto_tile_size(64, budget_bytes=1 << 30)
    assert tile * tile * 64 * 4 * 4 <= 1 << 30 < (tile + 1) ** 2 * 64 * 4 * 4
    assert auto_tile_size(64, budget_bytes=1) == 64  # never below a useful tile
