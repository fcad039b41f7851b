"""Responses that send a stored file: from local disk, or streamed from object storage."""

from __future__ import annotations

from fastapi.responses import FileResponse, StreamingResponse

from app.services.version_files import VersionFile


def send_file(file: VersionFile, *, headers: dict[str, str] | None = None):
    filename = file.name.rsplit("/", 1)[-1]
    if file.path is not None:
        return FileResponse(file.path, filename=filename, headers=headers)
    return StreamingResponse(file.chunks, media_type="application/octet-stream", headers={
        **(headers or {}), "Content-Length": str(file.size),
        "Content-Disposition": f'attachment; filename="{filename}"'})
