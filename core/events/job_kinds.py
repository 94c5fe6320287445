"""The kinds of heavy work a job can ask for, and the JetStream subject each one travels on.

Subjects are relative to the studio's namespace (see :func:`core.messaging.subject`). A worker
pool subscribes to a prefix: mesh workers to ``cmd.mesh.>``, GPU workers to ``cmd.generate``.
"""

from __future__ import annotations

from core.errors import InvalidInput

MESH_ANALYSE = "mesh.analyse"
MESH_REPAIR = "mesh.repair"
MESH_STYLE = "mesh.style"
MESH_MATERIAL = "mesh.material"
MESH_OPTIMISE = "mesh.optimise"
GENERATE = "generate"

MESH_OPERATIONS: dict[str, str] = {
    "repair": MESH_REPAIR,
    "style": MESH_STYLE,
    "material": MESH_MATERIAL,
    "optimise": MESH_OPTIMISE,
}
"""Mesh operations that make a new mesh, by the name they have in the API's URLs."""

_SUBJECTS: dict[str, str] = {
    MESH_ANALYSE: "cmd.mesh.analyse",
    **{kind: f"cmd.{kind}" for kind in MESH_OPERATIONS.values()},
    GENERATE: "cmd.generate",
}

MESH_COMMANDS = "cmd.mesh.>"
GPU_COMMANDS = "cmd.generate"


# Generator backends and the version of their output: a new version invalidates cached results.
GENERATOR_VERSIONS: dict[str, str] = {"inflate": "1", "shap-e": "1", "hunyuan3d": "1"}


def command_subject(kind: str) -> str:
    try:
        return _SUBJECTS[kind]
    except KeyError:
        raise InvalidInput(f"unknown job kind {kind!r}") from None
