"""The OpenAPI 3.1 document of the API, built by walking the live route table.

Each endpoint carries what the route table cannot say: its access rule (``@guard``, see
:func:`api.auth.access_of`) and its :class:`Contract` (``@contract``: the body model, the
query parameters, the success answer). Methods and path parameters come from the routes
themselves, so a route added to ``api/app.py`` appears here without a second list to keep.
Request bodies are the pydantic models the endpoints parse with, so the document states
exactly what is accepted; every error is RFC 9457 problem+json.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from api.auth import Access, Scope, access_of
from api.problems import PROBLEM_JSON
from api.schemas import ASSET

CONTRACT_ATTRIBUTE = "__orfeas_contract__"
OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
REF_PREFIX = "#/components/schemas/"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Query:
    """One query parameter: its JSON Schema and what it means."""

    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Contract:
    """What an endpoint accepts and answers, beyond its path and access rule.

    ``body`` is the JSON body's model (``body_optional``: an empty body is ``{}``);
    ``bodies`` gives one model per value of the path parameter ``per`` (a route such as
    ``/meshes/{id}/{operation}`` is documented as one path per operation); ``forms`` are
    further request media types with their schemas (uploads). ``status`` is the success
    status, ``response`` its JSON Schema (or model), ``media_types`` its content types;
    ``answers`` are further JSON answers (a 202 while a job runs) by status, and ``errors``
    problem statuses beyond those every endpoint of its kind may give.
    """

    body: type[BaseModel] | None = None
    body_optional: bool = False
    bodies: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    per: str | None = None
    forms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    query: tuple[Query, ...] = ()
    status: int = HTTPStatus.OK
    response: type[BaseModel] | Mapping[str, Any] | None = None
    media_types: tuple[str, ...] = (JSON,)
    errors: tuple[int, ...] = ()
    answers: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


def contract(**declared: Any) -> Callable[[F], F]:
    """Declare an endpoint's :class:`Contract` (beside its ``@guard``)."""
    described = Contract(**declared)

    def attach(endpoint: F) -> F:
        setattr(endpoint, CONTRACT_ATTRIBUTE, described)
        return endpoint

    return attach


def contract_of(endpoint: Any) -> Contract:
    found: Contract | None = getattr(endpoint, CONTRACT_ATTRIBUTE, None)
    if found is None:
        found = DECLARED_HERE.get(f"{endpoint.__module__}.{endpoint.__qualname__}", Contract())
    return found


UPLOAD = Contract(
    forms={"application/octet-stream": {"type": "string", "format": "binary"},
           "multipart/form-data": {"type": "object", "required": ["file"], "properties": {
               "file": {"type": "string", "format": "binary"}}}},
    query=(Query("filename", {"type": "string"},
                 "The file's name (its extension says the format); needed for a raw body."),
           Query("units", {"type": "string", "enum": ["mm", "cm", "m", "in"], "default": "mm"},
                 "The units a mesh is modelled in.")),
    status=HTTPStatus.CREATED, response=ASSET, errors=(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,))
"""``POST /projects/{id}/assets``: an image or mesh file, raw or as multipart ``file``."""

DECLARED_HERE: Mapping[str, Contract] = {"api.routes.assets.upload_asset": UPLOAD}
"""Contracts of endpoints whose module is being reworked elsewhere (the upload moves out of
the API process); each belongs beside its ``@guard`` once that module settles."""


# -- the document ------------------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `detail` says what was wrong, naming the field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API token from POST /api/v1/auth/tokens."},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "orfeas_session",
               "description": "The browser session from POST /api/v1/auth/session; unsafe "
                              "methods need an Origin of the studio's own."},
}

