"""The demo's model half: a ready dataset version (the accepted shapes task, the demo's pool as stage 2, in LLaVA's
layout and as a Hugging Face dataset) and the tiny random LLaVA registered as a model, so that a newcomer can
preview a task and start a fine-tune in the browser right after `make run`.

The web side never imports torch: the tiny model is built by `python -m worker tiny-model` in a child process
(seconds). Without the worker's dependencies the demo says so and goes on without a model. Each step is done
once; running the demo again changes nothing."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from app.core.config import Settings
from app.demo.workspace import POOL
from app.models import ConversationPool, DatasetVersion, RegisteredModel, Task
from app.schemas.export_spec import ExportSpec
from app.services import registered_models as model_service
from app.services import versions as version_service

VERSION = "demo-shapes"
MODEL = "tiny-llava (random weights)"
VERSION_TASK = "SHAPES+shape_classification"  # the demo task that has been through review (accepted)


@dataclass(frozen=True)
class ModelHalf:
    version: DatasetVersion | None
    model: RegisteredModel | None
    note: str | None  # why something is missing


def add_version(settings: Settings, session: Session) -> DatasetVersion | None:
    """A ready version of the accepted shapes task with the demo pool as stage 2."""
    version = session.exec(select(DatasetVersion).where(DatasetVersion.name == VERSION)).first()
    if version is None:
        task = session.exec(select(Task).where(Task.name == VERSION_TASK)).first()
        pool = session.exec(select(ConversationPool).where(ConversationPool.name == POOL)).first()
        if task is None or pool is None:
            return None
        # Also as a Hugging Face dataset (hf/), so that a newcomer sees the layout TRL takes beside LLaVA's.
        spec = ExportSpec(task_ids=[task.id], validation_ratio=0.25, conversation_pool_id=pool.id, stage2_size=16,
                          layouts=["hf"])
        version = version_service.create(session, spec=spec, name=VERSION, actor_id=None, enqueue=False)
    if version.status != "ready":
        version = version_service.run_build(settings, version_id=version.id)
    return version


def build_tiny_model(folder: Path) -> str | None:
    """Builds the tiny model in a child process (the worker's code and dependencies); None, or why it failed."""
    if (folder / "config.json").is_file():
        return None
    done = subprocess.run([sys.executable, "-m", "worker", "tiny-model", str(folder)], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the tiny model could not be built ({last}); install the worker's dependencies " \
               "(requirements-worker.txt) and run `python -m app demo` again"
    return None


def add_model(settings: Settings, session: Session) -> tuple[RegisteredModel | None, str | None]:
    model = session.exec(select(RegisteredModel).where(RegisteredModel.name == MODEL)).first()
    if model is not None:
        return model, None
    folder = settings.data_dir / "models" / "tiny-llava"
    if problem := build_tiny_model(folder):
        return None, problem
    return model_service.register(session, name=MODEL, path=str(folder.resolve()), dtype="float32", device="cpu",
                                  actor_id=None), None


def load_model_half(settings: Settings, session: Session) -> ModelHalf:
    version = add_version(settings, session)
    model, note = add_model(settings, session)
    return ModelHalf(version, model, note)
