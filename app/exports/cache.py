"""A machine's copies of versions from object storage, within a size limit: a worker pulls the version a
fine-tune needs once, and the least recently used copies go when the limit is passed."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

SIZE_FILE = ".bytes"  # each copy's size, written when it is complete (adding up 200,000 image files is slow)


class VersionCache:
    def __init__(self, root: Path, max_bytes: int):
        self.root, self.max_bytes = root, max_bytes

    def folder(self, name: str, fetch: Callable[[Path], None]) -> Path:
        """The copy called `name`, made with `fetch(target)` unless it is here already. Processes on this
        machine take turns (a lock file), so a version is pulled once however many jobs want it."""
        target = self.root / name
        with self._locked():
            for abandoned in self.root.glob(".pulling-*"):  # a pull that died (the lock says none is running)
                shutil.rmtree(abandoned, ignore_errors=True)
            if not (target / SIZE_FILE).is_file():
                shutil.rmtree(target, ignore_errors=True)  # a copy that was never finished
                fetch(target)
                (target / SIZE_FILE).write_text(str(_size_of(target)))
            os.utime(target)  # most recently used
            self._evict(keep=target)
        return target

    def _evict(self, *, keep: Path) -> None:
        copies = [folder for folder in self.root.iterdir() if (folder / SIZE_FILE).is_file()]
        sizes = {folder: int((folder / SIZE_FILE).read_text()) for folder in copies}
        total = sum(sizes.values())
        for folder in sorted(copies, key=lambda folder: folder.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
                total -= sizes[folder]

    @contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _size_of(folder: Path) -> int:
    return sum(entry.stat().st_size for root, _, names in os.walk(folder)
               for entry in (Path(root) / name for name in names))
