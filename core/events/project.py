"""The ``Project`` aggregate: name, members and their roles, uploaded assets.

Commands validate first and only then trigger their past-tense event, so a refused command leaves
no pending event behind. Every event names its ``actor`` (a user id); the library stamps the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from core.errors import Conflict, InvalidInput, NotFound
from core.events.roles import Role

MAX_NAME_LENGTH = 200
MAX_MESSAGE_LENGTH = 2000
# PostgreSQL text cannot hold NUL, and no name needs a control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Asset:
    asset_id: str
    blob_key: str
    sha256: str
    media_type: str
    kind: str
    size: int
    filename: str
    uploaded_by: str
    units: str = "mm"


@dataclass(frozen=True)
class Derivation:
    """Where a derived mesh came from: the mesh it was made from and the job that made it."""
    source_asset_id: str
    job_id: str
    operation: str


@dataclass(frozen=True)
class Version:
    version_id: str
    position: int
    message: str
    author: str


class Project(Aggregate):
    class Created(Aggregate.Created):
        name: str
        owner: str
        actor: str

    class Renamed(Aggregate.Event):
        name: str
        actor: str

    class MemberInvited(Aggregate.Event):
        user: str
        role: str
        actor: str

    class MemberRoleChanged(Aggregate.Event):
        user: str
        role: str
        actor: str

    class MemberRemoved(Aggregate.Event):
        user: str
        actor: str

    class AssetUploaded(Aggregate.Event):
        asset_id: str
        blob_key: str
        sha256: str
        media_type: str
        kind: str
        size: int
        filename: str
        actor: str
        units: str = "mm"  # a default, so that events stored before units existed still read

    class AssetDerived(Aggregate.Event):
        """A mesh made by a job from another mesh (repaired, restyled...); the source stays."""
        asset_id: str
        blob_key: str
        sha256: str
        media_type: str
        size: int
        filename: str
        units: str
        source_asset_id: str
        job_id: str
        operation: str
        actor: str

    class Deleted(Aggregate.Event):
        actor: str

    class VersionTagged(Aggregate.Event):
        version_id: str
        position: int
        message: str
        actor: str

    class RevertedTo(Aggregate.Event):
        version_id: str
        position: int
        actor: str

    @event(Created)
    def __init__(self, name: str, owner: str, actor: str) -> None:
        self.name = name
        # Role labels, not Role values: snapshots store state as JSON, where an IntEnum would
        # come back as a bare int.
        self.members: dict[str, str] = {owner: Role.OWNER.label}
        self.assets: dict[str, Asset] = {}
        self.versions: dict[str, Version] = {}
        self.last_revert: str | None = None
        self.deleted = False

    # -- commands ---------------------------------------------------------------------------

    @staticmethod
    def check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("a project name must be a non-empty string")
        name = name.strip()
        if _CONTROL.search(name):
            raise InvalidInput("a project name cannot contain control characters")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"a project name has at most {MAX_NAME_LENGTH} characters")
        return name

    def rename(self, name: str, actor: str) -> None:
        self._check_alive()
        name = self.check_name(name)
        if name != self.name:
            self._renamed(name=name, actor=actor)

    def invite(self, user: str, role: Role, actor: str) -> None:
        self._check_alive()
        current = self.role_of(user)
        if current is None:
            self._member_invited(user=user, role=role.label, actor=actor)
        elif current != role:
            self._check_not_last_owner(user, role)
            self._member_role_changed(user=user, role=role.label, actor=actor)

    def change_role(self, user: str, role: Role, actor: str) -> None:
        """A member's new role; unlike :meth:`invite` it never adds anyone (a member removed
        meanwhile stays removed)."""
        self._check_alive()
        current = self.role_of(user)
        if current is None:
            raise NotFound(f"user {user} is not a member of project {self.id}")
        if current != role:
            self._check_not_last_owner(user, role)
            self._member_role_changed(user=user, role=role.label, actor=actor)

    def remove_member(self, user: str, actor: str) -> None:
        self._check_alive()
        if user not in self.members:
            raise NotFound(f"user {user} is not a member of project {self.id}")
        self._check_not_last_owner(user, None)
        self._member_removed(user=user, actor=actor)

    def record_asset(self, asset: Asset, actor: str) -> None:
        self._check_alive()
        if asset.asset_id in self.assets:
            raise Conflict(f"asset {asset.asset_id} is already recorded")
        self._asset_uploaded(
            asset_id=asset.asset_id,
            blob_key=asset.blob_key,
            sha256=asset.sha256,
            media_type=asset.media_type,
            kind=asset.kind,
            size=asset.size,
            filename=asset.filename,
            actor=actor,
            units=asset.units,
        )

    def record_derived_asset(self, asset: Asset, origin: Derivation, actor: str) -> None:
        """Record a job's result mesh. A redelivered job records the same asset id again;
        that is refused like any duplicate, so one job yields one asset."""
        self._check_alive()
        if asset.asset_id in self.assets:
            raise Conflict(f"asset {asset.asset_id} is already recorded")
        if origin.source_asset_id not in self.assets:
            raise NotFound(f"asset {origin.source_asset_id} not found in project {self.id}")
        self._asset_derived(
            asset_id=asset.asset_id, blob_key=asset.blob_key, sha256=asset.sha256,
            media_type=asset.media_type, size=asset.size, filename=asset.filename,
            units=asset.units, source_asset_id=origin.source_asset_id, job_id=origin.job_id,
            operation=origin.operation, actor=actor,
        )

    def tag_version(self, version_id: str, position: int, message: str, actor: str) -> None:
        self._check_alive()
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_LENGTH:
            raise InvalidInput(f"a version message is a string of at most {MAX_MESSAGE_LENGTH}"
                               " characters")
        if "\x00" in message:
            raise InvalidInput("a version message cannot contain NUL characters")
        self._version_tagged(version_id=version_id, position=position, message=message.strip(),
                             actor=actor)

    def tagged_version(self, version_id: str) -> Version:
        try:
            return self.versions[version_id]
        except KeyError:
            raise NotFound(f"version {version_id} not found in project {self.id}") from None

    def record_revert(self, version_id: str, actor: str) -> None:
        self._check_alive()
        version = self.tagged_version(version_id)
        self._reverted_to(version_id=version_id, position=version.position, actor=actor)

    def delete(self, actor: str) -> None:
        self._check_alive()
        self._deleted(actor=actor)

    def role_of(self, user: str) -> Role | None:
        label = self.members.get(user)
        return None if label is None else Role.parse(label)

    def asset(self, asset_id: str) -> Asset:
        try:
            return self.assets[asset_id]
        except KeyError:
            raise NotFound(f"asset {asset_id} not found in project {self.id}") from None

    # -- guards -----------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self.deleted:
            raise NotFound(f"project {self.id} was deleted")

    def _check_not_last_owner(self, user: str, new_role: Role | None) -> None:
        owners = [u for u, r in self.members.items() if r == Role.OWNER.label]
        if owners == [user] and new_role != Role.OWNER:
            raise Conflict("a project keeps at least one owner")

    # -- events -----------------------------------------------------------------------------

    @event(Renamed)
    def _renamed(self, name: str, actor: str) -> None:
        self.name = name

    @event(MemberInvited)
    def _member_invited(self, user: str, role: str, actor: str) -> None:
        self.members[user] = role

    @event(MemberRoleChanged)
    def _member_role_changed(self, user: str, role: str, actor: str) -> None:
        self.members[user] = role

    @event(MemberRemoved)
    def _member_removed(self, user: str, actor: str) -> None:
        del self.members[user]

    @event(AssetUploaded)
    def _asset_uploaded(
        self,
        asset_id: str,
        blob_key: str,
        sha256: str,
        media_type: str,
        kind: str,
        size: int,
        filename: str,
        actor: str,
        units: str = "mm",
    ) -> None:
        self.assets[asset_id] = Asset(
            asset_id, blob_key, sha256, media_type, kind, size, filename, actor, units
        )

    @event(AssetDerived)
    def _asset_derived(
        self, asset_id: str, blob_key: str, sha256: str, media_type: str, size: int,
        filename: str, units: str, source_asset_id: str, job_id: str, operation: str,
        actor: str,
    ) -> None:
        self.assets[asset_id] = Asset(
            asset_id, blob_key, sha256, media_type, "mesh", size, filename, actor, units
        )

    @event(Deleted)
    def _deleted(self, actor: str) -> None:
        self.deleted = True

    @event(VersionTagged)
    def _version_tagged(self, version_id: str, position: int, message: str, actor: str) -> None:
        self.versions[version_id] = Version(version_id, position, message, actor)

    @event(RevertedTo)
    def _reverted_to(self, version_id: str, position: int, actor: str) -> None:
        self.last_revert = version_id


def project_uuid(raw: str) -> UUID:
    """Parse a project id from a URL, refusing anything that is not a UUID."""
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"project {raw!r} not found") from None
