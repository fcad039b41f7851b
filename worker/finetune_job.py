"""The `finetune` job: the two-stage recipe on a ready dataset version, its loss reported step by step (the
browser draws it live), the result registered as a model that previews can use. A retried job resumes from
its last checkpoint; the losses logged after that checkpoint are dropped and logged again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, select

from app.config import Settings
from app.db import make_engine
from app.models import DatasetVersion, JobMetric, RegisteredModel, VersionStatus, utcnow
from app.services import models as model_service
from app.services.versions import folder_of
from worker.context import JobContext
from worker.evaluate import evaluate
from worker.finetune import STAGES, FinetuneConfig, main, saved_step


def run_finetune(settings: Settings, context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            version = session.get(DatasetVersion, payload["version_id"])
            base = session.get(RegisteredModel, payload["base_model_id"])
            if version is None or version.status != VersionStatus.ready or base is None:
                raise ValueError("the dataset version must be ready and the base model registered")
            version_folder, version_name = folder_of(settings, version), version.name
            base_path, base_name, device = base.path, base.name, base.device
        out = settings.data_dir / "finetunes" / f"job-{context.job_id}"
        config = FinetuneConfig(version=version_folder, base=base_path, out=out, device=device,
                                stage1_lr=payload.get("stage1_lr", 2e-5), stage2_lr=payload.get("stage2_lr", 1e-5),
                                stage2_steps=payload.get("stage2_steps", 128), max_steps=payload.get("max_steps"),
                                save_every=payload.get("save_every", 50), seed=payload.get("seed", 0),
                                lora=bool(payload.get("lora", False)), lora_rank=payload.get("lora_rank", 8))
        with engine.begin() as connection:
            for stage in STAGES:
                connection.execute(delete(JobMetric).where(JobMetric.job_id == context.job_id,
                                                           JobMetric.stage == stage,
                                                           JobMetric.step > saved_step(out, stage)))
        losses: list[float] = []

        def on_loss(stage: str, step: int, loss: float) -> None:
            losses.append(loss)
            with engine.begin() as connection:
                connection.execute(insert(JobMetric), [{"job_id": context.job_id, "stage": stage, "step": step,
                                                        "loss": loss, "created_at": utcnow()}])
            context.progress(0.5 if stage == "stage2" else 0.05, f"{stage} step {step}: loss {loss:.4f}")

        limit = payload.get("eval_size", 200)
        with Session(engine) as session:
            context.progress(0.02, "scoring the base model on the validation split", force=True)
            before = evaluate(session, model_path=base_path, device=device, version_folder=version_folder,
                              limit=limit)
        final = main(config, on_loss=on_loss)
        name = f"{base_name}+{version_name} (job {context.job_id})"[:120]
        with Session(engine) as session:
            context.progress(0.97, "scoring the fine-tuned model on the validation split", force=True)
            after = evaluate(session, model_path=str(final), device=device, version_folder=version_folder,
                             limit=limit)
            model = session.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first() \
                or model_service.register(session, name=name, path=str(final), device=device, actor_id=None)
            evaluation = {task: {"total": before[task]["total"], "before": before[task]["matched"],
                                 "after": after.get(task, {}).get("matched", 0)} for task in before}
            return {"model_id": model.id, "model": model.name, "path": str(final), "steps": len(losses),
                    "evaluation": evaluation}
    finally:
        engine.dispose()
