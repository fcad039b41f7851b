"""Where a version's files live: a folder under the exports dir (the embedded default), or a prefix on object
storage (`STUDIO_EXPORTS_URL=s3://...`), published from a local build and read back through the same URL by
downloads, `validate` and the worker, which keeps copies in a size-limited cache."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.core.config import Settings
from app.core.failures import NotFound
from app.core.objectstore import Bucket, is_object_url
from app.core.storage import PathOutsideRoot, confined, open_media, relative_key
from app.exports.build import BuildError, build
from app.exports.cache import VersionCache
from app.exports.remote import MANIFEST, publish, pull
from app.exports.task_records import IMAGE_DIR
from app.models import DatasetVersion
from app.schemas.export_spec import ExportSpec
from app.schemas.manifest import Manifest
from app.services import quality_figures

STREAM_CHUNK = 1024 * 1024


def on_object_storage(settings: Settings) -> bool:
    return is_object_url(settings.exports_location)


def folder_of(settings: Settings, version: DatasetVersion) -> Path:
    """The version's folder in a local exports dir (with exports on object storage: where it is built)."""
    if on_object_storage(settings):
        return settings.data_dir / "staging" / str(version.id)
    return Path(settings.exports_location) / str(version.id)


def where(settings: Settings, version: DatasetVersion) -> str:
    """The version's location, for people: a folder or an s3:// URL."""
    if on_object_storage(settings):
        return f"{settings.exports_location}/{version.id}"
    return str(folder_of(settings, version))


def build_files(engine: Engine, settings: Settings, version: DatasetVersion, spec: ExportSpec,
                count_tokens: Callable[[str], int], on_progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Builds the version and, with exports on object storage, publishes it; its manifest. A build that was
    finished but not published (the store went away) is published again, not rebuilt."""
    folder = folder_of(settings, version)
    with Session(engine) as session:
        review = quality_figures.review_figures(session, task_ids=spec.task_ids,
                                                 revisions_through=spec.revisions_through,
                                                 pool_id=spec.conversation_pool_id, as_of=spec.as_of)
    if not on_object_storage(settings):
        return build(engine, spec=spec, destination=folder, media=open_media(settings.media_location),
                     count_tokens=count_tokens, on_progress=on_progress, name=version.name,
                     qc_override=version.qc_override_reason, review=review)
    if spec.images_as_tar:
        raise BuildError("A version on object storage names its images in the media bucket; it has no images.tar "
                         "(`python -m app pull` makes a folder of it).")
    if (folder / MANIFEST).is_file():
        manifest = json.loads((folder / MANIFEST).read_bytes())
    else:
        manifest = build(engine, spec=spec, destination=folder, media=None, count_tokens=count_tokens,
                         on_progress=lambda fraction, message: on_progress(0.9 * fraction, message),
                         name=version.name, qc_override=version.qc_override_reason, review=review,
                         image_source=open_media(settings.media_location) if "hf" in spec.layouts else None)
    publish(folder, Bucket(settings.exports_location), str(version.id), manifest,
            lambda fraction, message: on_progress(0.9 + 0.1 * fraction, message))
    shutil.rmtree(folder, ignore_errors=True)
    return manifest


@dataclass(frozen=True)
class VersionFile:
    """A file to send: on local disk (`path`), or streamed from object storage (`chunks`, `size`)."""

    name: str
    path: Path | None = None
    chunks: Iterator[bytes] | None = None
    size: int = 0


def open_file(settings: Settings, version: DatasetVersion, relative: str) -> VersionFile:
    """A file of a ready version, confined to it: one the manifest lists, or one of its images."""
    missing = NotFound(f"Version {version.name} has no file {relative!r}.")
    if not on_object_storage(settings):
        try:
            path = confined(folder_of(settings, version), relative)
        except PathOutsideRoot:
            raise missing from None
        if not path.is_file():
            raise missing
        return VersionFile(relative, path=path)
    name = relative.rsplit("/", 1)[-1]
    listed = Manifest.read(version.manifest)
    if (listed and relative in listed.files) or relative == MANIFEST:
        bucket, key = Bucket(settings.exports_location), f"{version.id}/{relative}"
    elif relative == f"{IMAGE_DIR}/{name}" and "." in name:  # an image it names, from the media bucket
        try:
            bucket, key = open_media(settings.media_location).bucket, relative_key(name.split(".", 1)[0])
        except ValueError:
            raise missing from None
    else:
        raise missing
    size, body = bucket.open_sized(key)  # an object that is gone: ObjectMissing, a 404 naming it
    return VersionFile(relative, chunks=body.iter_chunks(STREAM_CHUNK), size=size)


def local_copy(settings: Settings, version: DatasetVersion) -> Path:
    """A local folder with the version's files and images, as a trainer reads them: the folder itself, or a
    copy pulled from object storage into this machine's cache (`STUDIO_VERSION_CACHE_GB`)."""
    if not on_object_storage(settings):
        return folder_of(settings, version)
    cache = VersionCache(settings.version_cache_dir, int(settings.version_cache_gb * 1e9))
    return cache.folder(f"{version.id}-{(version.content_hash or '')[:16]}",
                        lambda target: pull(Bucket(settings.exports_location), str(version.id),
                                            open_media(settings.media_location), target))


def delete_files(settings: Settings, version: DatasetVersion) -> None:
    if on_object_storage(settings):
        Bucket(settings.exports_location).delete_under(f"{version.id}/")
    shutil.rmtree(folder_of(settings, version), ignore_errors=True)
