"""Checking an image file before it enters the media store: what it is and whether it is whole (where it
is read from is app/ingest/image_sources.py)."""

from __future__ import annotations

import builtins
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
DEFAULT_MAX_BYTES = 50 << 20
DEFAULT_MAX_PIXELS = 50_000_000  # larger is a decompression bomb for our purposes (PIL warns at 89M)


class ImageRejected(ValueError):
    """The image cannot be imported; the message says why, for the report."""


@dataclass(frozen=True, slots=True)
class CheckedImage:
    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    data: builtins.bytes  # the field above is called bytes


def check_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> CheckedImage:
    """Checks an image file's bytes (read from its source, within the size limit). Cheap completeness
    checks (JPEG end marker, PNG IEND) instead of a full decode, which would cost ~5 ms an image; rarer
    formats are decoded in full."""
    if data[:256].lstrip().lower().startswith((b"<svg", b"<?xml", b"<!doctype svg")):
        raise ImageRejected("SVG/XML is not accepted (it can carry scripts)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as picture:
                fmt, (width, height) = picture.format or "", picture.size
                if fmt not in ACCEPTED_FORMATS:
                    raise ImageRejected(f"format {fmt or 'unknown'} is not accepted "
                                        f"({', '.join(sorted(ACCEPTED_FORMATS))} are)")
                if width * height > max_pixels:
                    raise ImageRejected(f"{width}x{height} pixels, more than the {max_pixels:,} allowed "
                                        "(decompression bomb?)")
                if fmt not in ("JPEG", "PNG"):
                    picture.load()
    except ImageRejected:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise ImageRejected(f"more than the {max_pixels:,} pixels allowed (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        kind = "truncated" if "truncated" in str(error).lower() else "damaged"
        raise ImageRejected(f"{kind} image, cannot be read ({error})") from None
    if fmt == "JPEG" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise ImageRejected("truncated JPEG (no end-of-image marker)")
    if fmt == "PNG" and b"IEND" not in data[-16:]:
        raise ImageRejected("truncated PNG (no IEND chunk)")
    return CheckedImage(hashlib.sha256(data).hexdigest(), width, height, fmt.lower(), len(data), data)
