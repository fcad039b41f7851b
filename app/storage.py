"""The media store: image files addressed by their sha256, written atomically, confined to one root."""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import re
import sys
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMPORARY_NUMBERS = itertools.count()


class PathOutsideRoot(ValueError):
    """A path that would leave the store's root."""


def confined(root: Path, relative: str | Path) -> Path:
    """`root / relative`, refusing anything that resolves outside `root` (.., absolute paths, symlinks out)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathOutsideRoot(f"{relative!s} is outside {root}")
    return candidate


def write_atomically(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Writes `data` to a temporary file beside `target`, then renames it into place: readers see the
    whole file or none, even if the process dies half-way. `durable=False` leaves the fsync to a later
    `sync_filesystem`, for writers of many files (an fsync each made an import of 200,000 images crawl)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a name of our own, cheaper than mkstemp's random search
        temporary = target.with_name(f".incoming-{os.getpid()}-{next(_TEMPORARY_NUMBERS)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:  # left by a process that died with our pid: take the next number
            continue
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
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


class MediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Stores `data` once under its sha256 and returns the digest. A crash leaves no partial file:
        the bytes go to a temporary file in the same folder, renamed into place when complete. With
        `durable=False` the caller calls `make_durable()` before committing any row that points at it."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            write_atomically(target, data, durable=durable)
        return digest

    def make_durable(self) -> None:
        """Everything `put(durable=False)` wrote so far survives a crash once this returns."""
        if self.root.exists():
            sync_filesystem(self.root)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
