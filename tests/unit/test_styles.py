"""Style presets (:mod:`workers.mesh.styles`) on made meshes and closed meshes of the corpus."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from core.errors import InvalidInput
from core.meshio import load_mesh
from tests.corpus import corpus_path
from workers.mesh.styles import (
    STYLES,
    apply_style,
    bevel_edges,
    is_closed,
    validate_style_params,
    welded,
)

CORPUS_SOLIDS = ("20mm-xyz-cube.stl", "fandisk.obj", "idler_riser.STL", "Duck.glb")
"""Closed corpus meshes: a printable test cube, a CAD part, a genus-2 part, a textured glTF."""


def _noisy_sphere() -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(subdivisions=3)
    rng = np.random.default_rng(0)
    sphere.vertices += rng.normal(scale=0.01, size=sphere.vertices.shape)
    return sphere


MADE = {
    "icosphere": lambda: trimesh.creation.icosphere(subdivisions=3),
    "box": lambda: trimesh.creation.box((2.0, 1.0, 0.5)),
    "annulus": lambda: trimesh.creation.annulus(r_min=0.5, r_max=1.0, height=0.4),
    "capsule": lambda: trimesh.creation.capsule(height=1.0, radius=0.4),
    "noisy_sphere": _noisy_sphere,
}


@cache
def _mesh(name: str) -> trimesh.Trimesh:
    if name in MADE:
        return MADE[name]()
    path = corpus_path(name)
    return load_mesh(path, file_type=path.suffix)


def mesh(name: str) -> trimesh.Trimesh:
    """A fresh copy, so no test can spoil another's input."""
    return _mesh(name).copy()


def _directions(solid: trimesh.Trimesh, tolerance: float = 1.0) -> int:
    """Distinct face normal directions (within ``tolerance`` degrees) of the welded mesh."""
    faces = welded(solid)
    normals = faces.face_normals[faces.area_faces > 1e-9 * faces.area]
    count, cosine = 0, np.cos(np.radians(tolerance))
    while len(normals):
        normals = normals[normals @ normals[0] < cosine]
        count += 1
    return count


def _mean_dihedral(solid: trimesh.Trimesh) -> float:
    return float(np.degrees(welded(solid).face_adjacency_angles).mean())


def _assert_closed_outward(styled: trimesh.Trimesh) -> None:
    solid = welded(styled)
    assert is_closed(solid), "the welded result is not closed"
    assert solid.volume > 0


# --------------------------------------------------------------------------- every style


@pytest.mark.parametrize("name", [*MADE, *CORPUS_SOLIDS])
@pytest.mark.parametrize("style", STYLES)
def test_style_keeps_a_closed_mesh_closed_and_outward(style: str, name: str) -> None:
    source = mesh(name)
    assert is_closed(welded(source))
    params = {"symmetry": "x", "detail": 0.3, "smoothness": 0.3} if style == "custom" else None
    _assert_closed_outward(apply_style(source, style, params))


@pytest.mark.parametrize("style", STYLES)
def test_style_leaves_its_input_alone(style: str) -> None:
    source = mesh("Duck.glb")
    vertices, faces = source.vertices.copy(), source.faces.copy()
    apply_style(source, style, {"symmetry": "y"} if style == "custom" else None)
    assert np.array_equal(source.vertices, vertices)
    assert np.array_equal(source.faces, faces)


def test_inverted_input_comes_out_outward() -> None:
    inside_out = mesh("icosphere")
    inside_out.invert()
    assert welded(inside_out).volume < 0
    _assert_closed_outward(apply_style(inside_out, "organic", {"subdivisions": 0}))


# --------------------------------------------------------------------------- low poly


@pytest.mark.parametrize("name", ["capsule", "noisy_sphere", "fandisk.obj", "Duck.glb"])
@pytest.mark.parametrize("ratio", [0.1, 0.3])
def test_low_poly_reaches_the_face_ratio(name: str, ratio: float) -> None:
    source = mesh(name)
    styled = apply_style(source, "low_poly", {"ratio": ratio})
    target = ratio * len(welded(source).faces)
    assert abs(len(styled.faces) - target) <= 0.2 * target


def test_low_poly_is_flat_shaded() -> None:
    styled = apply_style(mesh("capsule"), "low_poly")
    assert len(styled.vertices) == 3 * len(styled.faces)
    corner_normals = styled.vertex_normals[styled.faces]
    assert np.allclose(corner_normals, styled.face_normals[:, None, :], atol=1e-9)


