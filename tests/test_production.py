"""The production files, checked without a Docker engine: the compose file's shape, its settings against
the studio's, and the images against what the code imports."""

from __future__ import annotations

import ast
import re
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = {f"STUDIO_{name.upper()}" for name in Settings.model_fields}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_starts_the_database_and_object_storage_then_the_migration_then_web_and_worker():
    services = _compose()["services"]
    assert set(services) == {"db", "minio", "bucket", "migrate", "web", "worker"}
    assert services["db"]["healthcheck"]["test"] and services["db"]["volumes"]
    assert services["minio"]["image"].startswith("minio/minio:RELEASE.")  # pinned, never :latest
    assert services["bucket"]["image"].startswith("minio/mc:RELEASE.")
    assert services["minio"]["healthcheck"]["test"] and services["minio"]["volumes"]
    assert services["bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert "mc mb --ignore-existing studio/studio" in services["bucket"]["command"][0]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"},
                                                 "bucket": {"condition": "service_completed_successfully"}}
    environment = _compose()["x-studio-env"]
    assert environment["STUDIO_MEDIA_URL"].endswith(":-s3://studio/media}")
    assert environment["STUDIO_EXPORTS_URL"].endswith(":-s3://studio/versions}")
    assert "http://minio:9000" in environment["AWS_ENDPOINT_URL"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"].startswith("${MINIO_ROOT_PASSWORD:?")  # no default
    assert services["migrate"]["command"] == ["python", "-m", "app", "migrate"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["web"]["build"]["dockerfile"] == "Dockerfile.web"
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile.worker"
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "/models:ro" in " ".join(services["worker"]["volumes"])
    assert int(services["web"]["environment"]["STUDIO_WEB_WORKERS"].split(":-")[1].rstrip("}")) > 1


def test_every_setting_is_in_env_example_and_every_studio_name_is_a_setting():
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert example >= SETTING_NAMES, f"missing from .env.example: {sorted(SETTING_NAMES - example)}"
    named = set(re.findall(r"\bSTUDIO_[A-Z_]+\b", (ROOT / "docker-compose.yml").read_text())) | \
        {name for name in example if name.startswith("STUDIO_")}
    assert named <= SETTING_NAMES, f"not settings: {sorted(named - SETTING_NAMES)}"


def _pins(name: str) -> set[str]:
    found = set()
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith("-r "):
            found |= _pins(line[3:].strip())
        elif "==" in line:
            found.add(re.sub(r"[-_.]+", "-", line.split("==")[0]).lower())
    return found


def _third_party_imports(folder: str) -> set[str]:
    local = {"app", "worker", "tests", "bench"}
    modules = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    import sys

    return {module for module in modules - local if module not in sys.stdlib_module_names}


def test_each_image_installs_what_its_code_imports():
    distributions = packages_distributions()
    for folder, requirements, dockerfile in (("app", "requirements.txt", "Dockerfile.web"),
                                             ("worker", "requirements-worker.txt", "Dockerfile.worker")):
        pins = _pins(requirements)
        for module in _third_party_imports(folder):
            names = {re.sub(r"[-_.]+", "-", dist).lower() for dist in distributions.get(module, [])}
            assert names & pins, f"{folder} imports {module}, which {requirements} does not install"
        assert f"pip install -r {requirements}" in (ROOT / dockerfile).read_text()
    web = (ROOT / "Dockerfile.web").read_text()
    assert "requirements-worker" not in web and "torch" not in _pins("requirements.txt")
    assert {"torch", "transformers", "peft"} <= _pins("requirements-worker.txt")
