"""What a mesh download can be converted to, and what a conversion gives back.

The API offers these formats and answers with an :class:`Exported`; the conversion itself
(:mod:`core.mesh_export`, trimesh) runs in a bounded child process, so the API process never
loads the geometry stack for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

EXPORT_FORMATS: Final = ("glb", "stl", "obj", "3mf")
"""Formats :func:`core.mesh_export.export_mesh` writes."""


@dataclass(frozen=True)
class Exported:
    """One downloadable file: its bytes, media type and extension (no dot)."""

    data: bytes
    media_type: str
    extension: str
