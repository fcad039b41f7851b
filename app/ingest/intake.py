"""Images coming in with records: each path checked once per run, each image stored once for good.

Two halves, which may run in two processes: `take` reads, checks and stores the file (no database; an
import's reading side), `image_id` finds or makes its row (the writing side). The file is in the media store
before any row can point at it, so a crash leaves at most an unreferenced file, never a row without its file.
Nothing caches image bytes: a cached answer is the image's metadata."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from app.ingest.bulk import get_or_create
from app.ingest.image_sources import ImageSource, open_image_source
from app.ingest.images import ImageRejected, check_image
from app.models import Image, utcnow
from app.storage import MediaStore

PATH_CACHE = 50_000  # recently seen paths: datasets reuse images across instances and tasks
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
                self.media.put(checked.data)
                self.stored += 1
            result = StoredImage(checked.sha256, checked.width, checked.height, checked.format, checked.bytes)
        self._checked[relative] = result
        if len(self._checked) > PATH_CACHE:
            self._checked.popitem(last=False)
        return result

    def image_id(self, connection: Connection, image: StoredImage) -> int:
        """The image's row id, made on first sight."""
        found = self._ids.get(image.sha256)
        if found is not None:
            return found
        image_id = get_or_create(connection, Image, "sha256", image.sha256, {
            "width": image.width, "height": image.height, "format": image.format, "bytes": image.bytes,
            "created_at": utcnow()})
        if len(self._ids) >= ID_CACHE:
            self._ids.clear()  # rows found again cost one lookup each
        self._ids[image.sha256] = image_id
        return image_id

    def _open(self) -> ImageSource | None:
        if self._source is None and self.root is not None:
            self._source = open_image_source(self.root)
        return self._source

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
