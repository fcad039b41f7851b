"""What each kind of job is asked to do: one payload model per `JobKind`, built by whoever enqueues (`jobs.enqueue`
takes one, never a dict), read back by the worker's handler and by the pages that show the job (`read`).

A payload is stored as JSON on the job row and may wait in the queue across an upgrade: a field added later has
a default, and a field a newer studio no longer knows is ignored, so the jobs already queued still run."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from app.models import JobKind
from app.models.types import RowIdValue
from app.prompts.rendering import InstructionSpec
from app.schemas import FinetuneIn, PreviewIn
from app.schemas.stage2 import SynthesizeIn


class JobPayload(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: ClassVar[JobKind]

    def stored(self) -> dict[str, Any]:
        """As kept on the job row (an unset optional field is left out, as the queued jobs before it were)."""
        return self.model_dump(mode="json", exclude_none=True)


class ImportPayload(JobPayload):
    """An import request of its format, validated by `app.ingest.requests` (which owns the formats' fields) when
    the page enqueues it and again when the worker runs it; and who asked."""

    model_config = ConfigDict(extra="allow")
    kind = JobKind.import_
    format: str
    actor_id: int | None = None

    def request(self) -> dict[str, Any]:
        return self.model_dump(exclude={"actor_id"})


class LintPayload(JobPayload):
    """An instruction draft checked on every instance of a task too big to check during the request."""

    kind = JobKind.lint
    task_id: RowIdValue
    spec: InstructionSpec
    token_budget: int
    tokenizer_path: str | None = None
    skip_instance_ids: list[int] = Field(default_factory=list, description="Instances whose targets are hidden "
                                                                             "from whoever asked.")


class ExportPayload(JobPayload):
    kind = JobKind.export
    version_id: RowIdValue


class PreviewPayload(PreviewIn, JobPayload):
    """A preview as asked for, with the task and the instruction version it resolved to."""

    kind = JobKind.preview
    task_id: RowIdValue
    instruction_version_id: RowIdValue  # resolved when queued: the newest approved, unless one was named


class ScorePayload(JobPayload):
    kind = JobKind.score
    task_id: RowIdValue
    model_id: RowIdValue
    instruction_version_id: RowIdValue
    batch_size: int = Field(8, ge=1, le=256)


class ScorePoolPayload(JobPayload):
    """A model's loss on every answer of a stage-2 pool."""

    kind = JobKind.score_pool
    pool_id: RowIdValue
    model_id: RowIdValue
    batch_size: int = Field(8, ge=1, le=256)


class FinetunePayload(FinetuneIn, JobPayload):
    kind = JobKind.finetune
    version_id: RowIdValue


class BulkFixPayload(JobPayload):
    """An accepted bulk fix to apply (or to go on applying, from where its last run stopped)."""

    kind = JobKind.bulk_fix
    bulk_fix_id: RowIdValue


class SynthesizePayload(SynthesizeIn, JobPayload):
    """New conversations about a task's seeded instances, into a synthesized pool, from a registered model or an
    endpoint the admin configured. The endpoint is named, never described: its address and key stay in the
    settings, out of the job's payload."""

    kind = JobKind.synthesize
    pool_id: RowIdValue
    prompt_id: RowIdValue  # resolved when queued: the kind's newest approved version, unless one was named
    actor_id: int | None = None
    endpoint_host: str | None = None  # what the job's page names while it waits (the worker reads the settings)
    endpoint_model: str | None = None


PAYLOADS: dict[JobKind, type[JobPayload]] = {payload.kind: payload for payload in (
    ImportPayload, LintPayload, ExportPayload, PreviewPayload, ScorePayload, FinetunePayload, BulkFixPayload,
    SynthesizePayload, ScorePoolPayload)}


def read(kind: str, stored: dict[str, Any]) -> JobPayload:
    """A job's payload as its kind's model (pydantic's ValidationError when it is not one)."""
    return PAYLOADS[JobKind(kind)].model_validate(stored)


class JobResult(BaseModel):
    """What a job records when it ends, as the pages read it; results written before a field existed still read,
    and fields a later studio adds are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class FinetuneResult(JobResult):
    """What a fine-tune job records: its plan and launch while it runs, then the model it registered and the
    validation scores before and after (results written before a field existed still read)."""

    launch: dict[str, Any] = Field(default_factory=dict, description="config, processes, reason")
    plan: list[dict[str, Any]] = Field(default_factory=list, description="Per stage: steps, batch, skipped...")
    precision: str | None = None
    device: str | None = None
    processes: int | None = None
    model_id: int | None = None
    model: str | None = None
    path: str | None = None
    evaluation: dict[str, Any] = Field(default_factory=dict, description="compare(): per task, before and after.")

    @property
    def steps_per_stage(self) -> dict[str, int]:
        return {stage["stage"]: stage["steps"] for stage in self.plan}


class PreviewResult(JobResult):
    outputs: int = 0
    model: str = ""
    device: str = ""
    seconds: dict[str, float] = Field(default_factory=dict, description="Per phase: sample, load, prepare...")


class RejectedRecord(BaseModel):
    file: str
    line: int
    field: str
    reason: str


class ImportResult(JobResult):
    """An import's report: an instance or conversation import's counts and rejections, or the summary of an
    all-or-nothing import (metadata, instructions), which has no counts."""

    summary: str | None = None
    imported: int | None = None
    duplicates: int = 0
    not_sampled: int = 0
    seed: int | None = None
    rejected_count: int = 0
    rejected: list[RejectedRecord] = Field(default_factory=list, description="The first ones, with file and line.")
    tasks_created: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class LintIssue(BaseModel):
    severity: str
    field: str
    message: str
    count: int
    examples: list[Any] = Field(default_factory=list)


class LintResult(JobResult):
    issues: list[LintIssue] = Field(default_factory=list)
    checked: int = 0


class ExportResult(JobResult):
    version_id: int
    records: int = 0
    content_hash: str | None = None


class ScoreResult(JobResult):
    scored: int = 0
    skipped: int = 0
    seconds: float = 0.0
    scored_per_s: float | None = None
    model: str = ""
    instruction_version_id: int | None = None


class ScorePoolResult(JobResult):
    scored: int = 0
    skipped: int = 0  # whose first prompt does not fit the model's length
    seconds: float = 0.0
    model: str = ""


class BulkFixResult(JobResult):
    bulk_fix_id: int
    applied: int = 0
    skipped: int = 0  # changed after the fix was proposed: left alone
    seconds: float = 0.0


class SynthesizeResult(JobResult):
    requested: int = 0  # subjects drawn
    skipped: int = 0  # already in the pool (an earlier run of the same request)
    sent: int = 0
    stored: int = 0
    refused: int = 0
    refusals: list[dict[str, str]] = Field(default_factory=list, description="The first ones: key and reason.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    capped: str | None = None  # the cap that stopped the job before every subject was sent
    generator: dict[str, Any] = Field(default_factory=dict, description="backend, name, host, model")
    seconds: float = 0.0


RESULTS: dict[JobKind, type[JobResult]] = {
    JobKind.import_: ImportResult, JobKind.lint: LintResult, JobKind.export: ExportResult,
    JobKind.preview: PreviewResult, JobKind.score: ScoreResult, JobKind.finetune: FinetuneResult,
    JobKind.bulk_fix: BulkFixResult, JobKind.synthesize: SynthesizeResult, JobKind.score_pool: ScorePoolResult}


def read_result(kind: str, stored: dict[str, Any] | None) -> JobResult | None:
    """A job's result as its kind's model; None while there is none."""
    return None if not stored else RESULTS[JobKind(kind)].model_validate(stored)
