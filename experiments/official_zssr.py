"""Run the official ZSSR code (github.com/assafshocher/ZSSR: Python 2, TensorFlow 1) under TensorFlow 2.

    python experiments/official_zssr.py CHECKOUT LR.png [--max-iters N] [--legacy-polyfit] [--save-sr SR.npy]

CHECKOUT is the user's own clone of the official repository. Its licence is academic and
non-commercial, so none of its code is in this repository: its modules are imported from CHECKOUT
at run time, unchanged on disk. `run_official` runs its default `Config()` (x2 in one jump, bicubic
kernel, at most 3000 iterations under its slope/std learning-rate policy, 8-way self-ensemble with
back projection) on one LR image with result saving and plotting off, and returns the wall seconds
of building and running it, the training iterations it ran and its SR image. The CLI prints these
as JSON (the SR image only into --save-sr) and sends the official code's own prints to stderr.
`bench_speed.py --side-by-side --official CHECKOUT` runs the CLI in a child process per image, as
the shims below change process-wide state.

Shims, none of which touches the checkout:
- Python 2 syntax: the modules are compiled from their source with `print` statements rewritten
  as calls, and `xrange` is bound to `range` in each of them.
- `import tensorflow` inside them gets `tensorflow.compat.v1`, with v2 behaviour (eager) disabled.
- `learning_rate_slope_range / run_test_every` is a slice bound, so the config's slope range is an
  int whose `/` floors as Python 2's did (256 / 50 -> 5 tests in each line fit).
- With `legacy_polyfit`, the policy's `np.polyfit(cov=True)` scales the covariance by
  residuals / (n - 4) as NumPy < 1.16 did (the code's own time) instead of NumPy's residuals / (n - 2):
  3x the slope variance for its 5-point fits, so the learning rate drops sooner and runs are shorter.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import sys
import time
import tokenize
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402

MODULES = ("ZSSR", "configs", "utils", "imresize")


def py3_source(source: str) -> str:
    """`source` with its Python 2 `print` statements rewritten as `print(...)` calls."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    inserts, previous = [], tokenize.NEWLINE
    for i, token in enumerate(tokens):
        if token.type in (tokenize.NL, tokenize.COMMENT):
            continue
        if (token.type == tokenize.NAME and token.string == "print" and tokens[i + 1].string != "("
                and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)):
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == tokenize.NEWLINE)
            last = next(j for j in range(end - 1, i - 1, -1) if tokens[j].type not in (tokenize.NL, tokenize.COMMENT))
            inserts += [(token.end, "("), (tokens[last].end, ")")]
        previous = token.type
    lines = source.splitlines(keepends=True)
    for (row, col), text in reversed(inserts):
        lines[row - 1] = lines[row - 1][:col] + text + lines[row - 1][col:]
    return "".join(lines)


class _Py2Loader(importlib.machinery.SourceFileLoader):
    """Compiles a module through `py3_source` (writing no bytecode cache) and gives it `xrange`."""

    def get_code(self, fullname):
        return compile(py3_source(self.get_data(self.path).decode()), self.path, "exec", dont_inherit=True)

    def exec_module(self, module):
        module.xrange = range
        super().exec_module(module)


class _Py2Int(int):
    """An int whose `/` floors, as Python 2's did between ints."""

    def __truediv__(self, other):
        return int(self) // other


class _LegacyPolyfitNumpy:
    """NumPy, but `polyfit(..., cov=True)` scales the covariance as NumPy < 1.16 did."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def polyfit(x, y, deg, cov=False):
        coefficients, covariance = np.polyfit(x, y, deg, cov=True)
        dof = len(x) - (deg + 1)
        return (coefficients, covariance * dof / (dof - 2)) if cov else coefficients


def import_official(checkout: Path):
    """The official `ZSSR` module from `checkout`, imported under the shims (see the module doc)."""
    import tensorflow.compat.v1 as tf1

    tf1.disable_v2_behavior()
    saved = {name: sys.modules.pop(name) for name in ("tensorflow", *MODULES) if name in sys.modules}
    sys.modules["tensorflow"] = tf1
    try:
        for name in MODULES:
            path = checkout / f"{name}.py"
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: CHECKOUT must be a clone of github.com/assafshocher/ZSSR")
            spec = importlib.util.spec_from_file_location(name, path, loader=_Py2Loader(name, str(path)))
            sys.modules[name] = importlib.util.module_from_spec(spec)
        for name in ("imresize", "utils", "configs", "ZSSR"):  # dependencies first
            sys.modules[name].__spec__.loader.exec_module(sys.modules[name])
        return sys.modules["ZSSR"]
    finally:
        for name in ("tensorflow", *MODULES):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def run_official(checkout: Path, lr_path: Path, max_iters: int | None = None, legacy_polyfit: bool = False) -> dict:
    """The official default x2 ZSSR on the image at `lr_path`: {'wall_s': seconds from building the
    network to the final output, 'train_s' of which in its training loop (with its tests every 50
    iterations), 'test_s' in its final self-ensemble, 'iterations': training iterations run,
    'lr_drops': iterations at which the policy cut the learning rate, 'sr': float32 HxWx3 output in
    [0, 1]}. `max_iters` overrides the config's 3000 (for smoke tests); `legacy_polyfit`: see the
    module doc."""
    import matplotlib.image

    official = import_official(Path(checkout))
    if legacy_polyfit:
        official.np = _LegacyPolyfitNumpy()
    conf = official.Config()
    conf.save_results = conf.plot_losses = False
    conf.learning_rate_slope_range = _Py2Int(conf.learning_rate_slope_range)
    if max_iters is not None:
        conf.max_iters = max_iters
    lr = matplotlib.image.imread(str(lr_path))  # as the official code reads a path: float32 in [0, 1]
    seconds = {"train_s": 0.0, "test_s": 0.0}

    def timed(key, method):
        def run():
            start = time.perf_counter()
            result = method()
            seconds[key] += time.perf_counter() - start
            return result
        return run

    with contextlib.redirect_stdout(sys.stderr):
        start = time.perf_counter()
        net = official.ZSSR(lr, conf)
        net.train, net.final_test = timed("train_s", net.train), timed("test_s", net.final_test)
        sr = net.run()
        wall = time.perf_counter() - start
    return {"wall_s": wall, **seconds, "iterations": sum(loss is not None for loss in net.loss),
            "lr_drops": [int(i) for i in net.learning_rate_change_iter_nums[1:]], "sr": np.asarray(sr, np.float32)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="the user's clone of github.com/assafshocher/ZSSR")
    parser.add_argument("lr", type=Path, help="the low-resolution input image")
    parser.add_argument("--max-iters", type=int, help="override the config's max_iters (3000)")
    parser.add_argument("--legacy-polyfit", action="store_true", help="NumPy < 1.16's polyfit covariance")
    parser.add_argument("--save-sr", type=Path, help="write the SR image here as a float32 .npy")
    args = parser.parse_args()
    result = run_official(args.checkout, args.lr, args.max_iters, args.legacy_polyfit)
    sr = result.pop("sr")
    if args.save_sr:
        np.save(args.save_sr, sr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
