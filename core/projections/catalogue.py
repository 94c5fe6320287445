"""Projects, their members and their assets: who may see what, and which blob an asset is."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from core.events.project import Project
from core.projections.readmodel import ReadModel, Statement


class CatalogueReadModel(ReadModel):
    name = "catalogue"
    tables = ("rm_projects", "rm_members", "rm_assets")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_projects ("
        " id uuid PRIMARY KEY, name text NOT NULL, owner text NOT NULL,"
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " deleted boolean NOT NULL DEFAULT false)",
        "CREATE TABLE IF NOT EXISTS rm_members ("
        " project_id uuid NOT NULL, user_id text NOT NULL, role text NOT NULL,"
        " since timestamptz NOT NULL, PRIMARY KEY (project_id, user_id))",
        "CREATE INDEX IF NOT EXISTS rm_members_user ON rm_members (user_id)",
        "CREATE TABLE IF NOT EXISTS rm_assets ("
        " asset_id uuid PRIMARY KEY, project_id uuid NOT NULL, blob_key text NOT NULL,"
        " sha256 text NOT NULL, media_type text NOT NULL, kind text NOT NULL,"
        " size bigint NOT NULL, filename text NOT NULL, uploaded_by text NOT NULL,"
        " uploaded_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_assets_project ON rm_assets (project_id)",
        # Added after the first release; ADD COLUMN IF NOT EXISTS upgrades older tables.
        "ALTER TABLE rm_assets ADD COLUMN IF NOT EXISTS units text NOT NULL DEFAULT 'mm'",
        "ALTER TABLE rm_assets ADD COLUMN IF NOT EXISTS source_asset_id uuid",
        "ALTER TABLE rm_assets ADD COLUMN IF NOT EXISTS job_id uuid",
        "ALTER TABLE rm_assets ADD COLUMN IF NOT EXISTS operation text",
    )

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Project.Created, position: int) -> list[Statement]:
        return [
            (
                "INSERT INTO rm_projects (id, name, owner, created_at, updated_at)"
                " VALUES (%(id)s, %(name)s, %(owner)s, %(at)s, %(at)s)",
                {"id": e.originator_id, "name": e.name, "owner": e.owner, "at": e.timestamp},
            ),
            _member(e.originator_id, e.owner, "owner", e.timestamp),
        ]

    @statements.register
    def _(self, e: Project.Renamed, position: int) -> list[Statement]:
        return [(
            "UPDATE rm_projects SET name = %(name)s, updated_at = %(at)s WHERE id = %(id)s",
            {"id": e.originator_id, "name": e.name, "at": e.timestamp},
        )]

    @statements.register
    def _(self, e: Project.MemberInvited, position: int) -> list[Statement]:
        return [_member(e.originator_id, e.user, e.role, e.timestamp)]

    @statements.register
    def _(self, e: Project.MemberRoleChanged, position: int) -> list[Statement]:
        return [_member(e.originator_id, e.user, e.role, e.timestamp)]

    @statements.register
    def _(self, e: Project.MemberRemoved, position: int) -> list[Statement]:
        return [(
            "DELETE FROM rm_members WHERE project_id = %(id)s AND user_id = %(user)s",
            {"id": e.originator_id, "user": e.user},
        )]

    @statements.register
    def _(self, e: Project.AssetUploaded, position: int) -> list[Statement]:
        return [(
            "INSERT INTO rm_assets (asset_id, project_id, blob_key, sha256, media_type, kind,"
            " size, filename, uploaded_by, uploaded_at, units) VALUES (%(asset)s, %(id)s,"
            " %(blob)s, %(sha)s, %(media)s, %(kind)s, %(size)s, %(filename)s, %(actor)s,"
            " %(at)s, %(units)s)",
            {
                "asset": e.asset_id, "id": e.originator_id, "blob": e.blob_key,
                "sha": e.sha256, "media": e.media_type, "kind": e.kind, "size": e.size,
                "filename": e.filename, "actor": e.actor, "at": e.timestamp, "units": e.units,
            },
        )]

    @statements.register
    def _(self, e: Project.AssetDerived, position: int) -> list[Statement]:
        return [(
            "INSERT INTO rm_assets (asset_id, project_id, blob_key, sha256, media_type, kind,"
            " size, filename, uploaded_by, uploaded_at, units, source_asset_id, job_id,"
            " operation) VALUES (%(asset)s, %(id)s, %(blob)s, %(sha)s, %(media)s, 'mesh',"
            " %(size)s, %(filename)s, %(actor)s, %(at)s, %(units)s, %(source)s, %(job)s,"
            " %(operation)s)",
            {
                "asset": e.asset_id, "id": e.originator_id, "blob": e.blob_key,
                "sha": e.sha256, "media": e.media_type, "size": e.size,
                "filename": e.filename, "actor": e.actor, "at": e.timestamp, "units": e.units,
                "source": e.source_asset_id, "job": e.job_id, "operation": e.operation,
            },
        )]

    @statements.register
    def _(self, e: Project.Deleted, position: int) -> list[Statement]:
        return [(
            "UPDATE rm_projects SET deleted = true, updated_at = %(at)s WHERE id = %(id)s",
            {"id": e.originator_id, "at": e.timestamp},
        )]


def _member(project_id: Any, user: str, role: str, at: Any) -> Statement:
    return (
        "INSERT INTO rm_members (project_id, user_id, role, since)"
        " VALUES (%(id)s, %(user)s, %(role)s, %(at)s)"
        " ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        {"id": project_id, "user": user, "role": role, "at": at},
    )