def test_low_poly_never_opens_a_torus() -> None:
    # far below the annulus's natural count the collapses would pinch its hole shut
    styled = apply_style(mesh("annulus"), "low_poly", {"ratio": 0.01})
    _assert_closed_outward(styled)
    assert welded(styled).euler_number == 0


# --------------------------------------------------------------------------- organic


def test_organic_subdivides_and_smooths() -> None:
    source = mesh("noisy_sphere")
    once = apply_style(source, "organic", {"subdivisions": 1})
    twice = apply_style(source, "organic", {"subdivisions": 2, "iterations": 4})
    assert len(once.faces) == 4 * len(source.faces)
    assert len(twice.faces) == 16 * len(source.faces)
    assert _mean_dihedral(once) < 0.5 * _mean_dihedral(source)


def test_organic_smoothing_alone_reduces_roughness_and_keeps_volume() -> None:
    source = mesh("noisy_sphere")
    smooth = apply_style(source, "organic", {"subdivisions": 0, "iterations": 20})
    assert len(smooth.faces) == len(source.faces)
    assert _mean_dihedral(smooth) < 0.6 * _mean_dihedral(source)
    assert welded(smooth).volume == pytest.approx(welded(source).volume, rel=0.05)


def test_organic_subdivision_stays_within_max_faces() -> None:
    source = mesh("icosphere")
    faces = len(source.faces)
    capped = apply_style(source, "organic", {"subdivisions": 2, "max_faces": 16 * faces - 1})
    assert len(capped.faces) == 4 * faces
    none = apply_style(source, "organic", {"subdivisions": 2, "max_faces": faces})
    assert len(none.faces) == faces


# --------------------------------------------------------------------------- mechanical


@pytest.mark.parametrize("name", ["icosphere", "capsule", "noisy_sphere", "fandisk.obj"])
def test_mechanical_reduces_normal_directions(name: str) -> None:
    source = mesh(name)
    styled = apply_style(source, "mechanical")
    assert _directions(styled) < 0.7 * _directions(source)


@pytest.mark.parametrize("name", ["fandisk.obj", "20mm-xyz-cube.stl"])
def test_mechanical_edges_are_crisp(name: str) -> None:
    styled = apply_style(mesh(name), "mechanical", {"feature_angle": 30.0})
    sharp = int((np.degrees(welded(styled).face_adjacency_angles) > 30.0).sum())
    # vertices are split along the sharp edges, so their faces no longer share them; only
    # where a crease fades out inside a smooth patch can a sharp edge not be split
    joined = int((np.degrees(styled.face_adjacency_angles) > 30.0).sum())
    assert sharp > 0
    assert joined <= 0.01 * sharp


def test_mechanical_leaves_a_box_as_it_is() -> None:
    box = mesh("box")
    styled = welded(apply_style(box, "mechanical", {"ratio": 1.0}))
    assert styled.volume == pytest.approx(box.volume)
    assert np.allclose(np.sort(styled.vertices, axis=0), np.sort(box.vertices, axis=0))


# --------------------------------------------------------------------------- futuristic


def test_futuristic_is_faceted_with_hard_bevelled_edges() -> None:
    source = mesh("capsule")
    styled = apply_style(source, "futuristic")
    facets = apply_style(source, "futuristic", {"bevel": 0.0})
    assert len(styled.faces) < len(source.faces)
    # every facet keeps a shrunk copy, each edge a two-triangle chamfer, each corner a fan
    assert len(styled.faces) == 7 * len(facets.faces)
    assert len(styled.vertices) == 3 * len(styled.faces)
    smooth_max = np.degrees(welded(source).face_adjacency_angles).max()
    assert np.degrees(welded(facets).face_adjacency_angles).max() > 3 * smooth_max


def test_bevel_keeps_an_open_rim_in_place() -> None:
    box = mesh("box")
    open_box = trimesh.Trimesh(box.vertices, box.faces[2:], process=False)
    bevelled = welded(bevel_edges(open_box, 0.05))
    assert bevelled.is_winding_consistent
    assert len(_rim(bevelled)) == len(_rim(open_box)) == 4
    assert np.allclose(np.sort(_rim(bevelled), axis=0), np.sort(_rim(open_box), axis=0))


def _rim(solid: trimesh.Trimesh) -> np.ndarray:
    """Positions of the vertices on edges used by one face only."""
    boundary = trimesh.grouping.group_rows(solid.edges_sorted, require_count=1)
    return solid.vertices[np.unique(solid.edges_sorted[boundary])]


