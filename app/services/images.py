"""Images: bytes in the media store, a row with what their header says."""

from __future__ import annotations

import io

from PIL import Image as PILImage
from sqlmodel import Session, select

from app.core.storage import Media
from app.models import Image


def add_image(session: Session, store: Media, data: bytes) -> Image:
    """The Image row for these bytes, stored once however often they are added. Flushes, does not commit."""
    with PILImage.open(io.BytesIO(data)) as picture:  # header only: no full decode
        width, height, fmt = picture.width, picture.height, (picture.format or "unknown").lower()
    digest = store.put(data)
    existing = session.exec(select(Image).where(Image.sha256 == digest)).first()
    if existing is not None:
        return existing
    image = Image(sha256=digest, width=width, height=height, format=fmt, bytes=len(data))
    session.add(image)
    session.flush()
    return image
