"""Input and output shapes shared by the HTML forms, the JSON API and the CLI. Submodules: `instructions`,
`export_spec` (what a version holds), `manifest` (what its build wrote), `recipe` (the fine-tune's settings), `jobs`
(each kind's payload, and the results pages read), `review` (the queues' decisions and the checks), `revisions`
(fixes of records and their review)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core import limits
from app.core.security import MIN_PASSWORD_LENGTH
from app.core.validation_words import NOT_BLANK
from app.models import ImagePlacement, OptionsStyle, Role, TaskGroup
from app.models.types import MAX_DB_INT, LockVersion, RowIdValue
from app.prompts.rendering import MAX_TEMPLATE_CHARS
from app.schemas import recipe
from app.schemas.export_spec import ExportSpec
from app.schemas.review import (  # noqa: F401  # re-exported: where the routes have always imported them
    OVERRIDE_REASON,
    AnswerIn,
    CheckOut,
    DecisionIn,
    JudgementIn,
    ReviewItemOut,
    SkipIn,
    SolveTestIn,
    SpotCheckIn,
    VerdictIn,
)

T = TypeVar("T")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# The validators below give friendly messages; these patterns tell API clients the same rules up front.
EMAIL_PATTERN = r"^[^@\s]+@\S*\.\S*$"


class UserCreate(BaseModel):
    email: str = Field(max_length=254, description="Login name; stored lower-cased.",
                       json_schema_extra={"pattern": EMAIL_PATTERN})
    display_name: str = Field(min_length=1, max_length=120, json_schema_extra={"pattern": NOT_BLANK})
    roles: list[Role] = Field(default_factory=list)
    password: str | None = Field(
        None, description=f"At least {MIN_PASSWORD_LENGTH} characters; omit to have one generated.",
        json_schema_extra={"pattern": rf"^(|[\s\S]{{{MIN_PASSWORD_LENGTH},}})$"},
    )
    native_english: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        local, _, domain = value.partition("@")
        if not local or "." not in domain or " " in value:
            raise ValueError("must be an email address such as ada@example.org")
        return value

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if len(value) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
        return value


class UserUpdate(BaseModel):
    display_name: str | None = Field(None, min_length=1, max_length=120)
    roles: list[Role] | None = None
    is_active: bool | None = None
    native_english: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    roles: list[Role]
    is_active: bool
    native_english: bool
    created_at: datetime
    last_login_at: datetime | None


class DatasetIn(BaseModel):
    name: str = Field(min_length=1, max_length=120, description="Short name, as in task names (GEOMETRY3K).",
                      json_schema_extra={"pattern": r"^[^+/]*[^+/\s][^+/]*$"})
    url: str | None = Field(None, max_length=500, json_schema_extra={"pattern": r"^\s*(https?://[\s\S]*)?$"})
    citation: str | None = Field(None, max_length=limits.LONG_TEXT, description="BibTeX.")
    licence: str | None = Field(None, max_length=120)
    notes: str | None = Field(None, max_length=limits.LONG_TEXT)
    annotator_id: RowIdValue | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value or "+" in value or "/" in value:
            raise ValueError("must be non-empty and contain neither '+' nor '/'")
        return value

    @field_validator("url", "citation", "licence", "notes")
    @classmethod
    def _optional(cls, value: str | None) -> str | None:
        return _clean(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str | None
    citation: str | None
    licence: str | None
    notes: str | None
    annotator_id: int | None
    created_at: datetime
    updated_at: datetime


class TaskMetadataIn(BaseModel):
    task_group: TaskGroup
    category: str | None = Field(None, max_length=80, description="Perception, OCR, ... (free taxonomy).")
    description: str | None = Field(None, max_length=limits.LONG_TEXT)
    solve_test_required: bool | None = Field(None, description="Admins only; empty leaves it as it is.")
    lock_version: LockVersion

    @field_validator("category", "description")
    @classmethod
    def _optional(cls, value: str | None) -> str | None:
        return _clean(value)


class DraftIn(BaseModel):
    """An instruction draft as the editor sends it."""

    text: str = Field("", max_length=MAX_TEMPLATE_CHARS)
    input_template: str = Field("", max_length=MAX_TEMPLATE_CHARS)
    output_template: str = Field("", max_length=MAX_TEMPLATE_CHARS)
    options_style: OptionsStyle = OptionsStyle.paren_letters
    image_placement: ImagePlacement = ImagePlacement.before
    lock_version: LockVersion


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source_dataset_id: int | None
    task_group: TaskGroup
    category: str | None
    status: str
    description: str | None
    instance_count: int = Field(description="Active instances.")
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    """A keyset page: pass `next_after` back as `after` for the following page."""

    items: list[T]
    next_after: str | None = None
    prev_before: str | None = None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120, description="What will use it, e.g. the nightly export.",
                      json_schema_extra={"pattern": NOT_BLANK})
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Stops working after this many days "
                                        "(default: when revoked, or when your password changes).")


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once; only its hash is kept.")
    expires_at: datetime | None = None


class VersionNaming(BaseModel):
    """A new version's name, and an admin's reason to build it over failed checks (the page's form sends these
    beside the spec's fields)."""

    name: str | None = Field(None, max_length=limits.NAME, description="Default: v<n>.")
    qc_override_reason: str | None = Field(
        None, max_length=limits.NOTE, description="Admins: why tasks whose latest quality check failed go in anyway; "
        "the dataset card states it. Without it such a version is refused.")


class VersionIn(VersionNaming):
    spec: ExportSpec


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    spec: dict
    spec_hash: str
    content_hash: str | None
    job_id: int | None
    error: str | None
    manifest: dict | None = Field(None, description="Files with sizes and sha256, counts per task and split, "
                                  "the spec, the instruction versions used, what was left out and why.")
    created_at: datetime
    finished_at: datetime | None


class TaskChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    task: str
    kind: str
    before: int
    after: int
    versions_before: list[str]
    versions_after: list[str]


class PreviewIn(BaseModel):
    model_id: RowIdValue
    instruction_version_id: RowIdValue | None = Field(None, description="Default: the task's newest approved version.")
    size: int = Field(16, ge=1, le=500)
    seed: int = Field(0, ge=0, le=MAX_DB_INT)
    batch_size: int = Field(8, ge=1, le=256)
    max_new_tokens: int = Field(64, ge=1, le=2048)


DEVICE = r"^(auto|cpu|cuda(:\d{1,2})?)$"


class ModelIn(BaseModel):
    """A model to register: a folder on the worker's machine (nothing is downloaded)."""

    name: str = Field(min_length=1, max_length=limits.NAME, pattern=NOT_BLANK)
    path: str = Field(min_length=1, max_length=500, pattern=NOT_BLANK, description="On the worker's machine.")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.", json_schema_extra={"pattern": DEVICE})

    @field_validator("device")
    @classmethod
    def _device_in_words(cls, value: str) -> str:
        if not re.fullmatch(DEVICE, value):
            raise ValueError("must be auto, cpu, cuda or cuda:N (a GPU's number)")
        return value


class TaskStatusIn(BaseModel):
    """An admin's change of a task's status by hand: retired, or reopened as a draft."""

    status: Literal["retired", "draft"]
    reason: str = Field(min_length=1, max_length=limits.NOTE, pattern=NOT_BLANK)


class ScoreIn(BaseModel):
    """A score job: every active instance of the task under a model, for ranking them by its doubt."""

    model_id: RowIdValue
    instruction_version_id: RowIdValue | None = Field(None, description="Default: the task's newest approved version.")
    batch_size: int = Field(8, ge=1, le=256)


class VersionScoreIn(BaseModel):
    """Score jobs for every task of a dataset version, each with the instruction versions its records used."""

    model_id: RowIdValue
    batch_size: int = Field(8, ge=1, le=256)


class JobStarted(BaseModel):
    job_id: int
    status: str
    page: str = Field(description="The job's page, which shows its progress.")


class DoubtOut(BaseModel):
    instance_id: int
    rank: int = Field(description="1: the most doubtful.")
    risk: float = Field(description="Option tasks: the probability the model puts on other options; otherwise the "
                                    "loss's percentile within the task.")
    suspect: bool = Field(description="Confident learning: another option is as likely as its label usually is.")
    loss: float = Field(description="Mean token loss of the rendered target.")


class DoubtRanking(BaseModel):
    """A task's active instances, most doubtful first, under one model's scores."""

    model_id: int
    model_name: str
    instruction_version_id: int
    scored: int
    scored_at: datetime
    items: list[DoubtOut]


class FinetuneIn(BaseModel):
    """The two-stage recipe's knobs the studio offers; defaults and help from the recipe itself
    (app/schemas/recipe.py: the paper's, and why), bounds for the form."""

    base_model_id: RowIdValue
    eval_per_task: int = Field(20, ge=1, le=10_000, description="Validation records scored per task, before and after.")
    stage1_lr: float = recipe.offered("stage1_lr", gt=0, lt=1)
    stage1_epochs: float = recipe.offered("stage1_epochs", gt=0, le=1000)
    stage2_lr: float = recipe.offered("stage2_lr", gt=0, lt=1)
    stage2_steps: int = recipe.offered("stage2_steps", ge=0, le=1_000_000)
    global_batch_size: int = recipe.offered("global_batch_size", ge=1, le=65_536)
    per_device_batch_size: int = recipe.offered("per_device_batch_size", ge=1, le=1024)
    max_steps: int | None = recipe.offered("max_steps", ge=1, le=1_000_000)
    save_steps: int = recipe.offered("save_steps", ge=1, le=1_000_000)
    seed: int = recipe.offered("seed", ge=0, le=MAX_DB_INT)
    lora: bool = recipe.offered("lora")
    lora_rank: int = recipe.offered("lora_rank", ge=1, le=256)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: not_authenticated, forbidden, not_found, conflict, "
                                  "invalid, too_many_requests...")
    message: str = Field(description="For people: what went wrong and what to do.")
    fields: dict[str, str] | None = Field(default=None, description="The inputs at fault, each with why.")


class ErrorOut(BaseModel):
    """Every API error has this shape, whatever its status."""

    error: ErrorDetail


def _error(description: str) -> dict:
    return {"model": ErrorOut, "description": description}


# Declared on every API router, so that clients (and Schemathesis) know each error's shape.
API_ERRORS: dict[int | str, dict] = {
    400: _error("The request cannot be carried out as it is."),
    401: _error("No valid bearer token (Authorization: Bearer <token>)."),
    403: _error("The token's user lacks the role this needs, or the item belongs to someone else."),
    404: _error("No such item."),
    409: _error("The item changed or was taken meanwhile: load it again."),
    422: _error("Some input is not valid; `fields` names each."),
    429: _error("Too many requests: wait and try again."),
    503: _error("The database is not reachable for the moment (Retry-After says when to try again)."),
}
