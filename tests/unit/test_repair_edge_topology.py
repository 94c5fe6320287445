"""The bodies' edge figures measured at once are each body's own (issue 25).

The repair reads each body's closedness, winding and pinched vertices off one measurement of
the cleaned mesh (:func:`workers.mesh.edge_topology.edge_topologies`) instead of measuring
every body apart. Here the two are compared on meshes with every kind of edge: closed and
open bodies, non-manifold edges, bodies pinched at a vertex, faces wound against their
neighbours, the synthetic corpus and the registry's meshes.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from tests.registry_meshes import registry_entries
from tests.synthetic_meshes import synthetic_corpus
from workers.mesh.edge_topology import body_labels, edge_topologies, edge_topology
from workers.mesh.repair import _bodies, _welded


def _joined(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return trimesh.Trimesh(
        np.vstack([m.vertices for m in meshes]),
        np.vstack([m.faces + k for m, k in zip(meshes, offsets, strict=True)]),
        process=False,
    )


def _made() -> list[tuple[str, trimesh.Trimesh]]:
    box = trimesh.creation.box()
    flipped = box.copy()
    flipped.faces[3] = flipped.faces[3][::-1]  # one face wound against its neighbours
    corner = trimesh.creation.box()
    corner.apply_translation((1.0, 1.0, 1.0))  # shares a vertex with box once welded
    fin = trimesh.Trimesh(
        np.vstack([box.vertices, [[0.0, 0.0, 2.0]]]),
        np.vstack([box.faces, [[0, 1, len(box.vertices)]]]),
        process=False,
    )  # a face on an edge of the box: a non-manifold edge
    sheet = trimesh.Trimesh(box.vertices, box.faces[2:], process=False)  # two faces taken
    spread = [m.copy() for m in (box, flipped, sheet, fin)]
    for i, m in enumerate(spread):
        m.apply_translation((5.0 * i, 0.0, 0.0))
    return [
        ("pinched boxes", _joined(box, corner)),
        ("one face flipped", flipped),
        ("a fin on an edge", fin),
        ("an open box", sheet),
        ("all apart", _joined(*spread)),
    ]


def _cases() -> list[tuple[str, trimesh.Trimesh]]:
    cases = _made()
    cases += [(c.name, c.mesh) for c in synthetic_corpus(range(2), 0.3)]
    cases += [(e.name, e.load()) for e in registry_entries()
              if e.faces is not None and e.faces <= 4_000]
    return cases


@pytest.mark.parametrize("name, mesh", _cases(), ids=[name for name, _ in _cases()])
def test_each_body_measured_at_once_is_that_body_measured_alone(
    name: str, mesh: trimesh.Trimesh
) -> None:
    welded = _welded(mesh.vertices, mesh.faces)
    labels = body_labels(welded.faces, len(welded.vertices))
    bodies = _bodies(welded, labels)
    at_once = edge_topologies(welded.faces, len(welded.vertices), labels[1], labels[0])
    alone = [edge_topology(body.faces, len(body.vertices)) for body in bodies]
    assert at_once == alone, name
    assert edge_topology(welded.faces, len(welded.vertices)).non_manifold_vertices == sum(
        t.non_manifold_vertices for t in alone
    )


def test_the_made_meshes_hold_every_kind_of_edge() -> None:
    figures = {name: edge_topology(*_welded_arrays(mesh)) for name, mesh in _made()}
    assert figures["pinched boxes"].non_manifold_vertices == 1
    assert not figures["one face flipped"].winding_consistent
    assert figures["a fin on an edge"].non_manifold_edges == 1
    assert figures["an open box"].boundary_edges > 0


def _welded_arrays(mesh: trimesh.Trimesh) -> tuple[np.ndarray, int]:
    welded = _welded(mesh.vertices, mesh.faces)
    return welded.faces, len(welded.vertices)
