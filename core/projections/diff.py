"""What changed between two points of a project's history.

Objects are compared field by field; for every object whose mesh changed, both meshes are
loaded and compared geometrically: counts, volume, area, bounds, and the symmetric Hausdorff
distance estimated from points sampled on both surfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import trimesh  # type: ignore[import-untyped]

from core.scene import document

SURFACE_SAMPLES = 4000

MeshLoader = Callable[[str], trimesh.Trimesh]
"""Blob key → mesh."""


def scene_diff(old_state: bytes, new_state: bytes, load_mesh: MeshLoader,
               samples: int = SURFACE_SAMPLES) -> dict[str, Any]:
    old = document.snapshot(old_state)[document.OBJECTS]
    new = document.snapshot(new_state)[document.OBJECTS]
    diff = document.diff_objects(old, new)
    geometry = {}
    for object_id, fields in diff["changed"].items():
        if "blob" in fields and old[object_id].get("blob") and new[object_id].get("blob"):
            geometry[object_id] = mesh_diff(load_mesh(old[object_id]["blob"]),
                                            load_mesh(new[object_id]["blob"]), samples)
    return diff | {"geometry": geometry}


def mesh_diff(a: trimesh.Trimesh, b: trimesh.Trimesh,
              samples: int = SURFACE_SAMPLES) -> dict[str, Any]:
    """How mesh ``b`` differs from mesh ``a``.

    Parameters
    ----------
    a, b : trimesh.Trimesh
        Meshes in the same units.
    samples : int
        Points sampled on each surface (seeded, so the estimate is repeatable).

    Returns
    -------
    dict
        ``vertices``/``faces``: change in count; ``volume`` (None unless both are watertight)
        and ``area``: change; ``bounds``: {"min": (3,) change, "max": (3,) change};
        ``hausdorff``: symmetric Hausdorff distance estimate, in mesh units.
    """
    volume = (float(b.volume - a.volume)
              if a.is_watertight and b.is_watertight else None)
    return {
        "vertices": int(len(b.vertices) - len(a.vertices)),
        "faces": int(len(b.faces) - len(a.faces)),
        "volume": volume,
        "area": float(b.area - a.area),
        "bounds": {"min": (b.bounds[0] - a.bounds[0]).tolist(),
                   "max": (b.bounds[1] - a.bounds[1]).tolist()},
        "hausdorff": hausdorff(a, b, samples),
    }


def hausdorff(a: trimesh.Trimesh, b: trimesh.Trimesh, samples: int = SURFACE_SAMPLES) -> float:
    """Symmetric Hausdorff distance, estimated from points sampled on each surface (and its
    vertices) and their exact closest points on the other surface; it approaches the true
    distance from below as ``samples`` grows."""
    if len(a.faces) == 0 or len(b.faces) == 0:
        return float("inf")
    return max(_directed(a, b, samples, seed=1), _directed(b, a, samples, seed=2))


def _directed(a: trimesh.Trimesh, b: trimesh.Trimesh, samples: int, seed: int) -> float:
    points = np.vstack([trimesh.sample.sample_surface(a, samples, seed=seed)[0], a.vertices])
    _, distances, _ = trimesh.proximity.closest_point(b, points)
    return float(distances.max())
