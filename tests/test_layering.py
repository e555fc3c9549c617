"""The package's layering, as BUILD.md states it: every module imports only
from layers below its own. Read from the source with `ast` (nothing is
imported), so an upward import fails here before anyone has to notice it."""

import ast
import os

PACKAGE = "din_tf"
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)

# Top-level unit of din_tf (a subpackage or a module) -> its layer. A unit may
# import units of lower layers only; units of one layer are independent peers.
LAYERS = {
    # Foundations: no din_tf imports beyond these.
    "api_export": 0, "_command_line": 0, "_pause_for_kill_test": 0, "features": 0,
    "_serving_rows": 0,
    "schema": 1, "metrics": 1,
    "layers": 2, "training": 2, "data": 2,
    "models": 3, "export_raw": 3,  # raw-id serving needs only the schema
    "export": 4, "distribute": 4, "parameter_server": 4, "cluster_task": 4,
    "experiments": 5,
}


def _unit(dotted):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def _imported_units(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == PACKAGE:
                yield from (alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                yield _unit(node.module)
        elif isinstance(node, ast.Import):
            yield from (_unit(alias.name) for alias in node.names
                        if alias.name.startswith(PACKAGE + "."))


def _modules():
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, PACKAGE_DIR)
                yield relative, relative.split(os.sep)[0].removesuffix(".py")


def test_every_unit_has_a_layer():
    units = {unit for relative, unit in _modules() if unit != "__init__"}
    missing = sorted(units - set(LAYERS))
    assert not missing, f"add {missing} to LAYERS here and to BUILD.md's layout"


def test_no_module_imports_its_own_layer_or_above():
    upward = []
    for relative, unit in _modules():
        if unit == "__init__":
            continue  # din_tf/__init__.py re-exports the subpackages
        with open(os.path.join(PACKAGE_DIR, relative), encoding="utf-8") as f:
            tree = ast.parse(f.read(), relative)
        for target in _imported_units(tree):
            if target != unit and LAYERS.get(target, 99) >= LAYERS.get(unit, -1):
                upward.append(f"{relative} imports din_tf.{target}")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)
