"""Layers run one way (docs/DESIGN.md): ``api`` imports nothing of ``workers``, ``core`` imports
neither, and the API process loads no geometry or ML stack. Importing the API once loaded
trimesh, SciPy and manifold3d (through the mesh export and the upload check) and the mesh
worker's export module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NOT_IN_THE_API = ("torch", "scipy", "manifold3d", "pymeshfix", "trimesh", "diffusers",
                  "transformers", "workers")
"""Top-level packages the API process must not load: the issue's four, the rest of the ML and
geometry stacks they come with, and the workers. NumPy is not among them: the meshopt codec
(``core.meshopt_glb``, ``?encoding=meshopt`` on stage downloads) needs it, and it is light."""


def _imported_packages(path: Path) -> set[str]:
    """Top-level package of every module ``path`` imports, wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("api", {"workers"}),
    ("core", {"workers", "api"}),
])
def test_a_layer_imports_nothing_above_it(layer, forbidden):
    offenders = {str(path.relative_to(ROOT)): sorted(found)
                 for path in sorted((ROOT / layer).rglob("*.py"))
                 if (found := _imported_packages(path) & forbidden)}
    assert offenders == {}


def test_importing_the_api_loads_no_geometry_or_ml_stack():
    code = ("import sys, api.app\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_IN_THE_API)!r}))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert loaded.stdout.strip() == "[]"
