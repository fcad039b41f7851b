"""Thumbnails of stored images: made on first request and kept on local disk; with the media in a bucket,
also put beside the image (`thumbs/`), so the other web processes fetch one instead of decoding the image."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from app.core.objectstore import ObjectMissing
from app.core.storage import MediaStore, ObjectMediaStore, thumbnail_key, write_atomically

THUMBNAIL_SIZE = 256


def thumbnail(media: MediaStore | ObjectMediaStore, thumbs: Path, sha256: str) -> Path:
    """The JPEG thumbnail of the stored image `sha256` on local disk, made now if it is not there yet."""
    target = thumbs / sha256[:2] / f"{sha256}.jpg"
    if target.exists():
        return target
    if isinstance(media, ObjectMediaStore):
        try:
            data = media.bucket.get(thumbnail_key(sha256))
        except ObjectMissing:
            data = _made(media.open(sha256))
            media.bucket.put_once(thumbnail_key(sha256), data, content_type="image/jpeg")
    else:
        with media.open(sha256) as source:
            data = _made(source)
    write_atomically(target, data)
    return target


def _made(source) -> bytes:
    with PILImage.open(source) as picture:
        # JPEG draft mode decodes at a reduced scale: about twice as fast as a full decode.
        picture.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        rgb = picture.convert("RGB")
        rgb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        out = io.BytesIO()
        rgb.save(out, format="JPEG", quality=80)
    return out.getvalue()
