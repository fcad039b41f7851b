"""Import files and image roots on object storage (`s3://bucket/key`), read the way importers read local ones:
`ObjectPath` answers what they ask of a `Path` (name, suffix, size, open) and streams the object through a
buffer, so a file of millions of records never sits in memory whole (`image_sources.ObjectFolderSource` reads
the images under an `s3://bucket/prefix` image root)."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from app.core.objectstore import Bucket, ObjectMissing, is_object_url

READ_BUFFER = 1024 * 1024


class ObjectPath:
    """`s3://bucket/key`: a file, or a prefix that holds files (an image root)."""

    def __init__(self, url: str):
        if not is_object_url(url):
            raise ValueError(f"not an s3:// URL: {url!r}")
        self.url = url.rstrip("/")
        parent, _, self.name = self.url.rpartition("/")
        if parent.endswith(":/") or not self.name:
            raise ValueError(f"{url} names no object: write s3://bucket/key")
        self._bucket = Bucket(parent)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ObjectPath({self.url!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, relative: str) -> ObjectPath:
        return ObjectPath(f"{self.url}/{relative}")

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.url.rpartition("/")[0])

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def stat(self) -> SimpleNamespace:
        size = self._bucket.size(self.name)
        if size is None:
            raise ObjectMissing(f"{self.url} does not exist")
        return SimpleNamespace(st_size=size)

    def is_file(self) -> bool:
        return self._bucket.size(self.name) is not None

    def is_dir(self) -> bool:
        return next(iter(self._bucket.list(self.name + "/")), None) is not None

    def open(self, mode: str = "r", encoding: str | None = None, newline: str | None = None):
        """A buffered stream of the object: binary for "rb", text otherwise."""
        if mode not in ("r", "rb"):
            raise ValueError(f"{self.url} can only be read (mode {mode!r})")
        binary = io.BufferedReader(_Body(self._bucket.open(self.name)), buffer_size=READ_BUFFER)
        return binary if mode == "rb" else io.TextIOWrapper(binary, encoding=encoding or "utf-8", newline=newline)

    def download(self, target: Path) -> None:
        self._bucket.download(self.name, target)

    def read_bytes(self) -> bytes:
        return self._bucket.get(self.name)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)


class _Body(io.RawIOBase):
    """The SDK's response body as a raw stream that `io.BufferedReader` can buffer."""

    def __init__(self, body):
        self._body, self.read_so_far = body, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        self.read_so_far += len(data)
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()
