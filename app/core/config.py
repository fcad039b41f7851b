"""Settings: one typed place for every knob, read from the environment (prefix STUDIO_) or `.env`.

Every field has a description; a test checks that each one also has a row in the README's table.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.objectstore import Bucket, is_object_url


class Mode(StrEnum):
    dev = "dev"
    production = "production"
    test = "test"


class InsecureSettings(RuntimeError):
    """The settings would run production with a secret anyone can guess."""


MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_", env_file=".env", extra="ignore")

    mode: Mode = Field(
        Mode.dev,
        description="`dev` (a secret key is generated and kept under the data dir), `production` "
        "(a secret key must be given; secure cookies) or `test`.",
    )
    data_dir: Path = Field(
        Path("data"),
        description="Folder for the embedded SQLite database, the media store, exports and the dev secret key.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database, e.g. `postgresql+psycopg://user@host:5432/studio`. "
        "Default: an SQLite file `studio.db` in the data dir.",
    )
    secret_key: str | None = Field(
        None,
        description="Signs session cookies and CSRF tokens; at least 32 characters. Required in production; "
        "in dev it is generated once and stored in `<data dir>/secret_key`.",
        repr=False,
    )
    import_root: str | None = Field(
        None, description="Where browser-started imports may read files and images from (nothing outside it): a "
        "folder on the server, or `s3://bucket/prefix` on object storage (same credentials as the media). Default: "
        "`incoming` in the data dir.")
    media_url: str | None = Field(
        None, description="Where images and their thumbnails live: a folder, or `s3://bucket/prefix` on "
        "S3-compatible object storage (endpoint and credentials from `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, "
        "`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`). Default: `media` in the data dir.")
    exports_url: str | None = Field(
        None, description="Where dataset versions are published: a folder, or `s3://bucket/prefix` (same "
        "credentials as the media). Default: `exports` in the data dir.")
    version_cache_gb: float = Field(
        50, gt=0, description="Most disk, in GB, that a worker's copies of versions from object storage may use "
        "(`cache` in the data dir); the least recently used go first.")
    job_lease_s: int = Field(60, ge=5, description="How long a worker holds a job without a heartbeat before "
                             "another worker may take it over.")
    worker_poll_s: float = Field(0.25, gt=0, le=60, description="How often an idle worker looks for a job.")
    prompt_token_budget: int = Field(1472, ge=1, description="Lint warns when a rendered prompt is estimated "
                                     "longer than this many tokens (LLaVA-1.5: 2048 minus 576 image tokens).")
    tokenizer_path: Path | None = Field(
        None, description="A local `tokenizer.json` to count prompt tokens with (needs the `tokenizers` package); "
        "default: an estimate of 4 characters a token.")
    inline_lint_limit: int = Field(20_000, ge=0, description="Tasks with up to this many instances are linted "
                                   "in full while the author waits; larger ones as a job.")
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, description="Port the web server listens on.")
    web_workers: int = Field(1, ge=1, description="Number of web server processes (`serve`).")
    web_threads: int = Field(
        4, ge=1, le=256, description="Requests one web process works on at once; the others wait their turn. "
        "Python runs one thread at a time: with more threads than this, every request is sliced finer among the "
        "others and a cheap page waits behind the expensive ones; with fewer, a slow database call holds up the rest.")
    reload_templates: bool = Field(
        False, description="Re-read a page template when its file changes (development: `serve --reload` sets it). "
        "Off, a template is read once per process, which saves a file check per template per request.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level: debug, info, warning or error.")
    session_max_age_s: int = Field(
        14 * 24 * 3600, ge=60, description="How long a login lasts, in seconds."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins allowed from one address within the window before it is slowed down."
    )
    login_failure_window_s: int = Field(
        900, ge=1, description="Window, in seconds, over which failed logins from one address are counted."
    )
    trusted_proxies: str = Field(
        "127.0.0.1", description="Comma-separated addresses (or networks) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty: none, `*`: any (only behind a proxy that overwrites them).")
    page_size: int = Field(50, ge=1, le=500, description="Rows per page in lists (tasks, datasets, users).")
    review_lease_s: int = Field(600, ge=10, description="How long a reviewer holds a queue item before an "
                                "abandoned claim returns to the queue.")
    solve_test_size: int = Field(20, ge=1, le=1000, description="Instances in a blind solve test.")
    solve_test_pass: int = Field(18, ge=1, description="Matches a blind solve test needs to pass (of "
                                 "`solve_test_size`).")
    spot_check_max_error_rate: float = Field(0.1, gt=0, lt=1, description="A spot check passes when the upper "
                                             "bound of its error rate's Wilson interval is below this.")
    spot_check_expected_error_rate: float = Field(0.02, ge=0, lt=1, description="The error rate a spot check's "
                                                  "default size is planned for: big enough to pass at this rate.")
    verifier_may_be_reviewer: bool = Field(
        False, description="Whether the reviewer who approved a task's instruction may also be one of its two final "
        "verifiers. Off, the verification is independent of the review it checks.")
    corrections_self_accept: bool = Field(
        False, description="Whether whoever proposes a fix may accept it too (a small team's setting). Off, every fix "
        "waits for a second person; the dataset card says when it was on.")
    synthesis_endpoints: Path | None = Field(
        None, description="A YAML file naming the OpenAI-compatible endpoints (vLLM, OpenAI...) that synthesis may "
        "send images and text to: base URL, model, and where its key is (an environment variable or a file; never "
        "the key itself). Unset: nothing is sent anywhere; synthesis runs on registered models only.")

    @model_validator(mode="after")
    def _check_quality_defaults(self) -> Settings:
        if self.solve_test_pass > self.solve_test_size:
            raise ValueError("STUDIO_SOLVE_TEST_PASS cannot exceed STUDIO_SOLVE_TEST_SIZE")
        if self.spot_check_expected_error_rate >= self.spot_check_max_error_rate:
            raise ValueError("STUDIO_SPOT_CHECK_EXPECTED_ERROR_RATE must be under STUDIO_SPOT_CHECK_MAX_ERROR_RATE")
        return self

    @field_validator("synthesis_endpoints", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value  # `NAME=` in .env: not configured

    @field_validator("media_url", "exports_url", "import_root")
    @classmethod
    def _check_location(cls, value: str | None) -> str | None:
        if is_object_url(value):
            return Bucket(value).url  # refuses one that names no bucket, as every reader of it would
        if value and "://" in value:
            raise ValueError("write a folder or an s3://bucket/prefix URL")
        return (value.rstrip("/") or None) if value else None

    @model_validator(mode="after")
    def _versions_name_images_in_a_bucket(self) -> Settings:
        if is_object_url(self.exports_url) and not is_object_url(self.media_url):
            raise ValueError("STUDIO_EXPORTS_URL is on object storage but STUDIO_MEDIA_URL is not: a version on "
                             "object storage names its images in the media bucket, so put the media there too")
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.mode == Mode.production and (not self.secret_key or len(self.secret_key) < MIN_SECRET_KEY_LENGTH):
            raise InsecureSettings(
                f"STUDIO_SECRET_KEY must be set to at least {MIN_SECRET_KEY_LENGTH} random characters "
                "in production mode (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def media_location(self) -> str:
        """The media store, for `storage.open_media`: a folder or an s3:// URL."""
        return self.media_url or str(self.media_dir)

    @property
    def exports_location(self) -> str:
        return self.exports_url or str(self.export_dir)

    @property
    def version_cache_dir(self) -> Path:
        return self.data_dir / "cache" / "versions"

    @property
    def resolved_import_root(self) -> Path | str:
        """A folder, or an s3://bucket/prefix URL."""
        if is_object_url(self.import_root):
            return str(self.import_root)
        return Path(self.import_root) if self.import_root else self.data_dir / "incoming"

    @property
    def thumbnail_dir(self) -> Path:
        return self.data_dir / "thumbs"

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def secure_cookies(self) -> bool:
        return self.mode == Mode.production

    @cached_property
    def signing_key(self) -> str:
        """The secret key; in dev and test, one generated on first use and kept (0600) in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key
