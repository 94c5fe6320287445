"""Finishing steps shared by the model-based backends: close, fit a face budget, reframe, size.

Model decoders (Shap-E's marching cubes, Hunyuan3D's octree extraction) return raw
surfaces in their own frames. The studio wants closed, outward-wound meshes in its frame
(y up, facing +z, centred, longest side 1) within a face budget, like the weight-free
backend produces.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import trimesh
from scipy.spatial import cKDTree

# A quarter turn about x takes +z (Shap-E's up) to +y (the studio's up) and keeps handedness.
Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2.0, [1.0, 0.0, 0.0])


def is_closed(mesh: trimesh.Trimesh) -> bool:
    """Watertight, consistently wound and enclosing positive volume."""
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def close_surface(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Clean `mesh` and close it where that is cheap; returns a new mesh.

    Duplicate vertices are merged (decoders emit one vertex per cell edge, so neighbours
    may coincide), degenerate and repeated faces dropped, small holes filled and the
    winding made consistent and outward. A surface that is still open afterwards is
    returned as it is; :func:`is_closed` tells.
    """
    closed = mesh.copy()
    closed.merge_vertices()
    closed.update_faces(closed.nondegenerate_faces())
    closed.update_faces(closed.unique_faces())
    closed.remove_unreferenced_vertices()
    if not closed.is_watertight:
        trimesh.repair.fill_holes(closed)
    trimesh.repair.fix_normals(closed)
    return closed


def decimate_closed(mesh: trimesh.Trimesh, budget: int) -> trimesh.Trimesh | None:
    """Quadric-decimate to at most `budget` faces; None where that does not stay closed.

    Decimation of a closed surface can pinch it (non-manifold edges) when the budget is
    far below the input's detail; callers then fall back to a coarser extraction.
    """
    if len(mesh.faces) <= budget:
        return mesh
    simple = mesh.simplify_quadric_decimation(face_count=budget)
    simple = close_surface(simple)
    if len(simple.faces) > budget or (is_closed(mesh) and not is_closed(simple)):
        return None
    return simple


def transfer_vertex_colours(
    source: trimesh.Trimesh, colours: npt.NDArray[np.uint8], target: trimesh.Trimesh
) -> npt.NDArray[np.uint8]:
    """Colours for `target`'s vertices from the nearest of `source`'s.

    Parameters
    ----------
    source : mesh whose vertices carry `colours`
    colours : (n, 4) uint8 RGBA, one row per vertex of `source`
    target : mesh derived from `source` (cleaned or decimated)

    Returns
    -------
    (m, 4) uint8 RGBA, one row per vertex of `target`
    """
    _, nearest = cKDTree(source.vertices).query(target.vertices)
    return colours[nearest]


def to_studio_frame(mesh: trimesh.Trimesh, *, z_up: bool) -> trimesh.Trimesh:
    """Rotate a z-up mesh to y-up, centre its bounding box and scale its longest side to 1."""
    framed = mesh.copy()
    if z_up:
        framed.apply_transform(Z_UP_TO_Y_UP)
    low, high = framed.bounds
    framed.apply_translation(-(low + high) / 2.0)
    extent = float((high - low).max())
    if extent > 0:
        framed.apply_scale(1.0 / extent)
    return framed


def to_height(mesh: trimesh.Trimesh, height_mm: float) -> trimesh.Trimesh:
    """Scale a mesh in the studio's frame (y up) uniformly so that it stands `height_mm` tall.

    Generators make shapes of no particular size (longest side 1); the studio stores meshes
    in millimetres, which its analysis and exports read. A shape with no height (a flat
    sheet) is sized by its longest side instead.
    """
    sized = mesh.copy()
    low, high = sized.bounds
    extent = float(high[1] - low[1]) or float((high - low).max())
    if extent > 0:
        sized.apply_scale(height_mm / extent)
    return sized
