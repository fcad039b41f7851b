"""Where an import's images are read from: a folder, or a .zip or .tar archive of one (datasets are often
shipped that way). Archives are read in place, never extracted, so a hostile entry name (`../x`, `/etc/x`)
cannot write anywhere; such entries, links and special files are simply never served."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from app.core.objectstore import Bucket, ObjectMissing, in_flight
from app.ingest.images import ImageRejected
from app.ingest.object_files import ObjectPath

ARCHIVE_SUFFIXES = (".zip", ".tar")


class ImageSourceInvalid(ValueError):
    """The image root itself cannot be used; the message says why."""


class ImageSource(Protocol):
    def read(self, relative: str, max_bytes: int) -> bytes:
        """The file's bytes, or ImageRejected saying why not (outside the root, missing, too large...)."""

    def close(self) -> None: ...


def is_archive(path: Path) -> bool:
    return path.suffix.lower() in ARCHIVE_SUFFIXES


def open_image_source(root: Path | ObjectPath) -> ImageSource:
    if isinstance(root, ObjectPath):
        if is_archive(root):
            raise ImageSourceInvalid(f"image root {root} is an archive on object storage: unpack it under a "
                                     "prefix, or download it and import from the local file")
        return ObjectFolderSource(root)
    if root.is_dir():
        return FolderSource(root)
    if not root.is_file():
        raise ImageSourceInvalid(f"image root {root} does not exist")
    suffix = root.suffix.lower()
    if suffix == ".zip":
        return ZipSource(root)
    if suffix == ".tar":
        return TarSource(root)
    raise ImageSourceInvalid(f"image root {root.name} is neither a folder nor a .zip or .tar archive "
                             "(compressed tars cannot be read in place: unpack them or repack as .zip)")


def read_all(source: ImageSource, relatives: list[str], max_bytes: int) -> list[bytes | ImageRejected]:
    """`source.read` of each path, or why not; an object store's several at once (each read waits on a round
    trip, not on the machine)."""
    def read(relative: str) -> bytes | ImageRejected:
        try:
            return source.read(relative, max_bytes)
        except ImageRejected as rejection:
            return rejection

    if isinstance(source, ObjectFolderSource):
        return in_flight(read, relatives)
    return [read(relative) for relative in relatives]


def archive_key(relative: str) -> str:
    """The name an image path is looked up by inside an archive; refuses paths that climb out."""
    parts = [part for part in PurePosixPath(relative.replace("\\", "/")).parts if part not in ("", ".")]
    if not parts or relative.startswith(("/", "\\")) or ".." in parts:
        raise ImageRejected(f"{relative} is outside the image root")
    return "/".join(parts)


def _index(entries: list, name_of, is_dir) -> dict:
    """An archive's entries by the name an image path is looked up with; a hostile name is never served."""
    index = {}
    for entry in entries:
        try:
            key = archive_key(name_of(entry))
        except ImageRejected:
            continue
        if not is_dir(entry):
            index[key] = entry
    return index


def _too_large(size: int, max_bytes: int) -> ImageRejected:
    return ImageRejected(f"{size:,} bytes, more than the {max_bytes:,} allowed")


