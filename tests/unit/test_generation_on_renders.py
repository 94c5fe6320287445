"""The weight-free generator on images it was not tuned on: renders of real corpus meshes
(:mod:`tests.renders`), with transparent or plain backgrounds, shading and textures.

Each final mesh must be closed, within its face budget, shaped like the object's silhouette
(the same width-to-height ratio) and painted in the object's colours.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from tests.renders import SUBJECTS, View, view
from workers.gpu.backends import GeneratedMesh, InflateBackend

CPU = torch.device("cpu")
FACE_BUDGET = 60_000
ASPECT_TOLERANCE = 0.05  # relative
COLOUR_TOLERANCE = 15.0  # per channel, out of 255


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[View, GeneratedMesh]]:
    backend = InflateBackend()
    out = {}
    for name in SUBJECTS:
        shown = view(name)
        out[name] = shown, backend.generate(shown.image, stage="final", seed=0, device=CPU,
                                            face_budget=FACE_BUDGET)
    return out


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_final_mesh_is_closed_and_within_budget(results, name: str) -> None:
    _, generated = results[name]
    mesh = generated.mesh
    assert 1000 < len(mesh.faces) <= FACE_BUDGET
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert generated.face_count == len(mesh.faces)


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_final_mesh_has_the_silhouettes_proportions(results, name: str) -> None:
    shown, generated = results[name]
    rows, columns = np.nonzero(shown.truth)
    silhouette = (np.ptp(columns) + 1) / (np.ptp(rows) + 1)
    width, height, depth = generated.mesh.extents
    assert width / height == pytest.approx(silhouette, rel=ASPECT_TOLERANCE)
    assert max(width, height) == pytest.approx(1.0)  # the studio's unit frame
    assert 0.05 < depth < max(width, height)  # a rounded solid, neither flat nor a ball


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_final_mesh_wears_the_objects_colours(results, name: str) -> None:
    """The surface's mean colour (faces weighted by area) is the object's mean colour in the
    image: no background bled in, nothing lost."""
    shown, generated = results[name]
    foreground = np.asarray(shown.image.convert("RGB"))[shown.truth].mean(axis=0)
    assert np.abs(_surface_colour(generated.mesh) - foreground).max() < COLOUR_TOLERANCE, (
        _surface_colour(generated.mesh), foreground)


def test_the_subjects_differ_in_colour_and_shape(results) -> None:
    """The checks above could not pass on one subject's mesh for another."""
    colours = {name: _surface_colour(mesh.mesh) for name, (_, mesh) in results.items()}
    aspects = {name: mesh.mesh.extents[0] / mesh.mesh.extents[1]
               for name, (_, mesh) in results.items()}
    names = sorted(results)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert (np.abs(colours[a] - colours[b]).max() > 2 * COLOUR_TOLERANCE
                    or abs(aspects[a] / aspects[b] - 1) > 2 * ASPECT_TOLERANCE), (a, b)


def _surface_colour(mesh: trimesh.Trimesh) -> np.ndarray:
    """(3,) float: RGB averaged over the surface, each face by its area."""
    faces = mesh.visual.vertex_colors[mesh.faces][:, :, :3].mean(axis=1)
    return np.asarray((faces * mesh.area_faces[:, None]).sum(axis=0) / mesh.area)
