"""The teaching notebooks: committed clean, written to the house rules, and executed headless.

Each notebook is copied to a temporary folder and run top to bottom with
nbclient (kernel ``python3``); a failing cell fails the test with the cell's
number, source and error.  The package is found through ``PYTHONPATH`` so
the notebooks run from a checkout without installing pkpd.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
CELL_TIMEOUT_S = 120
#: Top-level modules a notebook may import.
ALLOWED_IMPORTS = {"pkpd", "numpy", "matplotlib"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in kernel tracebacks

pytestmark = pytest.mark.slow  # deselected by the fast loop: pytest -m 'not slow'

nbformat = pytest.importorskip("nbformat")


def _code(nb):
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _python(source: str) -> str:
    """Cell source without IPython magics, for ``ast``."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def test_the_notebooks_are_numbered_in_reading_order_and_listed():
    stems = [p.stem for p in NOTEBOOKS]
    numbers = [int(s[:2]) for s in stems]
    assert numbers[:7] == [1, 2, 3, 4, 5, 6, 7] and numbers == sorted(set(numbers)), stems
    listing = (ROOT / "notebooks" / "README.md").read_text()
    for stem in stems:
        assert f"({stem}.ipynb)" in listing, f"{stem} is not listed in notebooks/README.md"
    assert (ROOT / "notebooks" / "README.md").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in _code(nb):
        c = nb.cells[i]
        assert c.outputs == [], f"{path.name}: cell {i} has outputs; clear them before committing"
        assert c.execution_count is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_house_rules(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "a title first"
    assert "Learning goals" in first.source
    assert "not for dosing" in first.source.lower() or "never for dosing" in first.source.lower()
    text = "\n".join(c.source for c in nb.cells)
    assert "%matplotlib inline" in text
    assert "## Try this" in text
    for i, source in _code(nb):
        tree = ast.parse(_python(source))
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)), (
                f"{path.name}: cell {i} defines a function or class; helpers go in pkpd/teaching.py"
            )
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name}: cell {i} imports {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from nbclient.exceptions import CellExecutionError

    work = tmp_path / path.name
    shutil.copy(path, work)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "agg")  # no display; %matplotlib inline still draws into the notebook
    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
        failure = None
    except CellExecutionError as exc:
        failure = _ANSI.sub("", str(exc))
    if failure is not None:
        failing = next(
            (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)),
            "?",
        )
        pytest.fail(f"{path.name}: cell {failing} failed\n{failure}", pytrace=False)

    # every notebook shows at least one plain static figure as a normal cell output
    images = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code"
        for o in c.outputs if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})
    ]
    assert images, f"{path.name}: no static figure among the cell outputs"
    # every notebook prints numbers it computed
    assert any(o.output_type == "stream" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
