"""Versions on object storage: published from a finished local build, every file first and the manifest last, so
whoever finds a version's manifest finds all of its files; pulled back into a local folder, with the images its
`images.tsv` names in the media bucket, for trainers, `validate` and the worker's cache.

A version is `<exports prefix>/<version id>/`. Publishing again after a failure (the store went away half-way)
uploads only what is not there yet: builds are deterministic, so an object of the right size from an earlier
try is that file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.objectstore import Bucket, ObjectMissing, in_flight
from app.core.storage import ObjectMediaStore, sync_filesystem
from app.exports.task_records import IMAGE_DIR, IMAGE_LIST

MANIFEST = "manifest.json"


class NotPublished(LookupError):
    """No manifest under the version's prefix: never published, or still being published."""


def publish(folder: Path, bucket: Bucket, key: str, manifest: dict[str, Any],
            on_progress: Callable[[float, str], None] = lambda *_: None) -> None:
    """Uploads the built version in `folder` to `bucket` under `key`: its files (multipart when big), then
    `manifest.json`, which makes it a version."""
    names = list(manifest["files"])
    for done, name in enumerate(names):
        on_progress(done / len(names), f"uploading {name}")
        if bucket.size(f"{key}/{name}") != manifest["files"][name]["bytes"]:
            bucket.upload_file(f"{key}/{name}", folder / name)
    bucket.upload_file(f"{key}/{MANIFEST}", folder / MANIFEST)


def _manifest_bytes(bucket: Bucket, key: str) -> bytes:
    try:
        return bucket.get(f"{key}/{MANIFEST}")
    except ObjectMissing:
        raise NotPublished(f"{bucket.describe(key)} is not a published version (no {MANIFEST}: never "
                           "published, or still being published)") from None


def pull(bucket: Bucket, key: str, media: ObjectMediaStore, target: Path) -> dict[str, Any]:
    """Downloads the version into `target` (which must not exist yet) and returns its manifest: the folder a
    trainer reads, images included (fetched from `media`, several requests in flight). It is filled beside
    `target` and renamed into place whole."""
    raw = _manifest_bytes(bucket, key)
    manifest = json.loads(raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".pulling-{target.name}-", dir=target.parent))
    try:
        for name in manifest["files"]:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            bucket.download(f"{key}/{name}", work / name)
        if IMAGE_LIST in manifest["files"]:
            folder = work / IMAGE_DIR
            folder.mkdir()
            names = [line.split("\t", 1)[0] for line in (work / IMAGE_LIST).read_text("ascii").splitlines()]
            in_flight(lambda name: media.copy_to(name.split(".", 1)[0], folder / name), names)
        (work / MANIFEST).write_bytes(raw)
        sync_filesystem(work)  # the images were written without an fsync each
        os.rename(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return manifest


def pull_url(url: str, media: ObjectMediaStore, target: Path) -> dict[str, Any]:
    """`pull` of the version at `s3://bucket/prefix/<version id>`."""
    parent, _, key = url.rstrip("/").rpartition("/")
    if not key or parent.endswith(":/"):
        raise ValueError(f"{url} names no version: write s3://bucket/prefix/<version id>")
    return pull(Bucket(parent), key, media, target)
