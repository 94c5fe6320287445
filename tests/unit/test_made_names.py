"""A mesh an operation made is named by what was done to it, readably: "teapot (repaired)"."""

from __future__ import annotations

import pytest

from core.events.job_kinds import MESH_MATERIAL, MESH_OPTIMISE, MESH_REPAIR, MESH_STYLE
from workers.mesh.worker import made_name


@pytest.mark.parametrize(("source", "kind", "made"), [
    ("teapot.stl", MESH_REPAIR, "teapot (repaired).glb"),
    ("teapot (repaired).glb", MESH_OPTIMISE, "teapot (repaired, optimised).glb"),
    ("teapot (repaired, optimised).glb", MESH_REPAIR, "teapot (repaired, optimised).glb"),
    ("ball.obj", MESH_MATERIAL, "ball (textured).glb"),
    ("lamp (v2).stl", MESH_STYLE, "lamp (v2) (styled).glb"),  # the user's own brackets stay
    ("", MESH_REPAIR, "mesh (repaired).glb"),
])
def test_a_result_says_what_was_done_to_it(source: str, kind: str, made: str) -> None:
    assert made_name(source, kind) == made
