"""Fixtures: every database test runs twice, on a fresh SQLite file and in a fresh PostgreSQL schema.

PostgreSQL comes from STUDIO_TEST_DATABASE_URL (default: the local server, database `test`). When it
cannot be reached the PostgreSQL half is skipped with the reason, except on CI (CI=true), where that is
a failure."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.config import Settings
from app.main import create_app
from app.models import metadata
from tests.scratch import scratch_database

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ON_CI = os.environ.get("CI", "").lower() == "true"


def pg_base_url() -> str:
    return os.environ.get("STUDIO_TEST_DATABASE_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def postgres_available() -> str:
    url = pg_base_url()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:  # noqa: BLE001 - any failure to connect means the same thing here
        message = f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is not reachable: {error}"
        if ON_CI:
            pytest.fail(message + " (CI=true: a missing database is a failure)")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new schema on PostgreSQL dropped afterwards."""
    base = request.getfixturevalue("postgres_available") if request.param == "postgresql" else None
    with scratch_database(base, tmp_path, prefix="t") as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, page_size=3,
                    login_max_failures=3, _env_file=None)


@pytest.fixture
def app(settings: Settings):
    application = create_app(settings)
    metadata.create_all(application.state.engine)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def db(app) -> Iterator[Session]:
    with Session(app.state.engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def live_server(app):
    """The test's app on a free port, served by uvicorn in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The tiny random LLaVA (worker/tiny_model.py), built once per test session; skips without torch."""
    torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")
    from worker.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llava")
