"""The Starlette application: one explicit route table and one lifespan."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.activity import RequestSummaries
from api.problems import EXCEPTION_HANDLERS
from api.ratelimit import RateLimitHeaders
from api.resources import lifespan_for
from api.routes import (
    accounts,
    admin,
    analytics,
    assets,
    assistant,
    collab,
    generation,
    health,
    history,
    jobs,
    limits,
    meshes,
    projects,
    reference,
    users,
)
from core.settings import Settings

V1 = "/api/v1"


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route(f"{V1}/openapi.json", reference.openapi_json, methods=["GET"]),
        Route(f"{V1}/docs", reference.docs, methods=["GET"]),
        Route(f"{V1}/auth/tokens", accounts.create_token, methods=["POST"]),
        Route(f"{V1}/auth/session", accounts.create_session, methods=["POST"]),
        Route(f"{V1}/auth/session", accounts.delete_session, methods=["DELETE"]),
        Route(f"{V1}/me", accounts.me, methods=["GET"]),
        Route(f"{V1}/me/usage", limits.usage, methods=["GET"]),
        Route(f"{V1}/admin/users", accounts.create_user, methods=["POST"]),
        Route(f"{V1}/admin/users", limits.users, methods=["GET"]),
        Route(f"{V1}/admin/users/{{username}}/tier", limits.set_user_tier, methods=["PUT"]),
        Route(f"{V1}/admin/limits", limits.tier_limits, methods=["GET"]),
        Route(f"{V1}/admin/limits/{{tier}}", limits.set_tier_limits, methods=["PUT"]),
        Route(f"{V1}/admin/users/{{username}}/disabled", users.set_disabled, methods=["PUT"]),
        Route(f"{V1}/admin/rooms", collab.rooms, methods=["GET"]),
        Route(f"{V1}/admin/quarantine", admin.quarantine, methods=["GET"]),
        Route(f"{V1}/admin/analytics/generation", generation.generation_analytics,
              methods=["GET"]),
        Route(f"{V1}/admin/analytics/platform", analytics.platform, methods=["GET"]),
        Route(f"{V1}/admin/analytics/users/{{username}}", analytics.user_analytics_of,
              methods=["GET"]),
        Route(f"{V1}/me/analytics", analytics.my_analytics, methods=["GET"]),
        Route(f"{V1}/generators", generation.generators, methods=["GET"]),
        Route(f"{V1}/materials", meshes.materials, methods=["GET"]),
        Route(f"{V1}/projects", projects.create_project, methods=["POST"]),
        Route(f"{V1}/projects", projects.list_projects, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}", projects.get_project, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}", projects.rename_project, methods=["PATCH"]),
        Route(f"{V1}/projects/{{project_id}}", projects.delete_project, methods=["DELETE"]),
        Route(f"{V1}/projects/{{project_id}}/invite", projects.invite, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/collaborators", collab.collaborators,
              methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/collaborators/{{user_id}}",
              collab.remove_collaborator, methods=["DELETE"]),
        Route(f"{V1}/projects/{{project_id}}/collaborators/{{user_id}}",
              collab.change_role, methods=["PATCH"]),
        Route(f"{V1}/projects/{{project_id}}/operations/undo", collab.undo, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/operations/redo", collab.redo, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/assets", assets.upload_asset, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/assets", projects.list_assets, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/versions", history.tag_version, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/versions", history.list_versions, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/versions/diff", history.diff, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/versions/{{version_id}}/revert", history.revert,
              methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/state", history.get_state, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/timeline", history.timeline, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/generate", generation.request_generation,
              methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/generate-progressive",
              generation.generate_progressive, methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/assistant/messages", assistant.ask,
              methods=["POST"]),
        Route(f"{V1}/projects/{{project_id}}/assistant/messages", assistant.list_messages,
              methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/assistant/suggestions/{{suggestion_id}}",
              assistant.get_suggestion, methods=["GET"]),
        Route(f"{V1}/projects/{{project_id}}/assistant/suggestions/{{suggestion_id}}/apply",
              assistant.apply_suggestion, methods=["POST"]),
        Route(f"{V1}/meshes/{{asset_id}}/analysis", meshes.request_analysis, methods=["POST"]),
        Route(f"{V1}/meshes/{{asset_id}}/analysis", meshes.get_analysis, methods=["GET"]),
        Route(f"{V1}/meshes/{{asset_id}}/analysis/faces", meshes.face_maps, methods=["GET"]),
        Route(f"{V1}/meshes/{{asset_id}}/thumbnail", meshes.thumbnail, methods=["GET"]),
        Route(f"{V1}/meshes/{{asset_id}}", meshes.get_mesh, methods=["GET"]),
        Route(f"{V1}/meshes/{{asset_id}}/export", meshes.export_mesh, methods=["GET"]),
        Route(f"{V1}/meshes/{{asset_id}}/{{operation}}", meshes.request_operation,
              methods=["POST"]),
        Route(f"{V1}/jobs/{{job_id}}", jobs.get_job, methods=["GET"]),
        Route(f"{V1}/jobs/{{job_id}}", jobs.cancel_job, methods=["DELETE"]),
        Route(f"{V1}/jobs/{{job_id}}/events", generation.job_events, methods=["GET"]),
        Route(f"{V1}/jobs/{{job_id}}/undo", jobs.undo_job, methods=["POST"]),
        Route(f"{V1}/jobs/{{job_id}}/stages/{{stage}}.glb", jobs.stage_mesh, methods=["GET"]),
        WebSocketRoute("/ws/projects/{project_id}", collab.scene_socket),
    ]


FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


class SinglePageApp(StaticFiles):
    """The built web workspace: files as they are, ``index.html`` for client-side routes."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as e:
            if e.status_code != 404 or path.startswith(("api/", "ws/")) or "." in path:
                raise
            return await super().get_response("index.html", scope)


def frontend_routes(dist: Path = FRONTEND_DIST) -> list[BaseRoute]:
    """Serve the workspace when it has been built (``make up`` builds it)."""
    if not (dist / "index.html").is_file():
        return []
    return [Mount("/", app=SinglePageApp(directory=dist, html=True), name="frontend")]


def create_app(settings: Settings) -> Starlette:
    return Starlette(
        routes=routes() + frontend_routes(),
        middleware=[Middleware(RequestSummaries), Middleware(RateLimitHeaders)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan_for(settings),
    )
