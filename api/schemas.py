"""The JSON request bodies of the API, one model each; the OpenAPI document shows the same
models. The mesh operations' bodies are the job contracts of :mod:`core.contracts.mesh_params`,
which the mesh worker applies again to the command it reads from the log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from core.contracts.validation import WHOLE, Input, text
from core.events.project import MAX_MESSAGE_LENGTH, MAX_NAME_LENGTH
from core.limits import BOUNDS as LIMIT_BOUNDS

Username = Annotated[str, text(64, min_length=1)]
Password = Annotated[str, text(1024, min_length=1)]
MAX_SEED = 2**31 - 1
MAX_FACE_BUDGET = 1_000_000
MIN_HEIGHT_MM, MAX_HEIGHT_MM = 1.0, 1000.0
DEFAULT_HEIGHT_MM = 50.0


class Credentials(Input):
    """``POST /auth/session``: sign in for a browser session cookie."""

    username: Username
    password: Password


class TokenRequest(Credentials):
    """``POST /auth/tokens``: sign in for an API token (``name`` labels it)."""

    name: Annotated[str, text(200)] | None = Field(
        default=None, description="A label for the token (default: api token).")


class NewUser(Input):
    """``POST /admin/users``: an account (site administrators only)."""

    username: Username
    password: Password
    is_admin: bool = Field(default=False, description="Site administrator: owner rights on "
                                                       "every project.")
    email: Annotated[str, text(320, min_length=3)] | None = None
    tier: TierName = Field(default="free", description="free (the default), pro or "
                                                       "enterprise.")


TierName = Literal["free", "pro", "enterprise"]


class TierChange(Input):
    """``PUT /admin/users/{username}/tier``: the user's new tier."""

    tier: TierName


def _bounded(name: str, description: str) -> Any:
    low, high = LIMIT_BOUNDS[name]
    return Annotated[int, Field(ge=low, le=high, description=description), WHOLE]


class TierLimitsBody(Input):
    """``PUT /admin/limits/{tier}``: every allowance of one tier (all of them, so a typo
    cannot leave one unset); each within its bounds, else 422 and nothing changes."""

    billable_per_window: _bounded("billable_per_window",  # type: ignore[valid-type]
                                  "Generation and mesh jobs that run, per window.")
    billable_window_s: _bounded("billable_window_s",  # type: ignore[valid-type]
                                "The billable window in seconds (the plan's: 3600).")
    concurrent_jobs: _bounded("concurrent_jobs",  # type: ignore[valid-type]
                              "Jobs queued or running at once.")
    storage_bytes: _bounded("storage_bytes",  # type: ignore[valid-type]
                            "Bytes of uploaded files.")
    requests_per_window: _bounded("requests_per_window",  # type: ignore[valid-type]
                                  "Signed-in requests of any kind, per window.")
    requests_window_s: _bounded("requests_window_s",  # type: ignore[valid-type]
                                "The request window in seconds (the plan's: 60).")


class RoleChange(Input):
    """``PATCH /projects/{id}/collaborators/{user_id}``: a member's new role."""

    role: Annotated[str, text(20, min_length=1)] = Field(
        description="owner, editor or viewer (any case)")


class AccountAccess(Input):
    """``PUT /admin/users/{username}/disabled``: refuse (or allow again) the account's
    sign-ins and tokens."""

    disabled: bool = Field(description="true: sign-in is refused and the user's tokens stop "
                                       "working; false: allowed again.")


class ProjectName(Input):
    """``POST /projects`` and ``PATCH /projects/{id}``: the project's name."""

    name: Annotated[str, Field(max_length=MAX_NAME_LENGTH)]


class Invitation(Input):
    """``POST /projects/{id}/invite``: a user (name, email or id) and the role to give; ``user``
    and ``email`` are two names for the same field, give one."""

    user: Annotated[str, text(320, min_length=1)] | None = None
    email: Annotated[str, text(320, min_length=1)] | None = None
    role: Annotated[str, text(20, min_length=1)] = Field(
        description="owner, editor or viewer (any case)")

    @model_validator(mode="after")
    def _one_name(self) -> Invitation:
        if (self.user is None) == (self.email is None):
            raise ValueError("give the invitee as 'user' or as 'email' (one of them)")
        return self

    @property
    def who(self) -> str:
        who = self.user if self.user is not None else self.email
        assert who is not None  # _one_name
        return who


class VersionTag(Input):
    """``POST /projects/{id}/versions``: the message of the version tagged at the log's head."""

    message: Annotated[str, Field(max_length=MAX_MESSAGE_LENGTH)]


