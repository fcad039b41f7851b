"""Stored images and their thumbnails. Content-addressed, so cacheable for good.

With the media in a bucket, the app streams the bytes itself rather than sending the browser to a presigned
URL: the bucket needs no public endpoint, the CSP keeps `img-src 'self'`, every image is still behind the
route's access rule, and the browser's cache keeps working (a presigned URL changes on every page). Thumbnails,
most of what pages show, come from the web process's local copy after the first request."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from app.core.failures import NotFound
from app.core.storage import MediaStore, open_media
from app.core.thumbnails import thumbnail
from app.services.instances import get_image
from app.web.deps import ANY_ROLE, SessionDep, settings_of

router = APIRouter(prefix="/media", tags=["pages"], include_in_schema=False, dependencies=[ANY_ROLE])

# The bytes behind a digest never change; `private` because only signed-in users may see them.
CACHE_FOREVER = {"Cache-Control": "private, max-age=31536000, immutable"}
STREAM_CHUNK = 256 * 1024
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
    media = open_media(settings_of(request).media_location)
    media_type = MEDIA_TYPES.get(stored.format, "application/octet-stream")
    headers = {**CACHE_FOREVER, "ETag": f'"{stored.sha256}"'}
    if isinstance(media, MediaStore):
        return FileResponse(media.path_for(stored.sha256), media_type=media_type, headers=headers)
    return StreamingResponse(media.chunks(stored.sha256, STREAM_CHUNK), media_type=media_type,
                             headers={**headers, "Content-Length": str(stored.bytes)})


@router.get("/{sha256}/thumb")
async def image_thumbnail(request: Request, session: SessionDep, sha256: str):
    stored = await run_in_threadpool(_known_image, session, sha256)
    settings = settings_of(request)
    media = open_media(settings.media_location)
    path = await run_in_threadpool(thumbnail, media, settings.thumbnail_dir, stored.sha256)
    return FileResponse(path, media_type="image/jpeg", headers={**CACHE_FOREVER, "ETag": f'"{stored.sha256}-t"'})
