"""The failures a user can act on, as exceptions; app/web/errors.py turns them into responses. No web imports here:
the CLI and the worker raise them too, and should not pay for loading FastAPI."""

from __future__ import annotations


class AppError(Exception):
    """A failure the user can act on. `message` is shown to them; `fields` names the inputs at fault."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Invalid(AppError):
    status_code = 422
    code = "invalid"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"
