"""The one exception tree of the studio.

Every layer raises a subclass of :class:`OrfeasError`; driver errors (psycopg, nats, minio) are
translated where they are caught so that callers never depend on a driver's exception types.
The API maps these classes to HTTP statuses in one place (``api/problems.py``).
"""

from __future__ import annotations


class OrfeasError(Exception):
    """Root of every error the studio raises on purpose."""


class ConfigurationError(OrfeasError):
    """Settings are missing or contradict each other."""


class ServiceError(OrfeasError):
    """A backing service (PostgreSQL, NATS, S3) could not be started or reached.

    Over HTTP it is a 503 with ``Retry-After``: a supervisor restarts a dead service within
    seconds, so the same request is worth sending again soon; ``service`` names the one that
    failed, so a client (and an operator reading the answer) knows what is missing.
    """

    service: str | None = None
    retry_after_s: int | None = 5


class DomainError(OrfeasError):
    """A command was refused by the domain; nothing was written."""


class NotFound(DomainError):
    """The named thing does not exist (or is invisible to the caller)."""


class Conflict(DomainError):
    """The command clashes with the current state (a name taken, a concurrent write)."""


class InvalidInput(DomainError):
    """The input is malformed or of an unsupported kind."""


class MalformedInput(InvalidInput):
    """The request cannot even be parsed (broken JSON, a body of the wrong shape)."""


class TooLarge(InvalidInput):
    """The input exceeds a size limit."""


class UnsupportedMedia(InvalidInput):
    """An upload is neither an image nor a mesh format the studio reads."""


class QuotaExceeded(DomainError):
    """The caller may not start more work right now."""


class StorageQuotaExceeded(DomainError):
    """An upload would take its user past their tier's storage. Not a 429: waiting does not
    help, deleting files or a larger tier does; over HTTP a 403 whose problem type is
    ``/problems/storage-quota`` (as cloud storage APIs answer a full quota), not a 413, which
    is about one body's size."""


class Throttled(QuotaExceeded):
    """Too many attempts (wrong passwords) from this address or on this account."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(QuotaExceeded):
    """This kind of work is at capacity right now (sign-ins being checked); nothing was done.
    A 429 like a throttle, not a 503: it is the callers' volume, expected during a flood, not
    a fault worth an error in the log per request."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthError(OrfeasError):
    """Authentication or authorisation failed."""


class Unauthenticated(AuthError):
    """No valid credentials were presented."""


class Forbidden(AuthError):
    """The caller is known but lacks the role the action needs."""


class BlobStoreError(ServiceError):
    """The object store refused or failed a request."""

    service = "s3"


class EventStoreError(ServiceError):
    """The event store refused or failed a request."""

    service = "postgres"


class MessagingError(ServiceError):
    """NATS refused or failed a request."""

    service = "nats"
