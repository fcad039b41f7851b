"""The OpenAPI schema and its browsable page, served from vendored assets (works offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.web.deps import PUBLIC
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])
SWAGGER_VERSION = "5.35.0"


@router.get("/openapi.json")
def openapi_schema(request: Request):
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def api_docs(request: Request):
    return templates.TemplateResponse(request, "docs.html", {"swagger_version": SWAGGER_VERSION})
