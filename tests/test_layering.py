"""The architecture, checked: imports point down the layers only."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "pkpd"

#: Each module's layer.  An import must point to a strictly lower layer
#: (no two modules of one layer import each other), lazy imports inside
#: functions included.  ``metrics`` and ``statistics`` name the one home of
#: the statistics (whichever exists).
LAYER = {
    "errors": 0, "units": 0, "number_format": 0, "records": 0,
    "parameters": 1, "regimen": 1, "resources": 1,
    "population": 2,
    "model": 3, "solver": 3,
    "events": 4, "metrics": 4, "statistics": 4, "_numba_kernel": 4,
    "plotting": 5, "steady_state": 5, "kernel": 5,
    "table_engine": 6,
    "simulate": 7,
    "scenario": 8, "files": 8, "progress": 8,
    "event_table": 9,
    "run": 10,
    "teaching": 11, "taper_design": 11, "report": 11, "distributed": 11,
    "cli": 12,
    "__main__": 13,
}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            yield (node.module or "").split(".")[0] or None, node.names
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pkpd"):
            yield "ROOT", node.names
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pkpd" or alias.name.startswith("pkpd."):
                    yield "ROOT", [alias]


MODULES = sorted(p for p in PKG.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_imports_point_down(path):
    me = LAYER.get(path.stem)
    assert me is not None, f"new module {path.stem}: give it a layer in this test"
    for target, _ in _imports(path):
        assert target != "ROOT", f"{path.stem} imports the package root"
        if target is None:
            continue
        assert LAYER[target] < me, f"{path.stem} (layer {me}) imports {target} (layer {LAYER[target]})"


def test_no_module_shadows_the_standard_library():
    import sys

    clash = [p.stem for p in MODULES if p.stem in sys.stdlib_module_names]
    assert not clash, clash


def test_solver_knows_no_pharmacology():
    text = (PKG / "solver.py").read_text().lower()
    for word in ("baclofen", "plasma", "dose", "receptor", "mg"):
        assert word not in text.replace("damps", ""), word


def test_core_never_prints_or_exits():
    for name in ("model", "solver", "simulate", "population", "parameters", "regimen"):
        text = (PKG / f"{name}.py").read_text()
        assert "print(" not in text and "sys.exit" not in text, name