class FolderSource:
    """Files under a folder. Read with plain os calls on strings: at 200,000 distinct images, pathlib's
    resolve() and three stats per image were a third of an import. A file's folder is resolved once (a
    dataset keeps thousands of images in each), and the file itself is opened without following a link;
    a link is resolved in full, and served only if it stays under the root."""

    FOLDERS = 4_096  # resolved folders remembered

    def __init__(self, root: Path):
        self.prefix = os.path.realpath(root).rstrip(os.sep) + os.sep
        self._folders: dict[str, str | None] = {}  # as written -> resolved with a trailing sep, None if outside

    def read(self, relative: str, max_bytes: int) -> bytes:
        fd = self._open(relative)
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise ImageRejected(f"{relative} is not a file")
            if status.st_size > max_bytes:
                raise _too_large(status.st_size, max_bytes)
            with os.fdopen(fd, "rb", closefd=False) as stream:
                return stream.read()
        finally:
            os.close(fd)

    def _open(self, relative: str) -> int:
        folder, name = os.path.split(relative)
        resolved = self._folder(folder) if name not in ("", ".", "..") else None
        try:
            if resolved is not None:
                try:  # a FIFO would block the import for good: O_NONBLOCK
                    return os.open(resolved + name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                except OSError as error:
                    if error.errno != errno.ELOOP:  # ELOOP: the file is a link, resolved below
                        raise
            path = os.path.realpath(os.path.join(self.prefix, relative))
            if not path.startswith(self.prefix):
                raise ImageRejected(f"{relative} is outside the image root")
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ImageRejected(f"{relative} does not exist under the image root") from None
        except OSError as error:
            raise ImageRejected(f"{relative} cannot be read ({error.strerror})") from None

    def _folder(self, folder: str) -> str | None:
        """The folder resolved, with a trailing separator; None when it is not under the root."""
        if folder not in self._folders:
            if len(self._folders) >= self.FOLDERS:
                self._folders.clear()
            resolved = os.path.realpath(os.path.join(self.prefix, folder)).rstrip(os.sep) + os.sep
            self._folders[folder] = resolved if resolved.startswith(self.prefix) else None
        return self._folders[folder]

    def close(self) -> None:
        pass


class ZipSource:
    def __init__(self, path: Path):
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise ImageSourceInvalid(f"image root {path.name} is not a readable zip archive ({error})") from None
        self.entries: dict[str, zipfile.ZipInfo] = _index(self.archive.infolist(), lambda info: info.filename,
                                                          zipfile.ZipInfo.is_dir)

    def read(self, relative: str, max_bytes: int) -> bytes:
        info = self.entries.get(archive_key(relative))
        if info is None:
            raise ImageRejected(f"{relative} is not in the image archive")
        if info.file_size > max_bytes:
            raise _too_large(info.file_size, max_bytes)
        try:  # the header's size may lie: read no more than allowed, and let zipfile check size and CRC
            with self.archive.open(info) as member:
                data = member.read(max_bytes + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
            raise ImageRejected(f"damaged archive entry, cannot be read ({error})") from None
        if len(data) > max_bytes:
            raise _too_large(len(data), max_bytes)
        return data

    def close(self) -> None:
        self.archive.close()


class TarSource:
    def __init__(self, path: Path):
        try:
            # Kept open for the source's life (closed by close()): members are read by seeking, uncompressed.
            self.archive = tarfile.open(path, mode="r:")  # noqa: SIM115
            members = self.archive.getmembers()
        except (tarfile.TarError, OSError) as error:
            raise ImageSourceInvalid(f"image root {path.name} is not a readable uncompressed tar archive "
                                     f"({error})") from None
        self.entries: dict[str, tarfile.TarInfo] = _index(members, lambda member: member.name, tarfile.TarInfo.isdir)

    def read(self, relative: str, max_bytes: int) -> bytes:
        member = self.entries.get(archive_key(relative))
        if member is None:
            raise ImageRejected(f"{relative} is not in the image archive")
        if not member.isfile():  # links could point anywhere; devices and fifos are not images
            raise ImageRejected(f"{relative} is a link or special file in the image archive")
        if member.size > max_bytes:
            raise _too_large(member.size, max_bytes)
        try:
            with self.archive.extractfile(member) as stream:
                data = stream.read(max_bytes + 1)
        except (tarfile.TarError, OSError) as error:
            raise ImageRejected(f"damaged archive entry, cannot be read ({error})") from None
        if len(data) != member.size:
            raise ImageRejected(f"damaged archive entry: {len(data):,} bytes where its header says {member.size:,}")
        return data

    def close(self) -> None:
        self.archive.close()


class ObjectFolderSource:
    """The images under an `s3://bucket/prefix` image root; each read is one request, sized before it is read."""

    def __init__(self, root: ObjectPath):
        self.bucket = Bucket(root.url)

    def read(self, relative: str, max_bytes: int) -> bytes:
        try:
            size, body = self.bucket.open_sized(archive_key(relative))
        except ObjectMissing:
            raise ImageRejected(f"{relative} does not exist under the image root") from None
        with body:
            if size > max_bytes:
                raise _too_large(size, max_bytes)
            return body.read()

    def close(self) -> None:
        pass
