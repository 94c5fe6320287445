"""The winding number's rays find every crossing, however they are bucketed (issue 25).

:func:`workers.mesh.winding.ray_crossings` leaves out the cells of a triangle's box that lie
wholly outside one of its edges, to save testing rays that cannot cross it. Leaving out a
cell where a ray does cross would change the volume a repair is judged by and the solid a
self-union makes, so the crossings are compared here, to the bit, with every ray tested
against every triangle, on the meshes where rays graze faces: axis-aligned CAD faces with
rays on their edges and corners, long rotated slivers, and a part far from the origin.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from numpy.typing import NDArray
from scipy import ndimage

from tests.registry_meshes import registry_entries
from tests.synthetic_meshes import synthetic_corpus
from workers.mesh.winding import _Footprints, _grown, ray_crossings

Crossings = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]


def _every_pair(triangles: NDArray[np.float64], points: NDArray[np.float64]) -> Crossings:
    """The crossings of every ray with every triangle, no bucketing at all."""
    triangle = np.repeat(np.arange(len(triangles)), len(points))
    ray = np.tile(np.arange(len(points)), len(triangles))
    hit, height, sign = _Footprints.of(triangles).crossings(triangle, points[ray])
    return ray[hit], height, sign


def _sorted(crossings: Crossings) -> NDArray[np.float64]:
    ray, height, sign = crossings
    rows = np.column_stack([ray.astype(np.float64), height, sign.astype(np.float64)])
    return rows[np.lexsort(rows.T[::-1])]


def _cases() -> list[tuple[str, trimesh.Trimesh]]:
    box = trimesh.creation.box((2.0, 3.0, 4.0))
    far = box.copy()
    far.apply_translation((1e6, -3e5, 2e4))
    cases = [("box", box), ("box far from the origin", far)]
    cases += [(c.name, c.mesh) for c in synthetic_corpus(range(2), 0.3)
              if c.kind in ("offset_shell", "cad_part", "figure_eight", "mirrored_overlap")]
    small = [e for e in registry_entries() if e.faces is not None and e.faces <= 1_000]
    cases += [(e.name, e.load()) for e in small[:4]]
    return cases


@pytest.mark.parametrize("name, mesh", _cases(), ids=[name for name, _ in _cases()])
def test_bucketed_rays_find_exactly_the_crossings_of_every_pair(
    name: str, mesh: trimesh.Trimesh
) -> None:
    rng = np.random.default_rng(7)
    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    if len(triangles) > 1_500:
        triangles = triangles[rng.choice(len(triangles), 1_500, replace=False)]
    corners = triangles.reshape(-1, 3)
    for axis in range(3):
        u, v = [b for b in range(3) if b != axis]
        turned = np.ascontiguousarray(triangles[:, :, [u, v, axis]])
        lo, hi = corners.min(axis=0)[[u, v]], corners.max(axis=0)[[u, v]]
        # rays on a lattice through the corners of the box (on the faces' own edges for the
        # axis-aligned parts), at the corners themselves, and at random
        lattice = np.stack(np.meshgrid(*[np.linspace(lo[i], hi[i], 33) for i in range(2)]),
                           axis=-1).reshape(-1, 2)
        scattered = lo + rng.random((400, 2)) * (hi - lo)
        if np.any(_Footprints.of(turned).facing != 0):  # not a flat part seen edge-on
            assert len(ray_crossings(turned, scattered)[0]) > 0, (name, axis)
        for points in (lattice, corners[:, [u, v]][:300], scattered):
            found = ray_crossings(turned, points)
            np.testing.assert_array_equal(_sorted(found), _sorted(_every_pair(turned, points)))


def test_grown_marks_what_repeated_cube_dilation_marks() -> None:
    rng = np.random.default_rng(3)
    cases = (((30, 41, 25), 0.01, 3), ((12, 9, 20), 0.002, 7), ((8, 8, 8), 0.0, 2))
    for shape, share, steps in cases:
        marked = rng.random(shape) < share
        marked[0, 0, 0] = marked[-1, 5, -1] = share > 0  # marks on the border grow inwards only
        expected = ndimage.binary_dilation(marked, np.ones((3, 3, 3), dtype=bool),
                                           iterations=steps)
        np.testing.assert_array_equal(_grown(marked, steps), expected)
