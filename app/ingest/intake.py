"""Images coming in with records: each path checked once per run, each image stored once for good.

Two halves, which may run in two processes: `take_many` reads, checks and stores the files (no database; an
import's reading side), `image_ids` finds or makes their rows (the writing side). The file is in the media
store before any row can point at it, so a crash leaves at most an unreferenced file, never a row without its
file: files are written without an fsync each, and the writing side makes them durable with one
`make_durable()` (a syncfs) before it commits rows that point at them. Nothing caches image bytes: a cached
answer is the image's metadata.

Reading, checking and storing a small JPEG costs ~0.2 ms, mostly system calls and Pillow's header parse:
at 200,000 distinct images that was most of an import, so a batch of new paths is spread over a pool of
forked processes (`workers`), each with its own handle on the image root."""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, cast

from sqlalchemy import Connection

from app.core.forked import start_as_helper
from app.core.storage import Media, open_media
from app.ingest.image_sources import ImageSource, open_image_source, read_all
from app.ingest.images import CheckedImage, ImageRejected, check_image
from app.models import utcnow
from app.services import bulk_rows

PATH_CACHE = 50_000  # recently seen paths: datasets reuse images across instances and tasks
ID_CACHE = 200_000  # image ids by sha256 (a million distinct images would otherwise be ~150 MB of keys)
PARALLEL_FROM = 64  # new paths in a batch below which the pool is not worth a round trip
SLICE = 256  # paths per task sent to a pool process
BATCH = 32  # images read, checked and stored together (several requests in flight on object storage)


class StoredImage(NamedTuple):
    """An image checked and in the media store: what its row needs. A tuple: a chunk sends thousands of them
    from the reading process to the writing one, and a dataclass unpickles several times slower."""

    sha256: str
    width: int
    height: int
    format: str
    bytes: int


Taken = StoredImage | ImageRejected


class ImageIntake:
    """Opens `root` (a folder or an archive, see image_sources) on construction, so that a root that
    cannot be used fails the import before anything is written. `close()` after each run."""

    def __init__(self, media: Media, root: Path | None, *, max_bytes: int, max_pixels: int, workers: int = 1):
        self.media, self.root = media, root
        self._source: ImageSource | None = None
        self._open()
        self.max_bytes, self.max_pixels, self.workers = max_bytes, max_pixels, workers
        self.stored = 0  # new files written to the media store by this run
        self._durable = 0  # ... of which made durable
        self._checked: OrderedDict[str, Taken] = OrderedDict()
        self._ids: dict[str, int] = {}
        self._pool = None

    def take(self, relative: str) -> Taken:
        """The image checked and stored, or why it is refused; the same answer for a path seen recently."""
        return self.take_many([relative])[relative]

    def take_many(self, relatives: Iterable[str]) -> dict[str, Taken]:
        """`take` for each path, the new ones spread over the pool when there are enough of them."""
        answers: dict[str, Taken | None] = {}  # in the paths' order: None until a new path's answer is in
        new: list[str] = []
        for relative in relatives:
            if relative in answers:
                continue
            if relative in self._checked:
                self._checked.move_to_end(relative)
                answers[relative] = self._checked[relative]
            else:
                answers[relative] = None
                new.append(relative)
        if not new:
            return cast(dict[str, Taken], answers)
        if self.workers > 1 and len(new) >= PARALLEL_FROM:
            slices = [new[start:start + SLICE] for start in range(0, len(new), SLICE)]
            results = [result for part in self._workers().imap(_take_in_worker, slices) for result in part]
        else:
            results = _take_all(self._open(), self.media, new, self.max_bytes, self.max_pixels)
        written: set[str] = set()  # by sha256: two pool processes may both store one image given two paths
        for relative, (result, wrote) in zip(new, results, strict=True):
            answers[relative] = self._checked[relative] = result
            if wrote:
                written.add(result.sha256)
        self.stored += len(written)
        while len(self._checked) > PATH_CACHE:
            self._checked.popitem(last=False)
        return cast(dict[str, Taken], answers)  # every None was answered

    def make_durable(self) -> None:
        """What `take` stored since the last call survives a crash (before rows pointing at it commit)."""
        if self.stored != self._durable:
            self.media.make_durable()
            self._durable = self.stored

    def image_id(self, connection: Connection, image: StoredImage) -> int:
        """The image's row id, made on first sight."""
        return self.image_ids(connection, [image])[image.sha256]

    def image_ids(self, connection: Connection, images: Iterable[StoredImage]) -> dict[str, int]:
        """Each image's row id by sha256, made on first sight: two or three statements for a chunk's images,
        however many (one statement per image made an import of 200,000 distinct images crawl)."""
        wanted = {image.sha256: image for image in images}
        ids = {sha256: self._ids[sha256] for sha256 in wanted if sha256 in self._ids}
        missing = [sha256 for sha256 in wanted if sha256 not in ids]
        found = bulk_rows.image_ids(connection, missing)
        new = [sha256 for sha256 in missing if sha256 not in found]
        if new:
            bulk_rows.insert_images(connection, [wanted[sha256][:5] for sha256 in new], utcnow())
            found.update(bulk_rows.image_ids(connection, new))
        ids.update(found)
        if len(self._ids) + len(missing) > ID_CACHE:
            self._ids.clear()  # rows found again cost a lookup
        self._ids.update(found)
        return ids

    def _open(self) -> ImageSource | None:
        if self._source is None and self.root is not None:
            self._source = open_image_source(self.root)
        return self._source

    def _workers(self):
        """The pool, started on first use in the process that uses it (an import's reading process)."""
        if self._pool is None:
            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(self.workers, initializer=_start_worker, initargs=(
                os.getpid(), self.root, self.media.location, self.max_bytes, self.max_pixels))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        if self._source is not None:
            self._source.close()
            self._source = None


