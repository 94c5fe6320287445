"""Every package the code imports directly is one ``pyproject.toml`` declares.

A package that arrives only as another's dependency (psutil through a test tool, anyio through
starlette) works until that other package drops it; then the studio breaks on a clean install.
So each import of the studio's code, its benches and its tests is traced to the distribution
that provides it (``importlib.metadata.packages_distributions``) and that distribution must be
declared where the importing code is installed from: the product's packages by the main
dependencies (the GPU worker also by the ``gpu`` extra), benches and tests by any extra.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "workers", "api", "infra", "bench", "tests")
# Imported only where present, never declared: the operator installs it with its weights.
UNDECLARED = {
    "hy3dgen": "Hunyuan3D-2 (workers/gpu/hunyuan.py): its code and weights are the operator's; "
               "the adapter reports it unavailable when it cannot be imported",
}


def normalised(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """Declared distribution names: the main dependencies under "", each extra under its name.
    A requirement's own extras count as declared too (``psycopg[pool]`` asks for
    psycopg-pool by name), read from the installed distribution's requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project.get("optional-dependencies", {})}
    return {group: set().union(*map(_with_extras, requirements))
            for group, requirements in groups.items()}


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _with_extras(requirement: str) -> set[str]:
    match = _REQUIREMENT.match(requirement)
    assert match, f"not a requirement: {requirement!r}"
    name, extras = match.group(1), {e.strip() for e in (match.group(2) or "").split(",")}
    names = {normalised(name)}
    for needed in metadata.requires(name) or ():
        marker = re.search(r"extra\s*==\s*[\"']([^\"']+)[\"']", needed)
        if marker and marker.group(1) in extras:
            names.add(normalised(_REQUIREMENT.match(needed).group(1)))  # type: ignore[union-attr]
    return names


def allowed(path: Path, groups: Mapping[str, set[str]]) -> set[str]:
    """What may satisfy an import in ``path``: where that code is installed from."""
    top, *rest = path.relative_to(ROOT).parts
    if top in ("bench", "tests"):
        return set().union(*groups.values())
    if top == "workers" and rest[:1] == ["gpu"]:
        return groups[""] | groups["gpu"]
    return groups[""]


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, top-level module)`` of each absolute import in the file, nested ones too."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]


def providers() -> dict[str, set[str]]:
    """Top-level module → the distributions that install it. ``packages_distributions`` reads
    ``top_level.txt`` and package folders, so single-file modules (a compiled ``.so`` such as
    manifold3d's) are added from each distribution's file list."""
    found = {module: {normalised(d) for d in dists}
             for module, dists in metadata.packages_distributions().items()}
    for dist in metadata.distributions():
        for file in dist.files or ():
            module = inspect.getmodulename(file.name)
            if len(file.parts) == 1 and module and module != "__init__":
                found.setdefault(module, set()).add(normalised(dist.metadata["Name"]))
    return found


def undeclared_imports() -> list[str]:
    groups, installed = declared(), providers()
    local = set(PACKAGES) | set(sys.stdlib_module_names)
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            for line, module in imports(path):
                if module in local or module in UNDECLARED:
                    continue
                dists = installed.get(module, set())
                if not dists & allowed(path, groups):
                    where = f"{path.relative_to(ROOT)}:{line}"
                    problems.append(f"{where} imports {module} "
                                    f"(from {', '.join(sorted(dists)) or 'nothing installed'})")
    return problems


def test_every_imported_package_is_declared_where_its_importer_is_installed_from() -> None:
    assert undeclared_imports() == []


def test_the_comparison_finds_an_undeclared_import(tmp_path: Path) -> None:
    """The check above sees imports at any depth and knows a transitive package from a
    declared one (``anyio`` comes with starlette but is declared on its own)."""
    module = tmp_path / "module.py"
    module.write_text("def f():\n    import anyio.abc\n    from idna import encode\n")
    assert list(imports(module)) == [(2, "anyio"), (3, "idna")]
    installed, groups = providers(), declared()
    assert "idna" in installed["idna"] and "idna" not in groups[""]
    assert installed["anyio"] <= groups[""]
    assert "manifold3d" in installed["manifold3d"]  # a single compiled module


def test_the_gpu_libraries_are_only_in_the_gpu_extra() -> None:
    groups = declared()
    assert {"torch", "diffusers", "transformers"} <= groups["gpu"]
    assert not {"torch", "diffusers", "transformers"} & groups[""]
    assert allowed(ROOT / "workers" / "gpu" / "worker.py", groups) >= groups["gpu"]
    assert not allowed(ROOT / "workers" / "mesh" / "worker.py", groups) & groups["gpu"]
