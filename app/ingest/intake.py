"""Images coming in with records: each path checked once per run, each image stored once for good.

Two halves, which may run in two processes: `take` reads, checks and stores the file (no database; an
import's reading side), `image_id` finds or makes its row (the writing side). The file is in the media store
before any row can point at it, so a crash leaves at most an unreferenced file, never a row without its file:
files are written without an fsync each, and the writing side makes them durable with one `make_durable()`
(a syncfs) before it commits rows that point at them. Nothing caches image bytes: a cached answer is the
image's metadata."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from app.ingest.bulk import insert_ignoring_conflicts
from app.ingest.image_sources import ImageSource, open_image_source
from app.ingest.images import ImageRejected, check_image
from app.models import Image, utcnow
from app.storage import MediaStore

PATH_CACHE = 50_000  # recently seen paths: datasets reuse images across instances and tasks
IN_CLAUSE = 500  # sha256s per lookup
ID_CACHE = 200_000  # image ids by sha256 (a million distinct images would otherwise be ~150 MB of keys)


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image checked and in the media store: what its row needs."""

    sha256: str
    width: int
    height: int
    format: str
    bytes: int


class ImageIntake:
    """Opens `root` (a folder or an archive, see image_sources) on construction, so that a root that
    cannot be used fails the import before anything is written. `close()` after each run."""

    def __init__(self, media: MediaStore, root: Path | None, *, max_bytes: int, max_pixels: int):
        self.media, self.root = media, root
        self._source: ImageSource | None = None
        self._open()
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.stored = 0  # new files written to the media store by this run
        self._durable = 0  # ... of which made durable
        self._checked: OrderedDict[str, StoredImage | ImageRejected] = OrderedDict()
        self._ids: dict[str, int] = {}

    def take(self, relative: str) -> StoredImage | ImageRejected:
        """The image checked and stored, or why it is refused; the same answer for a path seen recently."""
        if relative in self._checked:
            self._checked.move_to_end(relative)
            return self._checked[relative]
        try:
            source = self._open()
            if source is None:
                raise ImageRejected("no image root was given for this import")
            checked = check_image(source.read(relative, self.max_bytes), max_pixels=self.max_pixels)
        except ImageRejected as rejection:
            result: StoredImage | ImageRejected = rejection
        else:
            if not self.media.exists(checked.sha256):
                self.media.put(checked.data, durable=False)
                self.stored += 1
            result = StoredImage(checked.sha256, checked.width, checked.height, checked.format, checked.bytes)
        self._checked[relative] = result
        if len(self._checked) > PATH_CACHE:
            self._checked.popitem(last=False)
        return result

    def make_durable(self) -> None:
        """What `take` stored since the last call survives a crash (before rows pointing at it commit)."""
        if self.stored != self._durable:
            self.media.make_durable()
            self._durable = self.stored

    def image_id(self, connection: Connection, image: StoredImage) -> int:
        """The image's row id, made on first sight."""
        return self.image_ids(connection, [image])[image.sha256]

    def image_ids(self, connection: Connection, images: Iterable[StoredImage]) -> dict[str, int]:
        """Each image's row id by sha256, made on first sight: a few statements per IN_CLAUSE images, not
        three per image (which made an import of 200,000 distinct images spend most of its time here)."""
        wanted = {image.sha256: image for image in images}
        ids = {sha256: self._ids[sha256] for sha256 in wanted if sha256 in self._ids}
        missing = [sha256 for sha256 in wanted if sha256 not in ids]
        for start in range(0, len(missing), IN_CLAUSE):
            batch = missing[start:start + IN_CLAUSE]
            found = dict(connection.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(batch))).all())
            new = [sha256 for sha256 in batch if sha256 not in found]
            if new:
                now = utcnow()
                connection.execute(insert_ignoring_conflicts(connection, Image), [
                    {"sha256": sha256, "width": wanted[sha256].width, "height": wanted[sha256].height,
                     "format": wanted[sha256].format, "bytes": wanted[sha256].bytes, "created_at": now}
                    for sha256 in new])
                found.update(connection.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(new))).all())
            ids.update(found)
        if len(self._ids) + len(missing) > ID_CACHE:
            self._ids.clear()  # rows found again cost a lookup per batch
        self._ids.update((sha256, ids[sha256]) for sha256 in missing)
        return ids

    def _open(self) -> ImageSource | None:
        if self._source is None and self.root is not None:
            self._source = open_image_source(self.root)
        return self._source

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
