"""The OpenAPI schema and its browsable page, served from vendored assets (works offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse

from app.deps import PUBLIC

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])
SWAGGER_VERSION = "5.35.0"


@router.get("/openapi.json")
def openapi_schema(request: Request):
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def api_docs():
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Flan Studio API",
        swagger_js_url=f"/static/vendor/swagger-ui-{SWAGGER_VERSION}-bundle.js",
        swagger_css_url=f"/static/vendor/swagger-ui-{SWAGGER_VERSION}.css",
        swagger_favicon_url="/static/favicon.svg",
    )
