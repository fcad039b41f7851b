"""Thumbnails of stored images: made on first request, kept on disk beside the media store."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from app.storage import MediaStore, write_atomically

THUMBNAIL_SIZE = 256


def thumbnail(media: MediaStore, thumbs: Path, sha256: str) -> Path:
    """The JPEG thumbnail of the stored image `sha256`, made now if it is not on disk yet."""
    target = thumbs / sha256[:2] / f"{sha256}.jpg"
    if target.exists():
        return target
    with PILImage.open(media.path_for(sha256)) as picture:
        # JPEG draft mode decodes at a reduced scale: about twice as fast as a full decode.
        picture.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        picture = picture.convert("RGB")
        picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=80)
    write_atomically(target, out.getvalue())
    return target