PATH_PARAMETERS: Mapping[str, tuple[Mapping[str, Any], str]] = {
    "project_id": ({"type": "string", "format": "uuid"}, "The project's id."),
    "asset_id": ({"type": "string", "format": "uuid"}, "The mesh (an asset of a project)."),
    "job_id": ({"type": "string", "format": "uuid"}, "The job's id."),
    "user_id": ({"type": "string", "format": "uuid"}, "The member's user id."),
    "version_id": ({"type": "string"}, "A tagged version's id."),
    "stage": ({"type": "string", "enum": ["preview", "medium", "final"]},
              "The generation stage."),
    "username": ({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
                 "The user's name."),
    "tier": ({"type": "string", "enum": ["free", "pro", "enterprise"]}, "The tier."),
}

_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every HTTP route in ``routes``."""
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue  # the scene WebSocket and the static workspace are not HTTP operations
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for path, operation in _operations(route, method, schemas):
                paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ORFEAS Studio API", "version": "1",
                 "description": "Collaborative 2D-to-3D studio. Scenes are edited live over "
                                "the y-websocket protocol at /ws/projects/{project_id} "
                                "(not an HTTP operation, so not listed here)."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _operations(route: Route, method: str,
                schemas: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    declared = contract_of(route.endpoint)
    if declared.per is None:
        yield route.path, _operation(route, method, declared, declared.body, None, schemas)
        return
    for value, body in declared.bodies.items():
        path = route.path.replace(f"{{{declared.per}}}", value)
        yield path, _operation(route, method, declared, body, value, schemas)


def _operation(route: Route, method: str, declared: Contract, body: type[BaseModel] | None,
               variant: str | None, schemas: dict[str, Any]) -> dict[str, Any]:
    access = access_of(route.endpoint) or Access(Scope.PUBLIC)
    summary, description = _doc(route.endpoint)
    path = route.path if variant is None or declared.per is None else route.path.replace(
        f"{{{declared.per}}}", variant)
    operation: dict[str, Any] = {
        "operationId": f"{route.endpoint.__name__}{'_' + variant if variant else ''}",
        "summary": summary if variant is None else f"{summary} ({variant})",
        "description": "\n\n".join(filter(None, [description, _access_text(access)])),
        "tags": [_tag(route.path)],
        "x-orfeas-access": {"scope": access.scope.value,
                            "role": access.role.label if access.role else None},
        "security": [] if access.scope is Scope.PUBLIC else [{"bearer": []}, {"cookie": []}],
        "parameters": _parameters(path, declared),
        "responses": _responses(access, declared, body, path, method, schemas),
    }
    request_body = _request_body(declared, body, schemas)
    if request_body:
        operation["requestBody"] = request_body
    return operation


def _doc(endpoint: Any) -> tuple[str, str]:
    text = (endpoint.__doc__ or "").strip()
    if not text:
        return endpoint.__name__.replace("_", " ").capitalize(), ""
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), " ".join(rest.split())


def _access_text(access: Access) -> str:
    if access.scope is Scope.PUBLIC:
        return "Needs no credentials."
    if access.scope is Scope.USER:
        return "Needs a signed-in user."
    if access.scope is Scope.ADMIN:
        return "Site administrators only."
    role = access.role.label if access.role else "viewer"
    where = {Scope.PROJECT: "the project", Scope.ASSET: "the project that owns the mesh",
             Scope.JOB: "the job's project"}[access.scope]
    return f"Needs the {role} role (or higher) in {where}; administrators may act on any."


def _tag(path: str) -> str:
    """The resource an operation belongs to; health checks and this document are "service"."""
    parts = [p for p in path.split("/") if p and p not in ("api", "v1")]
    if not path.startswith("/api/v1/") or parts[0] in ("openapi.json", "docs"):
        return "service"
    return parts[0]


def _parameters(path: str, declared: Contract) -> list[dict[str, Any]]:
    parameters = []
    for name in _PARAMETER.findall(path):
        schema, description = PATH_PARAMETERS.get(name, ({"type": "string"}, name))
        parameters.append({"name": name, "in": "path", "required": True,
                           "schema": dict(schema), "description": description})
    for query in declared.query:
        parameters.append({"name": query.name, "in": "query", "required": query.required,
                           "schema": dict(query.schema), "description": query.description})
    return parameters


def _request_body(declared: Contract, body: type[BaseModel] | None,
                  schemas: dict[str, Any]) -> dict[str, Any] | None:
    content: dict[str, Any] = {}
    if body is not None:
        content[JSON] = {"schema": _schema_ref(body, schemas)}
    for media_type, schema in declared.forms.items():
        content[media_type] = {"schema": dict(schema)}
    if not content:
        return None
    return {"required": not declared.body_optional, "content": content}


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """The model's JSON Schema under components (its nested models beside it)."""
    schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    for name, nested in schema.pop("$defs", {}).items():
        schemas[name] = nested
    schemas[model.__name__] = schema
    return {"$ref": REF_PREFIX + model.__name__}


def _responses(access: Access, declared: Contract, body: type[BaseModel] | None, path: str,
               method: str, schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(int(declared.status)): _success(declared, schemas)}
    errors = {HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS, *declared.errors}
    if method != "GET":
        errors.add(HTTPStatus.CONFLICT)  # a concurrent change, or a state that forbids it
    if access.scope is not Scope.PUBLIC:
        errors |= {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}
    if _PARAMETER.search(path) or access.scope in (Scope.ASSET, Scope.JOB, Scope.PROJECT):
        errors.add(HTTPStatus.NOT_FOUND)
    if declared.query or _PARAMETER.search(path):
        errors.add(HTTPStatus.UNPROCESSABLE_ENTITY)
    if body is not None or declared.forms:
        errors |= {HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                   HTTPStatus.UNPROCESSABLE_ENTITY}
    for status, schema in declared.answers.items():
        responses[str(int(status))] = {"description": HTTPStatus(status).phrase,
                                       "content": {JSON: {"schema": dict(schema)}}}
    for status in sorted(errors - set(declared.answers)):
        responses[str(int(status))] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": REF_PREFIX + "Problem"}}}}
    return responses


def _success(declared: Contract, schemas: dict[str, Any]) -> dict[str, Any]:
    phrase = HTTPStatus(declared.status).phrase
    if declared.status == HTTPStatus.NO_CONTENT:
        return {"description": phrase}
    response = declared.response
    if isinstance(response, type) and issubclass(response, BaseModel):
        schema: Mapping[str, Any] = _schema_ref(response, schemas)
    else:
        schema = response or ({"type": "object"} if declared.media_types == (JSON,) else
                              {"type": "string"})
    return {"description": phrase,
            "content": {media_type: {"schema": dict(schema)}
                        for media_type in declared.media_types}}
