"""Basic figures of a mesh: size, extent, area, volume and topology.

Meshes reach this module as :func:`core.meshio.load_mesh` returns them: unprocessed, so that
the figures describe the file the user uploaded rather than a silently cleaned copy.
"""

from __future__ import annotations

import numpy as np
import trimesh


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
        one closed genus-0 shell), ``shells`` (int, connected bodies) and ``units`` (str).

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
