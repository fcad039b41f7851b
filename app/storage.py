"""The media store: image files addressed by their sha256, written atomically, confined to one root."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PathOutsideRoot(ValueError):
    """A path that would leave the store's root."""


def confined(root: Path, relative: str | Path) -> Path:
    """`root / relative`, refusing anything that resolves outside `root` (.., absolute paths, symlinks out)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathOutsideRoot(f"{relative!s} is outside {root}")
    return candidate


def write_atomically(target: Path, data: bytes) -> None:
    """Writes `data` to a temporary file beside `target`, then renames it into place: readers see the
    whole file or none, even if the process dies half-way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class MediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Stores `data` once under its sha256 and returns the digest. A crash leaves no partial file:
        the bytes go to a temporary file in the same folder, renamed into place when complete."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            write_atomically(target, data)
        return digest

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