class GenerationParams(Input):
    """``POST /projects/{id}/generate`` (and ``generate-progressive`` as JSON): an image
    already uploaded to the project, the generator, its seed and face budget, the object's
    height, and the name of the scene object that will show the result."""

    asset_id: Annotated[str, text(100, min_length=1), Field(
        description="An image uploaded to the project.")]
    backend: Annotated[str, text(40)] | None = Field(
        default=None, description="A generator of GET /generators (default: inflate).")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        default=None, description="Seeds the generator (default 0): same seed, same mesh.")
    face_budget: Annotated[int, Field(ge=4, le=MAX_FACE_BUDGET)] | None = Field(
        default=None, description="Most faces of the final mesh (default: the generator's).")
    height_mm: Annotated[float, Field(ge=MIN_HEIGHT_MM, le=MAX_HEIGHT_MM)] | None = Field(
        default=None, description="The generated object's height in millimetres (default "
        f"{DEFAULT_HEIGHT_MM:g}): its meshes are stored at that size.")
    name: Annotated[str, text(1000)] | None = Field(
        default=None, description="The scene object's name (default: the image's file name).")


# -- answers (JSON Schema of the success bodies the schemathesis test checks) ---------------

USER: dict[str, Any] = {
    "type": "object", "required": ["id", "username", "is_admin"],
    "properties": {"id": {"type": "string", "format": "uuid"}, "username": {"type": "string"},
                   "is_admin": {"type": "boolean"}}}
TOKEN: dict[str, Any] = {
    "type": "object", "required": ["token", "user"],
    "properties": {"token": {"type": "string"}, "user": USER}}
SIGNED_IN: dict[str, Any] = {
    "type": "object", "required": ["user"], "properties": {"user": USER}}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
PROJECT: dict[str, Any] = {
    "type": "object", "required": ["id", "name", "version", "members", "assets"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
        "version": {"type": "integer"}, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
        "members": {"type": "array", "items": {
            "type": "object", "required": ["user_id", "role"],
            "properties": {"user_id": {"type": "string"},
                           "username": {"type": ["string", "null"]},
                           "role": {"enum": ["owner", "editor", "viewer"]}}}},
        "assets": {"type": "integer", "minimum": 0}}}
PROJECT_LIST: dict[str, Any] = {
    "type": "object", "required": ["projects"],
    "properties": {"projects": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "role"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                       "role": {"enum": ["owner", "editor", "viewer"]},
                       "created_at": TIMESTAMP, "updated_at": TIMESTAMP}}}}}
QUEUED: dict[str, Any] = {
    "type": "object", "required": ["job_id", "state"],
    "properties": {"job_id": {"type": "string", "format": "uuid"}, "state": {"type": "string"},
                   "job_url": {"type": "string"}, "events_url": {"type": "string"}}}
READINESS: dict[str, Any] = {
    "type": "object", "required": ["status", "checks"],
    "properties": {"status": {"type": "string"}, "checks": {"type": "object"}}}