def _take_all(source: ImageSource | None, media: Media, relatives: list[str], max_bytes: int,
              max_pixels: int) -> list[tuple[Taken, bool]]:
    """Each image at `relatives` checked and stored, or why not; and whether this call wrote its file. Reads
    and writes go a batch at a time through `read_all` and `put_all`: on object storage, a request each, several
    in flight; a batch's bytes are all that is held."""
    if source is None:
        return [(ImageRejected("no image root was given for this import"), False)] * len(relatives)
    if len(relatives) > BATCH:
        return [result for start in range(0, len(relatives), BATCH)
                for result in _take_all(source, media, relatives[start:start + BATCH], max_bytes, max_pixels)]
    taken: list[Taken | CheckedImage] = []
    for data in read_all(source, relatives, max_bytes):
        try:
            if isinstance(data, ImageRejected):
                raise data
            checked = check_image(data, max_pixels=max_pixels)
        except ImageRejected as rejection:
            taken.append(rejection)
            continue
        taken.append(checked)
    wrote = iter(media.put_all([(item.sha256, item.data) for item in taken if not isinstance(item, ImageRejected)]))
    return [(item, False) if isinstance(item, ImageRejected) else
            (StoredImage(item.sha256, item.width, item.height, item.format, item.bytes), next(wrote))
            for item in taken]


_worker: tuple | None = None  # in a pool process: (source, media, max_bytes, max_pixels)


def _start_worker(parent: int, root: Path | None, media: str, max_bytes: int, max_pixels: int) -> None:
    global _worker
    start_as_helper(parent)
    # A handle of its own: an archive's file position shared with other processes would interleave reads.
    _worker = (open_image_source(root) if root is not None else None, open_media(media), max_bytes, max_pixels)


def _take_in_worker(relatives: list[str]) -> list[tuple[Taken, bool]]:
    source, media, max_bytes, max_pixels = _worker
    return _take_all(source, media, relatives, max_bytes, max_pixels)
