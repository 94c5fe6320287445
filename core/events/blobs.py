"""Content-addressed blob storage on any S3 server (MinIO in production, SeaweedFS embedded).

A blob's key is its SHA-256 (``blobs/sha256/<2>/<62>``), so storing identical bytes twice is a
no-op and "has this result been made before" is a lookup. Uploads are spooled to a temporary
file while they are hashed, because the key is only known once the last byte is read
and because a refused upload must leave nothing behind in the bucket.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from core.errors import BlobStoreError, NotFound, TooLarge
from core.settings import S3Settings

_KEY = re.compile(r"^blobs/sha256/[0-9a-f]{2}/[0-9a-f]{62}$")
PART_SIZE = 8 * 1024 * 1024
PARALLEL_PARTS = 2
"""A large object goes up in parts, each read whole into memory, and minio reads one part
ahead of those in flight: (2 + 1) x 8 MiB = 24 MiB of the API's memory per upload at most.
minio's defaults (3 parallel parts; 16 MiB here before) held 64 MiB, the whole of an upload's
memory budget."""
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 30.0


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:]}"


def digest_of(key: str) -> str:
    """The sha256 a content address names (the inverse of :func:`blob_key`)."""
    return check_key(key).removeprefix("blobs/sha256/").replace("/", "")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise NotFound(f"no blob {key!r}")
    return key


@dataclass
class SpooledBlob:
    """Bytes received and hashed but not yet stored."""

    file: IO[bytes]
    sha256: str
    size: int

    @property
    def key(self) -> str:
        return blob_key(self.sha256)

    def path(self) -> Path:
        """The spool's file path, for parsers that want a file."""
        self.file.flush()
        return Path(self.file.name)

    def close(self) -> None:
        self.file.close()


async def spool(chunks: AsyncIterator[bytes], max_size: int) -> SpooledBlob:
    """Read an upload into a spool while hashing it; refuse it past ``max_size`` bytes."""
    file = tempfile.NamedTemporaryFile(mode="w+b", prefix="orfeas-upload-")  # noqa: SIM115
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_size:
                raise TooLarge(f"upload larger than {max_size} bytes")
            digest.update(chunk)
            file.write(chunk)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return SpooledBlob(file=file, sha256=digest.hexdigest(), size=size)


class BlobStore:
    def __init__(self, s3: S3Settings) -> None:
        self.bucket = s3.bucket
        self._endpoint = s3.endpoint
        self._client = Minio(
            s3.host,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            secure=s3.secure,
            region=s3.region,
            # While the server is down a request fails within about a second (a refused
            # connection is retried once), so the API answers 503 rather than hanging; the
            # read limit is per socket read, so long transfers still work.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
                retries=urllib3.Retry(total=2, connect=1, read=1, backoff_factor=0.1,
                                      status_forcelist=(500, 502, 503, 504)),
            ),
        )

    def ensure_bucket(self) -> None:
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except S3Error as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise BlobStoreError(f"bucket {self.bucket}: {e}") from e
        except (MinioException, urllib3.exceptions.HTTPError) as e:
            raise BlobStoreError(f"S3 at {self._endpoint} unreachable: {e}") from e

    def exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return False
            raise BlobStoreError(f"stat {key}: {e}") from e
        except (MinioException, urllib3.exceptions.HTTPError) as e:
            raise BlobStoreError(f"S3 at {self._endpoint} unreachable: {e}") from e
        return True

    def put_spooled(self, blob: SpooledBlob, media_type: str) -> str:
        """Store the spooled bytes under their content address (once); return the key."""
        if self.exists(blob.key):
            return blob.key
        blob.file.seek(0)
        self._put(blob.key, blob.file, blob.size, media_type)
        return blob.key

    def put_bytes(self, data: bytes, media_type: str) -> str:
        key = blob_key(hashlib.sha256(data).hexdigest())
        if not self.exists(key):
            self._put(key, io.BytesIO(data), len(data), media_type)
        return key

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        check_key(key)
        try:
            response = self._client.get_object(self.bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound(f"no blob {key}") from e
            raise BlobStoreError(f"get {key}: {e}") from e
        except (MinioException, urllib3.exceptions.HTTPError) as e:
            raise BlobStoreError(f"S3 at {self._endpoint} unreachable: {e}") from e
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def server_info(self) -> dict[str, str]:
        """Reachability and the server's own name for itself (its ``Server`` header)."""
        try:
            self._client.bucket_exists(self.bucket)
            http = urllib3.PoolManager(timeout=urllib3.Timeout(total=1.5))
            response = http.request("HEAD", self._endpoint, retries=False)
        except (MinioException, urllib3.exceptions.HTTPError) as e:
            raise BlobStoreError(f"S3 at {self._endpoint} unreachable: {e}") from e
        return {"endpoint": self._endpoint, "bucket": self.bucket,
                "server": response.headers.get("Server", "unknown")}

    def _put(self, key: str, data: IO[bytes], size: int, media_type: str) -> None:
        try:
            self._client.put_object(self.bucket, key, cast(BinaryIO, data), size,
                                    content_type=media_type,
                                    part_size=PART_SIZE,
                                    num_parallel_uploads=PARALLEL_PARTS)
        except (MinioException, urllib3.exceptions.HTTPError) as e:
            raise BlobStoreError(f"put {key}: {e}") from e
