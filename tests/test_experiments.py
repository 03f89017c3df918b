"""The experiment scripts still start: what they import exists, each answers --help.

The scripts are not part of the package, so nothing else notices when a refactor of zssr_tf
breaks one. In-process: every `from zssr_tf... import name` and `from common/<script> import name`
in a script (at the top or inside a function) still resolves, and each script imports and prints
its usage. In a subprocess (slow: a TensorFlow start-up each): a script that imports its
neighbours runs with --help from the repository root and from the experiments folder.
"""

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
SCRIPTS = sorted(p.stem for p in EXPERIMENTS.glob("*.py") if p.stem != "common")


def _project_imports(script: str) -> list[tuple[str, str]]:
    """(module, name) for each `from M import name` anywhere in the script (at the top or inside a
    function) whose M is in zssr_tf or is a module beside it (common, another script)."""
    tree = ast.parse((EXPERIMENTS / f"{script}.py").read_text())
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
            and (node.module.split(".")[0] == "zssr_tf" or (EXPERIMENTS / f"{node.module}.py").is_file())
            for alias in node.names]


def test_every_script_is_found():
    assert {"bench_set5", "bench_blind", "make_degraded_set"} <= set(SCRIPTS)


# One test over all scripts rather than one per script: each test's teardown clears the Keras
# session, which costs more than these checks.
def test_what_the_scripts_import_from_zssr_tf_and_each_other_exists(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    missing = []
    for script in SCRIPTS:
        for module, name in _project_imports(script):
            try:
                found = hasattr(importlib.import_module(module), name)
            except ImportError:
                found = False
            if not found:
                missing.append(f"experiments/{script}.py: from {module} import {name}")
    assert not missing, "\n" + "\n".join(missing)


def test_the_scripts_import_and_print_their_usage(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # as Python does for `python experiments/<script>.py`
    failures = []
    for script in SCRIPTS:
        monkeypatch.setattr(sys, "argv", [f"{script}.py", "--help"])
        try:
            importlib.import_module(script).main()
            failures.append(f"{script}: --help returned instead of exiting")
        except SystemExit as exit_info:
            out = capsys.readouterr().out
            if exit_info.code != 0 or f"usage: {script}.py" not in out:
                failures.append(f"{script}: exit {exit_info.code}, no usage line")
        except Exception as error:  # an import or start-up failure: name it and go on to the next script
            failures.append(f"{script}: {type(error).__name__}: {error}")
    assert not failures, "\n" + "\n".join(failures)


def _run_help(script_path: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, script_path, "--help"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repository root", "experiments folder"])
def test_a_script_that_builds_on_others_runs_as_a_script(where):
    """bench_kernel_psnr imports bench_blind, bench_fkp_checkpoints and common from its own folder,
    which Python puts first on sys.path for a script, wherever it is started from."""
    script, cwd = ("experiments/bench_kernel_psnr.py", REPO) if where == "repository root" else (
        "bench_kernel_psnr.py", EXPERIMENTS)
    result = _run_help(script, cwd)
    assert result.returncode == 0 and "usage: bench_kernel_psnr.py" in result.stdout, result.stderr[-2000:]


def test_the_photo_benchmark_scores_its_targets_per_cell(monkeypatch):
    """bench_photo's summary: cells by noise x quality, a target met or missed by the mean over
    the images of its cells that have every method it compares."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    bench_photo = importlib.import_module("bench_photo")

    def scores(psnr, blockiness=1.0):
        return {"psnr": psnr, "ssim": 0.8, "blockiness": blockiness, "seconds": 10.0}

    report = {"images": {
        "a_n0_q50": {"manifest": {"noise_level": 0.0, "jpeg_quality": 50}, "bicubic": scores(25.0, 1.6),
                     "blind_real": scores(26.0, 1.9), "photo": scores(27.5, 0.9)},
        "b_n5_q70": {"manifest": {"noise_level": 5.0, "jpeg_quality": 70}, "bicubic": scores(24.0, 1.3),
                     "blind_real": scores(25.0, 1.2), "photo": scores(25.2, 1.4)},
        "c_n0_qnone": {"manifest": {"noise_level": 0.0, "jpeg_quality": "none"}, "bicubic": scores(26.0),
                       "blind_real": scores(27.0), "photo": scores(27.0)}}}
    table = bench_photo.summary_table(report)
    assert "| 0 | 50 | 1 | 25.00 / 0.8000 / 1.60 | — | — | 26.00 / 0.8000 / 1.90 | 27.50 / 0.8000 / 0.90 | — |" in table
    lines = {line.split(":")[0] + ":" + line.split(":")[1]: line for line in table.splitlines() if line.startswith("- ")}
    assert "+0.85 (MISSED; n=2)" in lines["- JPEG q <= 70: photo - blind_real >= +1.0 dB"]  # (1.5 + 0.2) / 2
    assert "+0.30 (met; n=2)" in lines["- JPEG q <= 70: bicubic's blockiness - photo's >= 0"]  # (0.7 - 0.1) / 2
    assert "not measured yet" in lines["- clean (no noise, no JPEG): photo - blind >= -0.1 dB"]  # no blind run
    assert "+0.20 (MISSED; n=1)" in lines["- noisy (noise > 0, any JPEG): photo - blind_real >= +0.5 dB"]
