"""Fixtures: every database test runs twice, on a fresh SQLite file and in a fresh PostgreSQL schema.

PostgreSQL comes from STUDIO_TEST_DATABASE_URL (default: the local server, database `test`). When it
cannot be reached the PostgreSQL half is skipped with the reason, except on CI (CI=true), where that is
a failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.core.config import Settings
from app.main import create_app
from app.models import metadata
from tests.schema_pool import PREPARED, SchemaPool
from tests.scratch import scratch_database
from tests.serving import serving

ROOT = Path(__file__).resolve().parent.parent
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


@pytest.fixture(scope="session")
def schema_pool(postgres_available: str) -> Iterator[SchemaPool]:
    """This test process's PostgreSQL schemas with the studio's tables, emptied between tests."""
    schemas = SchemaPool(postgres_available)
    yield schemas
    schemas.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """A database: a new SQLite file, or on PostgreSQL an empty schema of the process's pool when the test's tables
    come from the models (the `app` fixture), else a new empty schema dropped afterwards."""
    if request.param == "postgresql" and "app" in request.fixturenames:
        schemas = request.getfixturevalue("schema_pool")
        url = schemas.take()
        try:
            yield url
        finally:
            schemas.give_back(url)
        return
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
    if settings.database_url not in PREPARED:  # a pooled schema has its tables already
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
    with serving(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The tiny random LLaVA (worker/tiny_model.py), built once per test session; skips without torch."""
    torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")
    from worker.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llava")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server for this test process (moto, tests/s3server.py), and the AWS variables that point
    the studio's client at it, set as a deployment sets them (subprocesses the tests start inherit them)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.s3server", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    endpoint = f"http://127.0.0.1:{port}"
    variables = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "studio-test",
                 "AWS_SECRET_ACCESS_KEY": "studio-test-secret", "AWS_REGION": "us-east-1"}
    saved = {name: os.environ.get(name) for name in variables}
    try:
        assert server.stdout.readline().strip() == "ready", "the S3 test server did not start"
        os.environ.update(variables)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A new, empty bucket of the test's own: `s3://studio-<random>`."""
    from app.core.objectstore import Bucket

    name = f"studio-{uuid.uuid4().hex[:16]}"
    Bucket(f"s3://{name}").client.create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture
def s3_settings(database_url: str, tmp_path: Path, bucket: str) -> Settings:
    """The test settings with media and versions in the test's bucket."""
    return Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, page_size=3,
                    login_max_failures=3, media_url=f"{bucket}/media", exports_url=f"{bucket}/versions",
                    _env_file=None)


@pytest.fixture
def s3_environment(s3_settings, monkeypatch) -> Settings:
    """`s3_settings` in the environment too, as a worker machine has them: for the command line and the
    processes the tests start."""
    for name, value in (("STUDIO_MEDIA_URL", s3_settings.media_url), ("STUDIO_EXPORTS_URL", s3_settings.exports_url),
                        ("STUDIO_DATA_DIR", str(s3_settings.data_dir)),
                        ("STUDIO_DATABASE_URL", s3_settings.database_url)):
        monkeypatch.setenv(name, value)
    return s3_settings


@pytest.fixture
def load_offline(monkeypatch, tmp_path):
    """Hugging Face `datasets.load_dataset` on local files only (nothing may be downloaded), cached in tmp_path."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    from datasets import load_dataset

    return lambda *args, **kwargs: load_dataset(*args, cache_dir=str(tmp_path / "cache"), **kwargs)
