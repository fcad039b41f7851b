"""S3-compatible object storage, for studios whose web processes, workers and trainers share no filesystem.

One client, boto3: the AWS SDK reads the endpoint and credentials the AWS way (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, profiles, instance roles), so MinIO, Ceph, R2 and
AWS S3 all work, and its transfer manager uploads big files as multipart uploads with retries. Its clients
are fork-safe when each process makes its own, which this module does: the studio forks readers, image pools
and export parts (obstore, faster per request, hung in a child forked after its first request here).

Keys are relative to the URL's prefix: `Bucket("s3://studio/media").key("ab/abcd")` is `media/ab/abcd`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

S3_SCHEME = "s3://"
MULTIPART_FROM = 16 * 1024 * 1024  # bytes; the transfer manager's parts are this big too
UPLOAD_THREADS = 8
REQUESTS_IN_FLIGHT = 8  # small objects per process at once: each waits on a round trip, not on this machine
IN_FLIGHT_WINDOW = 1024  # calls queued at once (a pull of 200,000 images is not 200,000 futures)


class ObjectMissing(FileNotFoundError):
    """An object that should be there is not."""


class StorageUnavailable(OSError):
    """The object store could not be reached or refused the request (after the client's retries)."""


def is_object_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(S3_SCHEME)


@dataclass
class Bucket:
    """A bucket and a key prefix, from `s3://bucket/prefix`. Picklable by URL: a process that unpickles it
    (a forked helper, a pool process) makes its own client on first use."""

    url: str
    name: str = field(init=False)
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        if not is_object_url(self.url):
            raise ValueError(f"not an s3:// URL: {self.url!r}")
        self.url = self.url.rstrip("/")
        self.name, _, prefix = self.url[len(S3_SCHEME):].partition("/")
        if not self.name:
            raise ValueError(f"{self.url!r} names no bucket: write s3://bucket or s3://bucket/prefix")
        self.prefix = f"{prefix}/" if prefix else ""

    def __reduce__(self):
        return (Bucket, (self.url,))

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def describe(self, relative: str) -> str:
        """Where an object is, for messages: `s3://bucket/prefix/relative` (never credentials)."""
        return f"{S3_SCHEME}{self.name}/{self.key(relative)}"

    @property
    def client(self):
        return _client()

    def put_once(self, relative: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Writes the object unless it exists (a conditional put: of two writers racing, one writes); True when
        this call wrote it. For content-addressed objects, whose bytes never change."""
        try:
            self.client.put_object(Bucket=self.name, Key=self.key(relative), Body=data, IfNoneMatch="*",
                                   ContentType=content_type)
            return True
        except _sdk_errors() as error:
            if _code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise _translated(error, self.describe(relative)) from error

    def put(self, relative: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.name, Key=self.key(relative), Body=data, ContentType=content_type)
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative)) from error

    def upload_file(self, relative: str, path: Path) -> None:
        """Uploads a local file, as a multipart upload when it is big: the object appears whole when the upload
        completes, and a failed upload is aborted (its parts never become an object)."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_FROM, multipart_chunksize=MULTIPART_FROM,
                                max_concurrency=UPLOAD_THREADS)
        try:
            self.client.upload_file(str(path), self.name, self.key(relative), Config=config)
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative)) from error

    def get(self, relative: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.name, Key=self.key(relative))["Body"].read()
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative)) from error

    def open(self, relative: str) -> BinaryIO:
        """A stream of the object's bytes, read as they arrive (a big file never sits in memory whole)."""
        return self.open_sized(relative)[1]

    def open_sized(self, relative: str) -> tuple[int, BinaryIO]:
        """The object's size, and a stream of its bytes that has not read them yet."""
        try:
            response = self.client.get_object(Bucket=self.name, Key=self.key(relative))
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative)) from error
        return response["ContentLength"], response["Body"]

    def download(self, relative: str, target: Path) -> None:
        """Copies the object into `target`, which appears whole or not at all."""
        temporary = target.with_name(f".incoming-{os.getpid()}-{threading.get_ident()}-{target.name}")
        try:
            self.client.download_file(self.name, self.key(relative), str(temporary))
            os.replace(temporary, target)
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative)) from error
        finally:
            temporary.unlink(missing_ok=True)

    def size(self, relative: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.name, Key=self.key(relative))["ContentLength"]
        except _sdk_errors() as error:
            if _code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _translated(error, self.describe(relative)) from error

    def list(self, relative_prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key relative to the bucket's prefix, size) of every object under `relative_prefix`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name,
                                                                     Prefix=self.key(relative_prefix))
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix):], item["Size"]
        except _sdk_errors() as error:
            raise _translated(error, self.describe(relative_prefix)) from error

    def delete_under(self, relative_prefix: str) -> int:
        """Deletes every object under the prefix; how many."""
        keys = [self.key(relative) for relative, _ in self.list(relative_prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
        return len(keys)


def in_flight(function, items: list) -> list:
    """`function` of each item, REQUESTS_IN_FLIGHT at a time, in order: for many small requests, each of which
    waits on a round trip rather than on this machine. The threads are this process's own. Every call has ended
    when this returns or raises (the first error, once the rest are done), so a caller's clean-up never races
    a request still writing."""
    if len(items) < 2:
        return [function(item) for item in items]
    pid = os.getpid()
    if pid not in _executors:
        _executors[pid] = ThreadPoolExecutor(REQUESTS_IN_FLIGHT, thread_name_prefix="object-requests")
    results = []
    for start in range(0, len(items), IN_FLIGHT_WINDOW):
        futures = [_executors[pid].submit(function, item) for item in items[start:start + IN_FLIGHT_WINDOW]]
        wait(futures)
        results += [future.result() for future in futures]
    return results


_executors: dict[int, ThreadPoolExecutor] = {}
_clients: dict[tuple[int, str | None], Any] = {}
_clients_lock = threading.Lock()


def _client():
    """This process's client for the endpoint the environment names (boto3 clients are thread-safe, but a forked
    child must not reuse its parent's connections). Retries follow AWS_RETRY_MODE and AWS_MAX_ATTEMPTS.
    Checksums only where S3 requires them: the SDK's default CRC of every body cost as much CPU as the rest of a
    small put."""
    key = (os.getpid(), os.environ.get("AWS_ENDPOINT_URL"))
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required",
                                max_pool_connections=32, s3={"addressing_style": "path"})
                client = _clients[key] = boto3.session.Session().client("s3", config=config)
    return client


def _sdk_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises for a request that failed (imported on first failure, like the SDK itself)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError, Boto3Error


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or str(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _translated(error: Exception, where: str) -> Exception:
    """The SDK's error as one a person can act on: what is missing, or which store could not be used."""
    if _code(error) in ("404", "NoSuchKey", "NotFound"):
        return ObjectMissing(f"{where} does not exist")
    if _code(error) == "NoSuchBucket":
        return StorageUnavailable(f"{where}: the bucket does not exist (create it, or check STUDIO_*_URL)")
    name = type(error).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageUnavailable(f"{where}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    return StorageUnavailable(f"{where}: {name}: {error}")