# --------------------------------------------------------------------------- custom


@pytest.mark.parametrize("axis", ["x", "y", "z"])
@pytest.mark.parametrize("keep", ["positive", "negative"])
def test_custom_symmetry_mirrors_about_the_plane(axis: str, keep: str) -> None:
    source = mesh("Duck.glb")
    styled = apply_style(source, "custom", {"symmetry": axis, "keep": keep})
    solid = welded(styled)
    _assert_closed_outward(styled)
    index = "xyz".index(axis)
    centre = source.bounds.mean(axis=0)[index]
    reflected = solid.vertices.copy()
    reflected[:, index] = 2.0 * centre - reflected[:, index]
    distance, _ = cKDTree(solid.vertices).query(reflected)
    assert distance.max() < 1e-9 * np.linalg.norm(source.extents) + 1e-12
    side = solid.vertices[:, index] - centre
    assert side.min() < 0 < side.max()


def test_custom_symmetry_keeps_an_open_mesh_open_and_symmetric() -> None:
    sphere = mesh("icosphere")
    sphere.apply_translation([0.3, 0.0, 0.0])
    cap = trimesh.Trimesh(sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < 0.6])
    styled = welded(apply_style(cap, "custom", {"symmetry": "x"}))
    assert not styled.is_watertight
    assert styled.is_winding_consistent
    reflected = styled.vertices * [-1.0, 1.0, 1.0] + [2.0 * cap.bounds.mean(axis=0)[0], 0, 0]
    assert cKDTree(styled.vertices).query(reflected)[0].max() < 1e-9


def test_custom_detail_decimates_or_subdivides() -> None:
    source = mesh("capsule")
    faces = len(source.faces)
    assert len(apply_style(source, "custom", {"detail": -1.0}).faces) < 0.1 * faces
    assert len(apply_style(source, "custom", {"detail": 0.4}).faces) == 4 * faces
    assert len(apply_style(source, "custom", {"detail": 0.9}).faces) == 16 * faces
    assert len(apply_style(source, "custom", {}).faces) == faces


def test_custom_smoothness_reduces_roughness() -> None:
    source = mesh("noisy_sphere")
    smooth = apply_style(source, "custom", {"smoothness": 1.0})
    assert _mean_dihedral(smooth) < 0.6 * _mean_dihedral(source)


# --------------------------------------------------------------------------- parameters


def test_defaults_are_filled_in() -> None:
    assert validate_style_params("low_poly", None) == {"ratio": 0.1}
    custom = validate_style_params("custom", {"symmetry": "z", "detail": -1})
    assert custom["symmetry"] == "z"
    assert custom["detail"] == -1.0
    assert custom["keep"] == "positive"
    assert validate_style_params("organic", {"subdivisions": 2.0})["subdivisions"] == 2


@pytest.mark.parametrize(
    ("style", "params", "message"),
    [
        ("cartoon", {}, "unknown style"),
        ("low_poly", {"ratio": 0.0}, "ratio must lie in"),
        ("low_poly", {"ratio": 1.5}, "ratio must lie in"),
        ("low_poly", {"ratio": "half"}, "must be a number"),
        ("low_poly", {"ratio": True}, "must be a number"),
        ("low_poly", {"ratio": float("nan")}, "must lie in"),
        ("low_poly", {"target": 100}, "unknown low_poly parameter"),
        ("low_poly", [0.1], "must be an object"),
        ("organic", {"subdivisions": 3}, "subdivisions must lie in"),
        ("organic", {"subdivisions": 1.5}, "whole number"),
        ("organic", {"max_faces": 10**9}, "max_faces must lie in"),
        ("mechanical", {"angle": 90}, "angle must lie in"),
        ("futuristic", {"bevel": -0.01}, "bevel must lie in"),
        ("custom", {"symmetry": "w"}, "symmetry must be one of"),
        ("custom", {"keep": "left"}, "keep must be one of"),
        ("custom", {"detail": 2}, "detail must lie in"),
    ],
)
def test_bad_parameters_are_refused(style: str, params: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_style_params(style, params)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        apply_style(mesh("box"), style, params)  # type: ignore[arg-type]


def test_a_mesh_without_faces_is_refused() -> None:
    empty = trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    with pytest.raises(InvalidInput, match="without faces"):
        apply_style(empty, "low_poly")
