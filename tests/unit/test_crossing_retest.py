"""Testing a nudge only near the faces it moved (:func:`workers.mesh.crossings.retested`).

The crossing faces found by testing only the faces near a move must be those a test of the
whole mesh finds, including faces none of whose corners moved that a moved face now crosses.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import workers.mesh.crossings as crossings
from tests.synthetic_meshes import cad_part
from workers.mesh.crossings import crossing_faces, forget_answers, nudged, retested


def _spiked_spheres() -> tuple[np.ndarray, np.ndarray, int]:
    """Two spheres of 1,280 faces apart, the first's vertex on +x pulled out into the
    second as a spike; the arrays and the spike's vertex."""
    first = trimesh.creation.icosphere(3)
    second = trimesh.creation.icosphere(3)
    second.apply_translation([2.5, 0.0, 0.0])
    vertices = np.vstack([first.vertices, second.vertices])
    faces = np.vstack([first.faces, second.faces + len(first.vertices)]).astype(np.int64)
    tip = int(np.argmax(first.vertices[:, 0]))
    vertices[tip] = [1.8, 0.0, 0.0]
    return vertices, faces, tip


@pytest.mark.parametrize("tip_at", [
    (2.4, 0.6, 0.0),  # through the second sphere further up: faces it never touched
    (2.6, -0.5, 0.5),
    (1.55, 0.0, 0.0),  # just through
    (1.0, 0.0, 0.0),  # back out: nothing crosses
])
def test_a_retest_near_a_move_finds_what_the_whole_test_finds(
        tip_at: tuple[float, float, float]) -> None:
    vertices, faces, tip = _spiked_spheres()
    before = crossing_faces(vertices, faces)
    assert len(before) > 0
    moved = np.unique(faces[before])  # as a nudge moves them: every corner of every crossing
    trial = vertices.copy()
    trial[tip] = tip_at
    others = moved[moved != tip]
    trial[others] += np.random.default_rng(1).uniform(-1.0, 1.0, (len(others), 3)) * 1e-3

    near = retested(trial, faces, moved)
    forget_answers()
    whole = crossing_faces(trial, faces)

    assert near is not None
    np.testing.assert_array_equal(near, whole)


def test_faces_whose_corners_did_not_move_are_found_when_a_moved_face_crosses_them() -> None:
    vertices, faces, tip = _spiked_spheres()
    moved = np.unique(faces[crossing_faces(vertices, faces)])
    trial = vertices.copy()
    trial[tip] = (2.4, 0.6, 0.0)
    still = np.asarray(~np.isin(faces, moved).any(axis=1))

    near = retested(trial, faces, moved)

    assert near is not None
    assert still[near].sum() >= 1  # the spike now crosses faces that nothing touched


def test_a_move_of_most_of_the_mesh_is_left_to_the_whole_test() -> None:
    vertices, faces, _ = _spiked_spheres()
    assert retested(vertices, faces, np.arange(len(vertices))) is None


def test_a_nudge_tested_near_its_faces_parts_a_cad_body_as_the_whole_test_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotated CAD body whose needle fans touch (2,201 of 4,224 faces crossing): the first
    nudge moves half of it and is tested whole, the next only near its faces; the body comes
    out the same, to the bit, as when every nudge is tested whole, and free of crossings."""
    part = cad_part(0, size=0.5)
    largest = max(part.split(only_watertight=False), key=lambda body: len(body.faces))
    body = trimesh.Trimesh(largest.vertices, largest.faces, process=False)
    answers: list[int | None] = []

    def counted(vertices: np.ndarray, faces: np.ndarray, moved: np.ndarray) -> np.ndarray | None:
        found = retested(vertices, faces, moved)
        answers.append(None if found is None else len(found))
        return found

    monkeypatch.setattr(crossings, "retested", counted)
    forget_answers()
    near = nudged(body, near_only=True)
    forget_answers()
    whole = nudged(body)

    assert near is not None and whole is not None
    assert any(answer is not None for answer in answers)  # some try was tested near its faces
    np.testing.assert_array_equal(near.vertices, whole.vertices)
    forget_answers()
    assert crossing_faces(near.vertices, near.faces).size == 0
