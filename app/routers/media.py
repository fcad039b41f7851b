"""Stored images and their thumbnails. Content-addressed, so cacheable for good."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from app.deps import ANY_ROLE, SessionDep
from app.failures import NotFound
from app.services.instances import get_image
from app.storage import MediaStore
from app.thumbnails import thumbnail

router = APIRouter(prefix="/media", tags=["pages"], include_in_schema=False, dependencies=[ANY_ROLE])

# The bytes behind a digest never change; `private` because only signed-in users may see them.
CACHE_FOREVER = {"Cache-Control": "private, max-age=31536000, immutable"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
               "bmp": "image/bmp", "tiff": "image/tiff"}


def _known_image(session, sha256: str):
    if not _SHA256.match(sha256):
        raise NotFound("There is no such image.")
    return get_image(session, sha256=sha256)


@router.get("/{sha256}")
def image(request: Request, session: SessionDep, sha256: str):
    stored = _known_image(session, sha256)
    path = MediaStore(request.app.state.settings.media_dir).path_for(stored.sha256)
    return FileResponse(path, media_type=MEDIA_TYPES.get(stored.format, "application/octet-stream"),
                        headers={**CACHE_FOREVER, "ETag": f'"{stored.sha256}"'})


@router.get("/{sha256}/thumb")
async def image_thumbnail(request: Request, session: SessionDep, sha256: str):
    stored = await run_in_threadpool(_known_image, session, sha256)
    settings = request.app.state.settings
    path = await run_in_threadpool(thumbnail, MediaStore(settings.media_dir), settings.thumbnail_dir, stored.sha256)
    return FileResponse(path, media_type="image/jpeg", headers={**CACHE_FOREVER, "ETag": f'"{stored.sha256}-t"'})
