"""DESIGN.md §3's import rules, read from the package source with `ast` (nothing is imported).

Every `import` and `from ... import` counts wherever it stands (module top, inside a function, under
TYPE_CHECKING): a lazy import still ties the modules together.
"""

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "zssr_tf"
PACKAGE = PACKAGE_DIR.name
# The core (DESIGN.md §3): the leaves, ZSSR's parts, the trainer and the inference code. Names are
# the first component under zssr_tf, so a module that becomes a package stays covered.
LEAVES = {"image_io", "resize", "kernels", "metrics", "precision", "degradation", "warm_start", "photo"}
PARTS = {"augment", "data", "model", "callbacks", "pacing", "ensemble"}
CORE = LEAVES | PARTS | {"trainer", "inference", "time_budget"}
# gan/ and kernel_estimation/ use the leaves and the model, never what sits on top of them.
ABOVE_THE_ALGORITHM = {"cli", "pipeline", "tracking", "sweeps", "checks"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path) -> set[str]:
    """Every dotted name `path` imports: `a.b` for `import a.b`; `a.b` and `a.b.c` for `from a.b
    import c` (c may be a module or a name in it); relative imports made absolute."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names.add(source)
            names |= {f"{source}.{alias.name}" for alias in node.names}
    return names


def _imports() -> dict[str, set[str]]:
    """Each zssr_tf module's name -> the dotted names it imports."""
    return {_module_name(path): _imported_names(path) for path in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = _imports()


def _resolve(name: str) -> str | None:
    """The zssr_tf module a dotted import name lands in (`zssr_tf.config.load_config` ->
    `zssr_tf.config`), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _family(module: str) -> str:
    """The first component under zssr_tf: `zssr_tf.tracking.run` -> `tracking`."""
    return module.split(".")[1] if "." in module else ""


def _is_mlflow(name: str) -> bool:
    return name == "mlflow" or name.startswith("mlflow.")


def _targets(module: str) -> set[str]:
    """The zssr_tf modules `module` imports, itself and the packages above it left out (importing a
    submodule runs its package's __init__, which is no dependency of the module's own choosing)."""
    targets = {_resolve(name) for name in MODULES[module]} - {None, module}
    return {t for t in targets if not module.startswith(t + ".")}


def _broken(rule) -> str:
    """One line per (module, what it imports) that breaks `rule(module, imported_name)`, naming the
    zssr_tf module the import lands in (or the import as written outside the package)."""
    return "\n".join(sorted({f"{module} imports {_resolve(name) or name}" for module in MODULES
                              for name in MODULES[module] if rule(module, name)}))


def test_the_source_is_found():
    assert {"zssr_tf.trainer", "zssr_tf.callbacks", "zssr_tf.checks", "zssr_tf.tracking"} <= set(MODULES)
    assert "zssr_tf.config" in _targets("zssr_tf.trainer")


def test_the_core_imports_neither_mlflow_nor_tracking_nor_checks():
    """Tracking is a callback handed in from above; the pre-flight checks run from above too."""
    def rule(module, name):
        resolved = _resolve(name) or ""
        return _family(module) in CORE and (
            _is_mlflow(name) or _family(resolved) in ("tracking", "checks"))

    broken = _broken(rule)
    assert not broken, "\n" + broken


def test_tracking_imports_neither_the_trainer_nor_the_pipeline():
    """Tracking receives results; it computes none of them."""
    def rule(module, name):
        return _family(module) == "tracking" and _family(_resolve(name) or "") in ("trainer", "pipeline")

    broken = _broken(rule)
    assert not broken, "\n" + broken


def test_callbacks_do_not_import_checks():
    def rule(module, name):
        return _family(module) == "callbacks" and _family(_resolve(name) or "") == "checks"

    broken = _broken(rule)
    assert not broken, "\n" + broken


@pytest.mark.parametrize("family", ["gan", "kernel_estimation"])
def test_gan_and_kernel_estimation_stay_below_tracking_and_the_cli(family):
    def rule(module, name):
        return _family(module) == family and (
            _is_mlflow(name) or _family(_resolve(name) or "") in ABOVE_THE_ALGORITHM)

    broken = _broken(rule)
    assert not broken, "\n" + broken


def test_no_import_cycles():
    graph = nx.DiGraph([(module, target) for module in MODULES for target in _targets(module)])
    cycles = sorted(" -> ".join(cycle + cycle[:1]) for cycle in nx.simple_cycles(graph))
    assert not cycles, "\n" + "\n".join(cycles)
