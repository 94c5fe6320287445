"""The scene model and live collaboration are separate packages, and dependencies run one way
(docs/DESIGN.md): scene model <- events <- collaboration <- api. The model (``core.scene``)
and the event log (``core.events``) import nothing of live collaboration (``core.collab``), and
the workers, which only commit (the log tells the rooms), import nothing of it either.
Imports are read from the source (``ast``), wherever they stand, so one inside a function
counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, absolute (``from . import x``
    resolved), with each name imported from a module as a possible submodule."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    sources = sorted((ROOT / folder).rglob("*.py"))
    assert sources, f"no Python sources under {folder}"
    offenders = {}
    for path in sources:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        bad = sorted(m for m in _imported_modules(path.read_text(), package)
                     if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    return offenders


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("core/scene", ("core.collab", "core.events", "core.projections", "api", "workers")),
    ("core/events", ("core.collab", "api", "workers")),
    ("workers", ("core.collab", "api")),
])
def test_dependencies_run_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(folder, forbidden) == {}


def test_the_old_mixed_package_is_gone() -> None:
    assert not (ROOT / "core" / "crdt").exists()


def test_the_check_sees_every_form_of_import() -> None:
    """An import of ``core.collab`` in any form a module could write it is found."""
    source = ("import core.collab.room\n"
              "from core import collab\n"
              "from ..collab import protocol\n"
              "def later():\n    from core.collab.fanout import Fanout\n")
    found = _imported_modules(source, "core.scene")
    assert {"core.collab.room", "core.collab", "core.collab.protocol",
            "core.collab.fanout.Fanout"} <= found
