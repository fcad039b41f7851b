"""What the studio does and keeps: the audit log, jobs, model outputs, conversation pools, dataset versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field, one_of, optional_time_field


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class JobKind(StrEnum):
    """What a job does; the worker has one handler per kind (`worker/__main__.py`)."""

    import_ = "import"  # a dataset into tasks and instances
    lint = "lint"  # a draft instruction checked on every instance of a big task
    export = "export"  # a dataset version's files
    preview = "preview"  # a model's answers on a task's instances
    finetune = "finetune"  # the two-stage recipe
    score = "score"  # a model's loss on every instance of a task, for the doubt ranking
    bulk_fix = "bulk_fix"  # an accepted bulk fix applied to its instances, chunk by chunk
    score_pool = "score_pool"  # a model's loss on every answer of a stage-2 pool, to read the least likely first
    synthesize = "synthesize"  # new stage-2 conversations about a task's instances, from a model or an endpoint


class VersionStatus(StrEnum):
    building = "building"
    ready = "ready"
    failed = "failed"


class AuditEvent(SQLModel, table=True):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity_type_entity_id_at", "entity_type", "entity_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at_field()
    actor_id: int | None = Field(default=None, foreign_key="user.id", index=True, ondelete="SET NULL")
    action: str = Field(max_length=60, description="e.g. user.create, task.transition, review.decide")
    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=64)
    task_id: int | None = Field(default=None, index=True, description="The task it concerns, for the task's "
                                "history page. No foreign key: the log outlives what it describes.")
    before: dict[str, Any] | None = json_field()
    after: dict[str, Any] | None = json_field()


class Job(SQLModel, table=True):
    __table_args__ = (
        one_of("status", JobStatus),
        one_of("kind", JobKind, name="kind"),
        Index("ix_job_status_lease_expires_at", "status", "lease_expires_at"),  # claim and requeue
        Index("ix_job_kind_id", "kind", "id"),  # the Jobs page, newest first, by kind
        Index("ix_job_created_by_id_id", "created_by_id", "id"),  # ... and by who started them
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, description="A JobKind: preview, finetune, export, import, ...")
    payload: dict[str, Any] = json_field(nullable=False, default_factory=dict)
    status: str = Field(default=JobStatus.queued, max_length=20)
    priority: int = Field(default=0)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=3)
    lease_owner: str | None = Field(default=None, max_length=120, description="host:pid of the worker.")
    lease_expires_at: datetime | None = optional_time_field()
    heartbeat_at: datetime | None = optional_time_field()
    cancel_requested: bool = Field(default=False)
    progress: float = Field(default=0.0, description="0..1")
    progress_message: str | None = Field(default=None, max_length=500)
    result: dict[str, Any] | None = json_field()
    error: str | None = Field(default=None, sa_type=Text)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    started_at: datetime | None = optional_time_field()
    finished_at: datetime | None = optional_time_field()


class JobMetric(SQLModel, table=True):
    """What a job reports step by step while it runs (a fine-tune's loss, learning rate and throughput), for its
    live chart."""

    __tablename__ = "job_metric"
    __table_args__ = (Index("ix_job_metric_job_id_id", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE")
    stage: str = Field(max_length=20)
    step: int
    loss: float
    lr: float | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    created_at: datetime = created_at_field()


class RegisteredModel(SQLModel, table=True):
    """A vision-language model the worker can load: a local folder saved with `save_pretrained`."""

    __tablename__ = "registered_model"
    __table_args__ = (one_of("dtype", ("float32", "bfloat16", "float16")),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    path: str = Field(max_length=500, description="On the worker's machine; nothing is downloaded.")
    dtype: str = Field(default="float32", max_length=10)
    device: str = Field(default="auto", max_length=20, description="auto (CUDA when there is one), cpu, cuda, cuda:1")
    # Where a fine-tuned model comes from (all None for a model registered by hand).
    source_job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    version_id: int | None = Field(default=None, foreign_key="dataset_version.id", ondelete="SET NULL", index=True)
    base_model_id: int | None = Field(default=None, foreign_key="registered_model.id", ondelete="SET NULL")
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()


class ModelOutput(SQLModel, table=True):
    __tablename__ = "model_output"
    __table_args__ = (
        # A retried job rewrites its rows instead of duplicating them.
        UniqueConstraint("job_id", "instance_id", "instruction_version_id"),
        Index("ix_model_output_instance_id_instruction_version_id", "instance_id", "instruction_version_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    instance_id: int = Field(foreign_key="instance.id", ondelete="CASCADE")
    instruction_version_id: int = Field(foreign_key="instruction_version.id", ondelete="CASCADE")
    model_name: str = Field(max_length=200)
    output: str = Field(sa_type=Text)
    latency_ms: float | None = None
    created_at: datetime = created_at_field()


class ConversationPool(SQLModel, table=True):
    """Imported GPT-4-synthesized conversations (LLaVA-Instruct format) for stage 2."""

    __tablename__ = "conversation_pool"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    source: str | None = Field(default=None, max_length=500, description="The file it came from.")
    image_root: str | None = Field(default=None, max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()


class ConversationItem(SQLModel, table=True):
    __tablename__ = "conversation_item"
    __table_args__ = (
        # LLaVA-Instruct ids repeat (they are COCO image ids): the position in the file is the key.
        UniqueConstraint("pool_id", "position"),
        Index("ix_conversation_item_pool_id_rkey", "pool_id", "rkey"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(foreign_key="conversation_pool.id", ondelete="CASCADE")
    position: int
    source_id: str | None = Field(default=None, max_length=200)
    image_id: int | None = Field(default=None, foreign_key="image.id", ondelete="RESTRICT")
    conversations: list[dict[str, Any]] = json_field(nullable=False, default_factory=list)
    rkey: int
    lock_version: int = Field(default=1)  # bumped by each accepted fix (a revision), which is made against it
    # LLaVA-Instruct's three: conversation, detail, complex_reasoning (the file it came from, or the prompt that
    # wrote it); None when nobody said.
    kind: str | None = Field(default=None, max_length=40)
    # For a synthesized conversation: its generator, prompt version, sampling, context and when (synthesis/store.py).
    origin: dict[str, Any] | None = json_field()


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    __table_args__ = (one_of("status", VersionStatus),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    spec: dict[str, Any] = json_field(nullable=False, default_factory=dict)
    spec_hash: str = Field(max_length=64, index=True)
    content_hash: str | None = Field(default=None, max_length=64)
    status: str = Field(default=VersionStatus.building, max_length=20)
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    manifest: dict[str, Any] | None = json_field()
    error: str | None = Field(default=None, sa_type=Text)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    finished_at: datetime | None = optional_time_field()
    qc_override_reason: str | None = Field(
        default=None, sa_type=Text, description="An admin's reason for including tasks whose latest check failed "
        "(the dataset card states it); None when every task's checks stand.")
