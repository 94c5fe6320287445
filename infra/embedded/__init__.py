"""Real PostgreSQL, NATS and S3 servers from PyPI wheels, run as supervised children.

:class:`EmbeddedStack` is the entry point: it starts the services a :class:`core.settings.Settings`
leaves unset under its data folder and hands back the completed settings.
"""

from infra.embedded.nats import EmbeddedNats
from infra.embedded.postgres import EmbeddedPostgres
from infra.embedded.s3 import EmbeddedS3
from infra.embedded.stack import EmbeddedStack

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "EmbeddedS3", "EmbeddedStack"]
