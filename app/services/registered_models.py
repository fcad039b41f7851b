"""Registered models: local folders the worker loads (the web process never does: it has no torch)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Invalid, NotFound
from app.models import DatasetVersion, Job, RegisteredModel
from app.schemas import model_families
from app.services import audit

DTYPES = ("float32", "bfloat16", "float16")


def register(session: Session, *, name: str, path: str, dtype: str = "float32", device: str = "auto",
             actor_id: int | None, source_job_id: int | None = None, version_id: int | None = None,
             base_model_id: int | None = None) -> RegisteredModel:
    """A model by its local folder; a fine-tune also says where it comes from (its job, version and base)."""
    name, path = name.strip(), path.strip()
    if not name or not path:
        raise Invalid("A model needs a name and a local path.", fields={"name" if not name else "path": "required"})
    if dtype not in DTYPES:
        raise Invalid(f"The dtype is one of {', '.join(DTYPES)}.", fields={"dtype": "unknown"})
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:") and device[5:].isdigit()):
        raise Invalid("The device is auto, cpu, cuda or cuda:N.", fields={"device": "unknown"})
    if session.exec(select(RegisteredModel.id).where(RegisteredModel.name == name)).first() is not None:
        raise Invalid(f"There is already a model called {name!r}.", fields={"name": "taken"})
    limits.at_most(name, limits.NAME, field="name")
    limits.at_most(path, 500, field="path")
    try:  # where the web can read the folder; the worker checks again when it loads the model
        model_families.family_of(Path(path))
    except model_families.UnsupportedFamily as refused:
        raise Invalid(str(refused), fields={"path": "a family the worker does not know"}) from None
    model = RegisteredModel(name=name, path=path, dtype=dtype, device=device, created_by_id=actor_id,
                            source_job_id=source_job_id, version_id=version_id, base_model_id=base_model_id)
    session.add(model)
    session.flush()
    audit.record(session, actor_id=actor_id, action="model.register", entity_type="registered_model",
                 entity_id=model.id, after={"name": model.name, "path": model.path, "dtype": dtype, "device": device})
    session.commit()
    return model


def list_models(session: Session) -> list[RegisteredModel]:
    return list(session.exec(select(RegisteredModel).order_by(RegisteredModel.name)))


def get(session: Session, *, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"There is no registered model with id {model_id}.")
    return model


def made_by_job(session: Session, *, job_id: int) -> RegisteredModel | None:
    """The model a fine-tune job registered, if it got that far (a retried job registers it once)."""
    return session.exec(select(RegisteredModel).where(RegisteredModel.source_job_id == job_id)).first()


def provenance(session: Session, *, model: RegisteredModel) -> dict:
    """Where a fine-tuned model comes from; all None for a model registered by hand (or whose sources are gone)."""
    return {"source_job": session.get(Job, model.source_job_id) if model.source_job_id else None,
            "version": session.get(DatasetVersion, model.version_id) if model.version_id else None,
            "base_model": session.get(RegisteredModel, model.base_model_id) if model.base_model_id else None}
