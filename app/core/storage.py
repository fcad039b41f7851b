"""The media store: image files addressed by their sha256, written once and whole. A folder by default
(`MediaStore`, confined to its root), or a bucket on S3-compatible object storage (`ObjectMediaStore`) when
the studio spans machines; `open_media` picks by location."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import itertools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.core.objectstore import Bucket, in_flight, is_object_url

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMPORARY_NUMBERS = itertools.count()


class PathOutsideRoot(ValueError):
    """A path that would leave the store's root."""


def confined(root: Path, relative: str | Path) -> Path:
    """`root / relative`, refusing anything that resolves outside `root` (.., absolute paths, symlinks out), and a
    name with a NUL character, which no file can have (the operating system would refuse it with a ValueError)."""
    if "\x00" in os.fspath(relative):
        raise PathOutsideRoot("a path cannot contain a NUL character")
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathOutsideRoot(f"{relative!s} is outside {root}")
    return candidate


def write_atomically(target: str | Path, data: bytes, *, durable: bool = True, folder_exists: bool = False) -> None:
    """Writes `data` to a temporary file beside `target`, then renames it into place: readers see the
    whole file or none, even if the process dies half-way. `durable=False` leaves the fsync to a later
    `sync_filesystem`, for writers of many files (an fsync each made an import of 200,000 images crawl).
    Plain os calls on strings: pathlib cost as much as the system calls for an import's small files."""
    target = os.fspath(target)
    folder = os.path.dirname(target)
    if not folder_exists:
        os.makedirs(folder, exist_ok=True)
    while True:  # a name of our own, cheaper than mkstemp's random search
        temporary = os.path.join(folder, f".incoming-{os.getpid()}-{next(_TEMPORARY_NUMBERS)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:  # left by a process that died with our pid: take the next number
            continue
    try:
        try:
            remaining = memoryview(data)
            while remaining:
                remaining = remaining[os.write(fd, remaining):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


_SYNCFS = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None) if sys.platform == "linux" else None


def sync_filesystem(path: Path) -> None:
    """Makes every write so far to the filesystem holding `path` durable: one syncfs (Linux; elsewhere a
    global sync) commits the journal once for all the files, where an fsync per file commits it per file."""
    if _SYNCFS is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs failed: {os.strerror(error)}", str(path))
    finally:
        os.close(fd)


def _checked(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def relative_key(sha256: str) -> str:
    """Where an image lives under the store's root or prefix: `ab/abcd...` (256 folders of a manageable size)."""
    return f"{sha256[:2]}/{_checked(sha256)}"


def thumbnail_key(sha256: str) -> str:
    return f"thumbs/{sha256[:2]}/{_checked(sha256)}.jpg"


def open_media(location: str | Path) -> Media:
    """The media store at a folder, or at `s3://bucket/prefix`."""
    return ObjectMediaStore(str(location)) if is_object_url(location) else MediaStore(Path(location))


class MediaStore:
    """A folder of images named by their sha256: the embedded default."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._folders: dict[str, str] = {}  # the sha256[:2] folders made so far: at most 256

    @property
    def location(self) -> str:
        """What `open_media` takes to open this store again (in another process)."""
        return str(self.root)

    def path_for(self, sha256: str) -> Path:
        return self.root / relative_key(sha256)

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_for(sha256), "rb")

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def copy_to(self, sha256: str, target: Path) -> None:
        """Puts the image at `target`: a hard link where it can (same file system), else a copy that appears
        whole under its name. A target that exists already is that image (names are content)."""
        try:
            os.link(self.path_for(sha256), target)
        except FileExistsError:
            pass
        except OSError:  # another file system: copy beside it, then rename into place
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".copy-")
            os.close(handle)
            shutil.copyfile(self.path_for(sha256), temporary)
            os.replace(temporary, target)

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Stores `data` once under its sha256 and returns the digest. A crash leaves no partial file:
        the bytes go to a temporary file in the same folder, renamed into place when complete. With
        `durable=False` the caller calls `make_durable()` before committing any row that points at it."""
        digest = hashlib.sha256(data).hexdigest()
        self._store(digest, data, durable=durable)
        return digest

    def put_new(self, sha256: str, data: bytes) -> bool:
        """`put(data, durable=False)` for bytes whose sha256 the caller has just computed (an import's many
        files: no second hash); True when this call wrote the file, False when it was there already."""
        return self._store(sha256, data, durable=False)

    def _store(self, sha256: str, data: bytes, *, durable: bool) -> bool:
        """One stat, and each of the 256 folders made once: os calls on strings, as cheap as they get."""
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        folder = self._folders.get(sha256[:2])
        if folder is None:
            folder = self._folders[sha256[:2]] = os.path.join(self.root, sha256[:2])
            os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, sha256)
        if os.path.exists(target):
            return False
        write_atomically(target, data, durable=durable, folder_exists=True)
        return True

    def put_all(self, images: list[tuple[str, bytes]]) -> list[bool]:
        """`put_new` of each (sha256, bytes)."""
        return [self.put_new(sha256, data) for sha256, data in images]

    def make_durable(self) -> None:
        """Everything `put(durable=False)` and `put_new` wrote so far survives a crash once this returns."""
        if self.root.exists():
            sync_filesystem(self.root)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()


class ObjectMediaStore:
    """The media store in a bucket: `s3://bucket/prefix/ab/abcd...`, each image written once by a conditional
    put, its thumbnail beside it under `thumbs/`. A put that returned is durable: nothing to sync."""

    def __init__(self, url: str):
        self.bucket = Bucket(url)

    @property
    def location(self) -> str:
        return self.bucket.url

    def put(self, data: bytes, *, durable: bool = True) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.put_new(digest, data)
        return digest

    def put_new(self, sha256: str, data: bytes) -> bool:
        return self.bucket.put_once(relative_key(sha256), data)

    def put_all(self, images: list[tuple[str, bytes]]) -> list[bool]:
        """`put_new` of each (sha256, bytes), several requests in flight."""
        return in_flight(lambda image: self.put_new(*image), images)

    def make_durable(self) -> None:
        """Nothing to do: the store acknowledged each put once it held the object."""

    def exists(self, sha256: str) -> bool:
        return self.bucket.size(relative_key(sha256)) is not None

    def open(self, sha256: str) -> BinaryIO:
        """The image's bytes as a seekable file (Pillow seeks; an import caps an image's size)."""
        return io.BytesIO(self.read(sha256))

    def read(self, sha256: str) -> bytes:
        return self.bucket.get(relative_key(sha256))

    def chunks(self, sha256: str, size: int) -> Iterator[bytes]:
        """The image's bytes as they arrive, `size` at a time. The object is opened now: a missing one is an
        error before a response starts, not half-way through it."""
        return self.bucket.open(relative_key(sha256)).iter_chunks(size)

    def copy_to(self, sha256: str, target: Path) -> None:
        """The image at `target`, whole or not at all; one request (the transfer manager's download costs two and
        a thread pool, which pays only for big files). Without an fsync each: `sync_filesystem` after many."""
        if not target.exists():
            write_atomically(target, self.read(sha256), durable=False, folder_exists=True)


Media = MediaStore | ObjectMediaStore  # what importers, exports and the worker are given
