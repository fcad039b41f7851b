"""Every error becomes a response here, in one place: a page, an htmx toast, or JSON under /api. The failures
themselves are in app/core/failures.py."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.failures import AppError
from app.core.objectstore import ObjectMissing, StorageUnavailable
from app.core.validation_words import in_words
from app.web.templating import is_htmx, render

log = logging.getLogger("studio.errors")


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, code: str, message: str, *,
                   fields: dict[str, str] | None = None, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    if is_api(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if fields:
            body["error"]["fields"] = fields
        if status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        return JSONResponse(body, status_code=status, headers=headers)
    if status == 401:
        login = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if is_htmx(request):
            return Response(status_code=401, headers={**headers, "HX-Redirect": login})
        return RedirectResponse(login, status_code=303, headers=headers)

    context = {"status": status, "code": code, "message": message, "fields": fields or {}}
    if is_htmx(request):
        # Swapped into the page's toast area whatever the request's target was.
        headers.update({"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"})
        return render(request, "_toast.html", status_code=status, headers=headers, **context)
    return render(request, "error.html", status_code=status, headers=headers, **context)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return error_response(request, exc.status_code, exc.code, exc.message, fields=exc.fields,
                              headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "Nothing here: check the address.", 405: "That method is not allowed here."}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = messages.get(exc.status_code) or str(exc.detail)
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = {}
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
            fields[where or "request"] = in_words(error)
        summary = "; ".join(f"{name}: {msg}" for name, msg in fields.items())
        return error_response(request, 422, "invalid", f"Some input is not valid ({summary}).", fields=fields)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # Inputs are bounded where they are declared; this catches what slips through (PostgreSQL refuses
        # NUL characters in text, and integers beyond its column types).
        log.warning("value the database cannot hold on %s %s: %s", request.method, request.url.path,
                    type(exc).__name__)
        return error_response(request, 422, "invalid", "A value cannot be stored: numbers must fit in 32 bits "
                                                       "and text cannot contain NUL characters.")

    @app.exception_handler(OperationalError)
    async def _database_unreachable(request: Request, exc: OperationalError) -> Response:
        # The database restarted or dropped the connection under this request: the pool has already
        # thrown the connection away (and pings before reuse), so trying again in a moment works.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__)
        return error_response(request, 503, "database_unavailable",
                              "The database is not reachable right now: try again in a moment.",
                              headers={"Retry-After": "2"})

    @app.exception_handler(ObjectMissing)
    async def _object_missing(request: Request, exc: ObjectMissing) -> Response:
        log.error("missing from object storage on %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 404, "object_missing", f"The stored file is missing: {exc}.")

    @app.exception_handler(StorageUnavailable)
    async def _storage_unreachable(request: Request, exc: StorageUnavailable) -> Response:
        log.warning("object storage unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 503, "storage_unavailable",
                              "The object storage is not reachable right now: try again in a moment.",
                              headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error",
                              "Something went wrong on our side; it has been logged.")
