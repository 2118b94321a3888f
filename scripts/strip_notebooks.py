"""Strip incidental outputs from notebooks before committing.

Keeps only the outputs of cells tagged ``nbval-check-output`` (the golden values nbval
compares); everything else loses its outputs and execution counts.
Usage: python scripts/strip_notebooks.py notebooks/*.ipynb
"""
from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        keep = "nbval-check-output" in cell.metadata.get("tags", []) and cell.outputs
        # nbval treats a cell with outputs but no execution count as "unrun": number the kept ones.
        cell.execution_count = count if keep else None
        if keep:
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = count
        else:
            cell.outputs = []
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        strip(p)
