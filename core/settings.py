"""Typed settings, parsed once from ``ORFEAS_*`` variables and passed explicitly.

A service whose URL is set is used as it is; where it is unset, ``orfeas up`` starts the embedded
server under the data folder and fills the URL in before it starts the other processes, which
therefore always see a complete :class:`Settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import ConfigurationError

_PREFIX_PATTERN = re.compile(r"^[a-z0-9_-]*$")
WEEK_S = 7 * 24 * 3600
# Scene socket frames: the scene log stores updates of at most 8 MiB (core.events.scene), so
# a configured limit may only lower this; below 1 KiB ordinary edits would be refused.
WS_FRAME_CEILING_BYTES = 8 * 1024 * 1024
WS_FRAME_FLOOR_BYTES = 1024


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str = "orfeas"
    region: str = "us-east-1"

    @property
    def secure(self) -> bool:
        return self.endpoint.startswith("https://")

    @property
    def host(self) -> str:
        """``host:port`` as the minio client wants it."""
        return self.endpoint.split("://", 1)[-1].rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".orfeas")
    database_url: str | None = None
    nats_url: str | None = None
    s3: S3Settings | None = None
    # Isolates several studios (or test sessions) on one NATS server: stream names and subjects
    # are prefixed with it. Empty in production.
    namespace: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # JetStream replicas of the command stream: 1 on one machine, 3 on a 3-node cluster.
    nats_replicas: int = 1
    # Seconds a worker may go silent on a job before JetStream gives the job to another.
    job_ack_wait_s: float = 30.0
    models_dir: Path | None = None
    # Seconds a finished generation stays reusable by identical requests (the dedup cache).
    generation_cache_ttl_s: float = float(WEEK_S)
    # Seconds a mesh job's geometry may run before it is stopped and the job fails.
    mesh_job_budget_s: float = 600.0
    # Run the Shap-E prior with int8 linear layers on CPU (workers.gpu.quantisation).
    shap_e_int8: bool = False
    # Largest frame a scene socket accepts: a bigger one (a huge update) closes the socket
    # with 4413 and changes nothing. At most WS_FRAME_CEILING_BYTES.
    ws_max_frame_bytes: int = WS_FRAME_CEILING_BYTES
    # Browser origins (``scheme://host[:port]``) besides the studio's own that may use the
    # session cookie for a scene socket or a change (api.auth.check_origin).
    allowed_origins: tuple[str, ...] = ()
    # Sign-in throttle (core.login_throttle). An account is throttled after this many wrong
    # passwords within the window: 5 lets a user mistype a few times, while a guesser gets
    # about 5 tries per window and then blocks that double up to the cap. A block lasts at
    # most the cap (15 min), so an attacker can delay a real user, never lock them out for
    # good; the per-address limit (50: a shared office NAT signs in often) stops the attacker.
    login_account_failures: int = 5
    login_address_failures: int = 50
    login_window_s: float = 300.0
    login_max_block_s: float = 900.0
    # Seconds between a GPU worker's generator reports (core.generators): the menu lists a
    # generator while a report is younger than a few of these. Short only in tests.
    generator_heartbeat_s: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        s3 = None
        if env.get("ORFEAS_S3_ENDPOINT"):
            s3 = S3Settings(
                endpoint=env["ORFEAS_S3_ENDPOINT"],
                access_key=_required(env, "ORFEAS_S3_ACCESS_KEY"),
                secret_key=_required(env, "ORFEAS_S3_SECRET_KEY"),
                bucket=env.get("ORFEAS_S3_BUCKET", "orfeas"),
                region=env.get("ORFEAS_S3_REGION", "us-east-1"),
            )
        namespace = env.get("ORFEAS_NAMESPACE", "")
        if not _PREFIX_PATTERN.match(namespace):
            raise ConfigurationError(
                f"ORFEAS_NAMESPACE={namespace!r}: use lower-case letters, digits, '-' and '_'"
            )
        models = env.get("ORFEAS_MODELS_DIR")
        heartbeat_s = _int(env, "ORFEAS_GENERATOR_HEARTBEAT_S", 30)
        if heartbeat_s < 1:
            raise ConfigurationError(
                f"ORFEAS_GENERATOR_HEARTBEAT_S={heartbeat_s}: at most one report a second")
        return cls(
            data_dir=Path(env.get("ORFEAS_DATA", ".orfeas")),
            database_url=env.get("ORFEAS_DATABASE_URL") or None,
            nats_url=env.get("ORFEAS_NATS_URL") or None,
            s3=s3,
            namespace=namespace,
            host=env.get("ORFEAS_HOST", "127.0.0.1"),
            port=_int(env, "ORFEAS_PORT", 8000),
            nats_replicas=_int(env, "ORFEAS_NATS_REPLICAS", 1),
            job_ack_wait_s=float(_int(env, "ORFEAS_JOB_ACK_WAIT_S", 30)),
            models_dir=Path(models) if models else None,
            generation_cache_ttl_s=float(_int(env, "ORFEAS_GENERATION_CACHE_TTL_S", WEEK_S)),
            mesh_job_budget_s=float(_int(env, "ORFEAS_MESH_JOB_BUDGET_S", 600)),
            shap_e_int8=env.get("ORFEAS_SHAPE_INT8", "0") in ("1", "true", "yes"),
            ws_max_frame_bytes=_frame_limit(env),
            allowed_origins=_origins(env),
            login_account_failures=_int(env, "ORFEAS_LOGIN_ACCOUNT_FAILURES", 5),
            login_address_failures=_int(env, "ORFEAS_LOGIN_ADDRESS_FAILURES", 50),
            login_window_s=float(_int(env, "ORFEAS_LOGIN_WINDOW_S", 300)),
            login_max_block_s=float(_int(env, "ORFEAS_LOGIN_MAX_BLOCK_S", 900)),
            generator_heartbeat_s=float(heartbeat_s),
        )

    def to_env(self) -> dict[str, str]:
        """The variables from which :meth:`from_env` rebuilds these settings in a child process."""
        env = {
            "ORFEAS_DATA": str(self.data_dir),
            "ORFEAS_NAMESPACE": self.namespace,
            "ORFEAS_HOST": self.host,
            "ORFEAS_PORT": str(self.port),
        }
        if self.database_url:
            env["ORFEAS_DATABASE_URL"] = self.database_url
        if self.nats_url:
            env["ORFEAS_NATS_URL"] = self.nats_url
        if self.nats_replicas != 1:
            env["ORFEAS_NATS_REPLICAS"] = str(self.nats_replicas)
        if self.job_ack_wait_s != 30.0:
            env["ORFEAS_JOB_ACK_WAIT_S"] = str(int(self.job_ack_wait_s))
        if self.models_dir:
            env["ORFEAS_MODELS_DIR"] = str(self.models_dir)
        if self.generation_cache_ttl_s != WEEK_S:
            env["ORFEAS_GENERATION_CACHE_TTL_S"] = str(int(self.generation_cache_ttl_s))
        if self.shap_e_int8:
            env["ORFEAS_SHAPE_INT8"] = "1"
        if self.mesh_job_budget_s != 600.0:
            env["ORFEAS_MESH_JOB_BUDGET_S"] = str(int(self.mesh_job_budget_s))
        if self.ws_max_frame_bytes != WS_FRAME_CEILING_BYTES:
            env["ORFEAS_WS_MAX_FRAME_BYTES"] = str(self.ws_max_frame_bytes)
        if self.allowed_origins:
            env["ORFEAS_ALLOWED_ORIGINS"] = ",".join(self.allowed_origins)
        for key, value, default in (
            ("ORFEAS_LOGIN_ACCOUNT_FAILURES", self.login_account_failures, 5),
            ("ORFEAS_LOGIN_ADDRESS_FAILURES", self.login_address_failures, 50),
            ("ORFEAS_LOGIN_WINDOW_S", self.login_window_s, 300),
            ("ORFEAS_LOGIN_MAX_BLOCK_S", self.login_max_block_s, 900),
            ("ORFEAS_GENERATOR_HEARTBEAT_S", self.generator_heartbeat_s, 30),
        ):
            if value != default:
                env[key] = str(int(value))
        if self.s3:
            env |= {
                "ORFEAS_S3_ENDPOINT": self.s3.endpoint,
                "ORFEAS_S3_ACCESS_KEY": self.s3.access_key,
                "ORFEAS_S3_SECRET_KEY": self.s3.secret_key,
                "ORFEAS_S3_BUCKET": self.s3.bucket,
                "ORFEAS_S3_REGION": self.s3.region,
            }
        return env

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def require_services(self) -> tuple[str, str, S3Settings]:
        """The three service addresses, or a clear error naming the missing one."""
        if not self.database_url:
            raise ConfigurationError("ORFEAS_DATABASE_URL is not set (or run `orfeas up`)")
        if not self.nats_url:
            raise ConfigurationError("ORFEAS_NATS_URL is not set (or run `orfeas up`)")
        if self.s3 is None:
            raise ConfigurationError("ORFEAS_S3_ENDPOINT is not set (or run `orfeas up`)")
        return self.database_url, self.nats_url, self.s3


def _frame_limit(env: Mapping[str, str]) -> int:
    limit = _int(env, "ORFEAS_WS_MAX_FRAME_BYTES", WS_FRAME_CEILING_BYTES)
    if not WS_FRAME_FLOOR_BYTES <= limit <= WS_FRAME_CEILING_BYTES:
        raise ConfigurationError(
            f"ORFEAS_WS_MAX_FRAME_BYTES={limit}: use {WS_FRAME_FLOOR_BYTES} to "
            f"{WS_FRAME_CEILING_BYTES} bytes (the scene log stores updates of at most "
            f"{WS_FRAME_CEILING_BYTES})")
    return limit


_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$")


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """``ORFEAS_ALLOWED_ORIGINS``, as browsers write an Origin header (lower case, no path)."""
    origins = []
    for raw in env.get("ORFEAS_ALLOWED_ORIGINS", "").split(","):
        origin = raw.strip().lower().rstrip("/")
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            raise ConfigurationError(
                f"ORFEAS_ALLOWED_ORIGINS: {raw.strip()!r} is not an origin; write "
                "scheme://host[:port], e.g. https://studio.example.com")
        origins.append(origin)
    return tuple(origins)


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key)
    if not value:
        raise ConfigurationError(f"{key} must be set when ORFEAS_S3_ENDPOINT is set")
    return value


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ConfigurationError(f"{key}={raw!r} is not an integer") from e
