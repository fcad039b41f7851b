"""The web app. `create_app(settings)` builds it; uvicorn serves the module-level `app` (built lazily)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import __version__
from app.core.config import Settings
from app.core.db import make_engine
from app.core.logs import escape_control_characters
from app.routers import (
    account,
    api,
    api_bulk_fixes,
    api_instances,
    api_instructions,
    api_pools,
    api_review,
    api_scores,
    api_synthesis,
    api_versions,
    auth,
    bulk_fixes,
    checks,
    dashboard,
    datasets,
    docs,
    imports,
    instances,
    instructions,
    jobs,
    media,
    pools,
    registered_models,
    review,
    synthesis,
    tasks,
    users,
    versions,
)
from app.web.body_limit import BodyLimit
from app.web.errors import install_error_handlers
from app.web.headers import SecurityHeaders, ServerTiming
from app.web.templating import templates

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SESSION_COOKIE = "studio_session"


class Studio(FastAPI):
    """FastAPI, with the headers every response carries added outside Starlette's ServerErrorMiddleware: that one
    is always outermost of the stack `add_middleware` builds, so a 500 it sends would otherwise leave without
    the security headers and Server-Timing."""

    def build_middleware_stack(self):
        return ServerTiming(SecurityHeaders(super().build_middleware_stack(),  # timing outermost: times it all
                                            hsts=self.state.settings.mode == "production"))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    escape_control_characters()

    @asynccontextmanager
    async def lifespan(_app) -> AsyncIterator[None]:
        # Sync routes and dependencies run on anyio's worker threads: as many at once as web_threads allows.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        yield

    templates.env.auto_reload = settings.reload_templates
    app = Studio(
        lifespan=lifespan,
        title="Flan Studio",
        version=__version__,
        description="Build Vision-Flan-style visual instruction-tuning datasets. The JSON API lives under "
        "`/api/v1`; authenticate with `Authorization: Bearer <token>` (make one on your account page).",
        docs_url=None,  # served by routers/docs.py, which declares its access like every route
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.resolved_database_url)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.signing_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(BodyLimit)
    if settings.trusted_proxies.strip():  # who a request comes from, for the sign-in throttle and the logs
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    install_error_handlers(app)
    for module in (auth, dashboard, tasks, instances, bulk_fixes, instructions, media, datasets, pools, synthesis,
                   imports, jobs, users, account, review, checks, versions, registered_models, api, api_review,
                   api_scores, api_versions, api_instructions, api_instances, api_bulk_fixes, api_pools, api_synthesis,
                   docs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def __getattr__(name: str):
    # `uvicorn app.main:app` builds the app from the environment on first access, not at import time,
    # so that tests and the CLI can import this module without settings or a database.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
