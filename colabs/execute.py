"""Runs the notebooks in colabs/ and stores executed copies under docs/notebooks/.

    pip install -e ".[test]"   # nbclient, nbformat, ipykernel
    python colabs/execute.py                           # every notebook
    python colabs/execute.py colabs/quickstart.ipynb   # one

Each notebook runs top to bottom in a fresh Jupyter kernel on this Python,
from the repository root, at the sizes of its `parameters` cell (the sizes
its text documents); its output directory goes to a temporary folder. The
copy in docs/notebooks/ keeps every output (pictures included), so readers
see what to expect before running it. The notebooks in colabs/ themselves
stay without outputs. tests/test_notebooks.py checks that, runs each at
small sizes through `execute`, and checks that every executed copy has the
code of its notebook (rerun this script after editing one).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPOSITORY_ROOT / "colabs").glob("*.ipynb"))
EXECUTED_DIR = REPOSITORY_ROOT / "docs" / "notebooks"
KERNEL_NAME = "sparse_shared_jax"
CELL_TIMEOUT_S = 3600
# The tag of the first cell of an executed copy (where it comes from).
EXECUTED_COPY_TAG = "executed-copy"
# The parameter holding each notebook's output directory.
OUTPUT_PARAMETER = {
    "quickstart.ipynb": "WORKDIR",
    "losses_in_your_code.ipynb": "PICTURES",
    "transfer.ipynb": "WORKDIR",
}


def parameters_cell_index(notebook: nbformat.NotebookNode) -> int:
    """The index of the cell tagged 'parameters'."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            return index
    raise ValueError("the notebook has no cell tagged 'parameters'")


def execute(
    path: pathlib.Path, parameters: dict, scratch: pathlib.Path
) -> nbformat.NotebookNode:
    """Runs the notebook at `path` with `parameters` set after its parameters cell.

    Args:
      path: a notebook in colabs/.
      parameters: names and values assigned in a cell inserted right after the
        cell tagged 'parameters' (tagged 'injected-parameters').
      scratch: an empty directory for the kernel's spec.

    Returns:
      The executed notebook (outputs included).

    Raises:
      nbclient.exceptions.CellExecutionError: naming the cell that raised.
    """
    notebook = nbformat.read(path, as_version=4)
    if parameters:
        injected = nbformat.v4.new_code_cell(
            "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        )
        injected.metadata["tags"] = ["injected-parameters"]
        notebook.cells.insert(parameters_cell_index(notebook) + 1, injected)
    spec_dir = scratch / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sparse_shared_jax",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(scratch)]),
    )
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(REPOSITORY_ROOT)}},
    )
    client.execute()
    return notebook


def main(paths: list[str]) -> None:
    notebooks = [pathlib.Path(p).resolve() for p in paths] or NOTEBOOKS
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = pathlib.Path(scratch)
            output = {OUTPUT_PARAMETER[path.name]: str(scratch / "output")}
            start = time.perf_counter()
            print(f"Running {path.name} ...", flush=True)
            executed = execute(path, output, scratch / "kernels")
        seconds = time.perf_counter() - start
        target = EXECUTED_DIR / path.name
        nbformat.write(executed_copy(executed, path.name, seconds), target)
        print(f"  {seconds:.0f} s; wrote {target}", flush=True)


def executed_copy(
    executed: nbformat.NotebookNode, name: str, seconds: float
) -> nbformat.NotebookNode:
    """The executed notebook as stored in docs/notebooks/: the injected cell
    (a temporary output directory) removed, so its code cells are those of
    colabs/`name`, and a first cell saying where the copy comes from."""
    executed.cells = [
        cell
        for cell in executed.cells
        if "injected-parameters" not in cell.metadata.get("tags", [])
    ]
    header = nbformat.v4.new_markdown_cell(
        f"*An executed copy of [colabs/{name}](../../colabs/{name}), made by "
        f"`python colabs/execute.py` on {time.strftime('%Y-%m-%d')} at the sizes "
        f"of its parameters cell ({seconds / 60:.0f} min on {os.cpu_count()} CPU "
        "cores); its outputs show what to expect. Edit the notebook in colabs/, "
        "not this copy.*"
    )
    header.metadata["tags"] = [EXECUTED_COPY_TAG]
    executed.cells.insert(0, header)
    return executed


if __name__ == "__main__":
    main(sys.argv[1:])
