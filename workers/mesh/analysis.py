"""Basic figures of a mesh: size, extent, area, volume and topology.

Meshes reach this module as :func:`core.meshio.load_mesh` returns them: unprocessed, so that
the figures describe the file the user uploaded rather than a silently cleaned copy.
"""

from __future__ import annotations

import numpy as np
import trimesh

from core.assistant.shapes import SHAPE_VERSION


def basic_stats(mesh: trimesh.Trimesh, *, units: str = "mm") -> dict[str, object]:
    """Measure a mesh and return the figures as JSON-ready plain values.

    The topology figures (``vertices``, ``watertight``, ``winding_consistent``,
    ``euler_number``, ``shells``) are computed on the mesh with its vertices welded by
    position. Formats such as glTF, and OBJ or PLY with texture coordinates, store a vertex once
    per distinct normal or UV, so a closed textured box arrives as six separate quads; judged
    on its raw indices it would look open and in six pieces, which is not true of the solid a
    printer sees. Welding positions only joins corners that coincide (to ``trimesh.tol.merge``);
    real holes, cracks with a gap, flipped faces and extra bodies still show.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float`` and ``faces : (m, 3) int`` with finite coordinates.
    units
        Unit of the coordinates, passed through so the figures can be read alone.

    Returns
    -------
    stats
        ``vertices`` (int, distinct positions used by faces), ``faces`` (int, as stored,
        degenerate and duplicate faces included), ``bounds`` (``{"min": [x, y, z], "max":
        [x, y, z]}`` of the vertices used by faces), ``extents`` (``[dx, dy, dz]``), ``area``
        (float, total surface area), ``volume`` (float or ``None``, see below),
        ``watertight`` (bool, every edge shared by exactly two faces), ``winding_consistent``
        (bool, neighbouring faces ordered alike), ``euler_number`` (int, ``V - E + F``: 2 for
        one closed genus-0 shell), ``shells`` (int, connected bodies), ``units`` (str) and
        ``shape`` (the descriptor of :func:`shape_descriptor`, None for a mesh with no area).

        ``volume`` is the signed volume enclosed by the surface, given only when the mesh is
        watertight and consistently wound: for an open surface or faces wound both ways the
        sum of signed tetrahedra depends on the choice of origin and means nothing. A negative
        volume says the faces point inwards.
    """
    solid = _welded(mesh)
    lower, upper = solid.bounds.tolist() if len(solid.vertices) else ([0.0] * 3, [0.0] * 3)
    watertight = bool(solid.is_watertight)
    winding_consistent = bool(solid.is_winding_consistent)
    return {
        "vertices": len(solid.vertices),
        "faces": len(solid.faces),
        "bounds": {"min": lower, "max": upper},
        "extents": (np.asarray(upper) - np.asarray(lower)).tolist(),
        "area": float(solid.area),
        "volume": float(solid.volume) if watertight and winding_consistent else None,
        "watertight": watertight,
        "winding_consistent": winding_consistent,
        "euler_number": int(solid.euler_number),
        "shells": int(solid.body_count),
        "units": units,
        "shape": shape_descriptor(solid),
    }


D2_BINS = 32
D2_PAIRS = 4096


def shape_descriptor(mesh: trimesh.Trimesh) -> dict[str, object] | None:
    """A small fingerprint of the shape for finding similar designs without loading meshes.

    ``d2`` is the D2 shape distribution (Osada et al. 2002): the histogram of distances
    between random pairs of points on the surface, divided by the bounding box's diagonal so
    that it describes form rather than size, in :data:`D2_BINS` bins summing to 1. Beside it
    ``proportions`` (the sorted extents divided by the largest) and ``size`` (the diagonal, in
    the mesh's units) let neighbours be ranked by form first, then by proportions and size.
    The sample is seeded, so the same mesh always gets the same descriptor; ``version`` says
    which recipe made it, so a later recipe's descriptors are not compared with this one's.
    """
    if len(mesh.faces) == 0 or not mesh.area > 0:
        return None
    extents = np.asarray(mesh.extents, dtype=float)
    diagonal = float(np.linalg.norm(extents))
    if not diagonal > 0:
        return None
    points, _ = trimesh.sample.sample_surface(mesh, 2 * D2_PAIRS, seed=0)
    distances = np.linalg.norm(points[:D2_PAIRS] - points[D2_PAIRS:], axis=1) / diagonal
    counts, _ = np.histogram(np.clip(distances, 0.0, 1.0), bins=D2_BINS, range=(0.0, 1.0))
    ordered = np.sort(extents)[::-1]
    return {
        "version": SHAPE_VERSION,
        "d2": [round(float(c) / D2_PAIRS, 5) for c in counts],
        "proportions": [round(float(e / ordered[0]), 5) for e in ordered],
        "size": diagonal,
    }


def _welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Return a bare copy of ``mesh`` whose coincident vertices are merged.

    Only positions and faces are copied (no normals, colours or UVs), so the weld cannot be
    held apart by attributes and the caller's mesh is left untouched. Unused vertices are
    dropped by the merge.
    """
    bare = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
    bare.merge_vertices(merge_tex=True, merge_norm=True)
    return bare
