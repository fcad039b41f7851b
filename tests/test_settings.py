"""Settings are documented in code and in the README, and insecure production settings are refused."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from app.core.config import InsecureSettings, Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_a_description_and_a_readme_row():
    rows = set(re.findall(r"^\| `(STUDIO_[A-Z0-9_]+)` \|", README.read_text(), flags=re.MULTILINE))
    names = {f"STUDIO_{name.upper()}" for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, f"{name} has no description"
    assert names - rows == set(), "settings missing from the README table"
    assert rows - names == set(), "README documents settings that do not exist"


def test_production_refuses_to_start_without_a_strong_secret_key(tmp_path):
    with pytest.raises(InsecureSettings, match="STUDIO_SECRET_KEY"):
        Settings(mode="production", data_dir=tmp_path, _env_file=None)
    with pytest.raises(InsecureSettings):
        Settings(mode="production", secret_key="short", data_dir=tmp_path, _env_file=None)
    settings = Settings(mode="production", secret_key="k" * 40, data_dir=tmp_path, _env_file=None)
    assert settings.secure_cookies and settings.signing_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_dev_generates_one_secret_key_kept_private_and_reused(tmp_path):
    first = Settings(mode="dev", data_dir=tmp_path, _env_file=None).signing_key
    again = Settings(mode="dev", data_dir=tmp_path, _env_file=None).signing_key
    assert first == again and len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600
    assert first not in repr(Settings(mode="dev", data_dir=tmp_path, secret_key=first, _env_file=None))


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_PAGE_SIZE", "7")
    settings = Settings(_env_file=None)
    assert settings.page_size == 7
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'studio.db'}"


def test_web_threads_bounds_the_requests_a_process_works_on_and_templates_are_read_once(tmp_path):
    import anyio.to_thread
    from starlette.testclient import TestClient

    from app.main import create_app
    from app.web.templating import templates

    app = create_app(Settings(mode="test", data_dir=tmp_path, web_threads=3, _env_file=None))
    with TestClient(app) as client:
        assert client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens) == 3
    assert templates.env.auto_reload is False  # no file check per template per request

    try:
        create_app(Settings(mode="test", data_dir=tmp_path, reload_templates=True, _env_file=None))
        assert templates.env.auto_reload is True
    finally:
        templates.env.auto_reload = False  # the environment is the process's: leave it as the other tests expect
