"""The notebooks in colabs/: stored without outputs, and run top to bottom.

Every notebook is executed in a fresh Jupyter kernel running this Python
(the virtualenv under test), from the repository root, with its cell tagged
``parameters`` followed by an injected cell that sets the small sizes of
`CI_PARAMETERS`. A cell that raises fails the test with the cell's
traceback.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import nbformat
import pytest

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT / "colabs"))
import execute  # noqa: E402  (colabs/execute.py: runs a notebook in a kernel)

NOTEBOOKS = execute.NOTEBOOKS
# The placeholder the README and every notebook use for the repository, until
# it is replaced by the project's real GitHub "owner/name".
REPOSITORY_PATTERN = re.compile(r'^REPOSITORY = "([^"]+)"$', re.MULTILINE)

# Small sizes for CI; WORKDIR-like paths are set per test to a temporary dir.
CI_PARAMETERS = {
    "quickstart.ipynb": {
        "NUM_TRAIN_STEPS": 3,
        "NUM_TASKS": 4,
        "SUPPORT_SIZE": 16,
        "QUERY_SIZE": 8,
        "EVAL_SAMPLES": 200,
    },
    "losses_in_your_code.ipynb": {
        "NUM_STEPS": 3,
        "NUM_TASKS": 4,
        "SUPPORT_SIZE": 16,
        "QUERY_SIZE": 8,
        "EVAL_SAMPLES": 200,
    },
    "transfer.ipynb": {
        "NUM_TRAIN_STEPS": 3,
        "NUM_TASKS": 4,
        "SUPPORT_SIZE": 16,
        "QUERY_SIZE": 8,
        "EVAL_SAMPLES": 200,
        "TRAIN_SIZE": 200,
        "VALIDATION_SIZE": 100,
        "TEST_SIZE": 200,
        "ERM_STEPS": 5,
    },
}
OUTPUT_PARAMETER = execute.OUTPUT_PARAMETER


def _read(path: pathlib.Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _parameters_cell_index(notebook: nbformat.NotebookNode) -> int:
    indices = [
        i
        for i, cell in enumerate(notebook.cells)
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(indices) == 1, (
        f"expected exactly one cell tagged 'parameters', found {len(indices)}"
    )
    return indices[0]


def _assigned_names(source: str) -> set[str]:
    return {
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def test_there_are_notebooks():
    names = {path.name for path in NOTEBOOKS}
    assert set(CI_PARAMETERS) <= names
    assert names <= set(CI_PARAMETERS), (
        f"add CI sizes for {sorted(names - set(CI_PARAMETERS))} to CI_PARAMETERS"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_without_outputs(path):
    notebook = _read(path)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has stored outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_parameters_cell_sets_every_ci_parameter(path):
    notebook = _read(path)
    source = notebook.cells[_parameters_cell_index(notebook)].source
    expected = set(CI_PARAMETERS[path.name]) | {OUTPUT_PARAMETER[path.name]}
    missing = expected - _assigned_names(source)
    assert not missing, f"the parameters cell does not set {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_repository_placeholder_matches_readme(path):
    readme = (REPOSITORY_ROOT / "README.md").read_text()
    readme_repository = re.search(
        r"colab\.research\.google\.com/github/([^/]+/[^/]+)/", readme
    )
    assert readme_repository, "the README has no Open in Colab badge"
    sources = "\n".join(cell.source for cell in _read(path).cells)
    assert REPOSITORY_PATTERN.findall(sources) == [readme_repository.group(1)]
    badge = (
        f"colab.research.google.com/github/{readme_repository.group(1)}/blob/main/"
        f"colabs/{path.name}"
    )
    assert badge in readme, f"the README has no Open in Colab badge for {path.name}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, tmp_path):
    parameters = dict(CI_PARAMETERS[path.name])
    parameters[OUTPUT_PARAMETER[path.name]] = str(tmp_path / "output")
    # Raises CellExecutionError naming the failing cell.
    execute.execute(path, parameters, tmp_path / "kernels")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_executed_copy_is_current_and_ran_cleanly(path):
    copy = execute.EXECUTED_DIR / path.name
    assert copy.exists(), f"no executed copy: run `python colabs/execute.py {path}`"
    executed = _read(copy)
    nbformat.validate(executed)
    assert execute.EXECUTED_COPY_TAG in executed.cells[0].metadata.get("tags", [])
    source_code = [
        cell.source for cell in _read(path).cells if cell.cell_type == "code"
    ]
    copy_code = [cell.source for cell in executed.cells if cell.cell_type == "code"]
    assert copy_code == source_code, (
        f"{copy} is stale: rerun `python colabs/execute.py {path}`"
    )
    outputs = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), (
        "the executed copy shows no picture"
    )