def _listing(key: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{key: [item, ...]}``."""
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "items": item or {"type": "object"}}}}


ROLE: dict[str, Any] = {"enum": ["owner", "editor", "viewer"]}
JOB_ROW: dict[str, Any] = {
    "type": "object",
    "required": ["id", "project_id", "kind", "state", "inputs", "params", "requested_by",
                 "stages", "attempts", "undone"],
    "properties": {"id": {"type": "string", "format": "uuid"},
                   "project_id": {"type": "string", "format": "uuid"},
                   "kind": {"type": "string"}, "state": {"type": "string"},
                   "inputs": {"type": "object"}, "params": {"type": "object"},
                   "stages": {"type": "object"}, "attempts": {"type": "integer"},
                   "undone": {"type": "boolean"}}}
ASSET: dict[str, Any] = {
    "type": "object",
    "required": ["id", "project_id", "filename", "kind", "media_type", "size", "sha256",
                 "blob_key", "units"],
    "properties": {"id": {"type": "string", "format": "uuid"},
                   "project_id": {"type": "string", "format": "uuid"},
                   "filename": {"type": "string"}, "kind": {"enum": ["image", "mesh"]},
                   "media_type": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
                   "sha256": {"type": "string"}, "blob_key": {"type": "string"},
                   "units": {"type": "string"}, "derived_from": {"type": ["object", "null"]}}}
ASSET_LIST = _listing("assets", ASSET)
VERSION: dict[str, Any] = {
    "type": "object", "required": ["version_id", "position", "message", "author"],
    "properties": {"version_id": {"type": "string"}, "position": {"type": "integer"},
                   "message": {"type": "string"}, "author": {"type": "string"}}}
VERSION_LIST = _listing("versions", VERSION)
TIMELINE: dict[str, Any] = {
    "type": "object", "required": ["events", "next"],
    "properties": {"events": {"type": "array", "items": {
        "type": "object", "required": ["position", "kind"],
        "properties": {"position": {"type": "integer"}, "kind": {"type": "string"}}}},
        "next": {"type": ["integer", "null"]}}}
STATE: dict[str, Any] = {
    "type": "object", "required": ["position", "project", "scene"],
    "properties": {"position": {"type": "integer"}, "project": {"type": "object"},
                   "scene": {"type": "object"}}}
COLLABORATORS = _listing("collaborators", {
    "type": "object", "required": ["user_id", "role", "online"],
    "properties": {"user_id": {"type": "string"}, "role": ROLE,
                   "online": {"type": "boolean"}}})
MEMBER: dict[str, Any] = {
    "type": "object", "required": ["user_id", "username", "role"],
    "properties": {"user_id": {"type": "string"}, "username": {"type": ["string", "null"]},
                   "role": ROLE}}
USER_ACCESS: dict[str, Any] = {
    "type": "object", "required": ["id", "username", "is_admin", "disabled"],
    "properties": {"id": {"type": "string", "format": "uuid"}, "username": {"type": "string"},
                   "is_admin": {"type": "boolean"}, "disabled": {"type": "boolean"}}}
INVITED: dict[str, Any] = {
    "type": "object", "required": ["user", "role"], "properties": {"user": USER, "role": ROLE}}
SCENE_CHANGE: dict[str, Any] = {
    "type": "object", "required": ["position", "scene_version"],
    "properties": {"position": {"type": "integer"}, "scene_version": {"type": "integer"}}}
JOB_UNDONE: dict[str, Any] = {
    "type": "object", "required": ["job_id", "undone", "position"],
    "properties": {"job_id": {"type": "string", "format": "uuid"},
                   "undone": {"const": True}, "position": {"type": "integer"}}}
GENERATORS = _listing("generators")
MATERIALS: dict[str, Any] = {
    "type": "object", "required": ["materials", "texture_sizes"],
    "properties": {"materials": {"type": "array", "items": {
        "type": "object", "required": ["kind", "color", "roughness", "metallic"]}},
        "texture_sizes": {"type": "array", "items": {"type": "integer"}}}}
ROOMS: dict[str, Any] = {
    "type": "object", "required": ["node", "rooms"],
    "properties": {"node": {"type": "string"}, "rooms": {"type": "array"}}}
TIER_LIMITS: dict[str, Any] = {
    "type": "object", "required": list(LIMIT_BOUNDS),
    "properties": {name: {"type": "integer"} for name in LIMIT_BOUNDS}}
LIMITS_TABLE: dict[str, Any] = {
    "type": "object", "required": ["tiers"],
    "properties": {"tiers": {"type": "object", "additionalProperties": TIER_LIMITS}}}
USER_TIER: dict[str, Any] = {
    "type": "object", "required": ["id", "username", "is_admin", "tier"],
    "properties": {"id": {"type": "string", "format": "uuid"}, "username": {"type": "string"},
                   "is_admin": {"type": "boolean"},
                   "tier": {"enum": ["free", "pro", "enterprise"]},
                   "disabled": {"type": "boolean"}, "created_at": TIMESTAMP}}
USER_TIERS = _listing("users", USER_TIER)
_RATE: dict[str, Any] = {
    "type": "object", "required": ["limit", "window_s", "used", "remaining", "reset_s"],
    "properties": {k: {"type": "integer"} for k in
                   ("limit", "window_s", "used", "remaining", "reset_s")}}
USAGE: dict[str, Any] = {
    "type": "object", "required": ["tier", "limits", "billable", "requests", "jobs", "storage"],
    "properties": {
        "tier": {"enum": ["free", "pro", "enterprise"]}, "limits": TIER_LIMITS,
        "billable": _RATE, "requests": _RATE,
        "jobs": {"type": "object", "required": ["running", "limit"],
                 "properties": {"running": {"type": "integer"}, "limit": {"type": "integer"}}},
        "storage": {"type": "object", "required": ["used_bytes", "limit_bytes"],
                    "properties": {"used_bytes": {"type": "integer"},
                                   "limit_bytes": {"type": "integer"}}}}}
