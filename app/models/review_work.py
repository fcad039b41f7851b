"""Quality control: reviews, blind solve tests and spot checks, each with who decided what and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, one_of, optional_time_field


class ReviewSubject(StrEnum):
    instruction_version = "instruction_version"
    task_verification = "task_verification"


class Decision(StrEnum):
    approve = "approve"
    request_changes = "request_changes"
    reject = "reject"


class QcStatus(StrEnum):
    open = "open"
    passed = "passed"
    failed = "failed"
    cancelled = "cancelled"


class SpotVerdict(StrEnum):
    correct = "correct"
    wrong_target = "wrong_target"
    bad_image = "bad_image"
    instruction_mismatch = "instruction_mismatch"
    ambiguous = "ambiguous"


OVERRIDE_REASON = "Why an admin opened it weaker than the defaults, or in place of a running check."
CANCEL_REASON = "Why it ended without an outcome (an admin replaced it, or its task was retired)."


class Review(SQLModel, table=True):
    __table_args__ = (
        one_of("subject", ReviewSubject),
        one_of("decision", Decision),
        # One person, one vote: nobody holds or decides two slots of a task's verification round. A constraint,
        # not a filter read before the write, so that it holds under concurrent claims on either database.
        Index("uq_review_verifier_per_round", "task_id", "round", "reviewer_id", unique=True,
              sqlite_where=text("subject = 'task_verification' AND reviewer_id IS NOT NULL"),
              postgresql_where=text("subject = 'task_verification' AND reviewer_id IS NOT NULL")),
        # The reviewer's queue: my undecided items; and the open queue by lease.
        Index("ix_review_reviewer_id_decided_at", "reviewer_id", "decided_at"),
        Index("ix_review_decided_at_lease_expires_at", "decided_at", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=30)
    instruction_version_id: int | None = Field(
        default=None, foreign_key="instruction_version.id", index=True, ondelete="CASCADE"
    )
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True, ondelete="CASCADE")
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    round: int = Field(default=1, description="1 for the first review of an instruction, then 2, ...")
    needs_native_english: bool = Field(default=False, description="A verification slot for a native speaker.")
    decision: str | None = Field(default=None, max_length=20, description="Null while undecided.")
    comment: str | None = Field(default=None, sa_type=Text)
    lease_expires_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1, description="Bumped by every claim and decision: stale pages get a 409.")
    created_at: datetime = created_at_field()
    decided_at: datetime | None = optional_time_field()


def one_open_per_task(table: str) -> Index:
    """One check of a kind runs per task: a second one opened at the same moment is refused by the database."""
    return Index(f"uq_{table}_open_per_task", "task_id", unique=True, sqlite_where=text("status = 'open'"),
                 postgresql_where=text("status = 'open'"))


class SolveTest(SQLModel, table=True):
    __tablename__ = "solve_test"
    __table_args__ = (one_of("status", QcStatus), one_open_per_task("solve_test"))

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    instruction_version_id: int | None = Field(
        default=None, foreign_key="instruction_version.id", ondelete="SET NULL"
    )
    seed: int
    size: int = Field(default=20)
    pass_threshold: int = Field(default=18, description="Matches needed out of `size`.")
    status: str = Field(default=QcStatus.open, max_length=20)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    completed_at: datetime | None = optional_time_field()
    override_reason: str | None = Field(default=None, sa_type=Text, description=OVERRIDE_REASON)
    cancel_reason: str | None = Field(default=None, sa_type=Text, description=CANCEL_REASON)


class SolveTestItem(SQLModel, table=True):
    __tablename__ = "solve_test_item"
    __table_args__ = (
        UniqueConstraint("solve_test_id", "instance_id"),
        # The queue: a test's unanswered items in order, read from the index, not sorted on every claim.
        Index("ix_solve_test_item_solve_test_id_answered_at_position", "solve_test_id", "answered_at", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    solve_test_id: int = Field(foreign_key="solve_test.id", ondelete="CASCADE")
    instance_id: int = Field(foreign_key="instance.id", index=True, ondelete="CASCADE")
    position: int
    solver_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL",
                                  description="Who holds (then answered) the item.")
    answer: str | None = Field(default=None, sa_type=Text)
    matched: bool | None = Field(default=None, description="Null until judged (free text is judged by hand).")
    answered_at: datetime | None = optional_time_field()
    judged_at: datetime | None = optional_time_field()
    lease_expires_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1)


class SpotCheck(SQLModel, table=True):
    __tablename__ = "spot_check"
    __table_args__ = (one_of("status", QcStatus), one_open_per_task("spot_check"))

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    instruction_version_id: int | None = Field(
        default=None, foreign_key="instruction_version.id", ondelete="SET NULL"
    )
    seed: int
    size: int
    max_error_rate: float = Field(default=0.1, description="Passes when the Wilson upper bound is below this.")
    confidence: float = Field(default=0.95, description="Of the Wilson interval.")
    double_review: bool = Field(default=False)
    census: bool = Field(default=False, description="The sample is the whole task: its error rate is exact.")
    # Targeted checks (app/qc/targeted.py) draw by a model's doubt and weight each verdict by 1 / its item's
    # inclusion probability; uniform ones (the default) have none of these.
    targeted_by_model_id: int | None = Field(default=None, foreign_key="registered_model.id", ondelete="SET NULL")
    uniform_share: float | None = None
    status: str = Field(default=QcStatus.open, max_length=20)
    # First verdicts so far, and how many of them found a problem: kept by `record_verdict` as verdicts come in,
    # so the dashboard reads a check's error rate without counting its items on every view.
    decided_count: int = Field(default=0)
    error_count: int = Field(default=0)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    completed_at: datetime | None = optional_time_field()
    override_reason: str | None = Field(default=None, sa_type=Text, description=OVERRIDE_REASON)
    cancel_reason: str | None = Field(default=None, sa_type=Text, description=CANCEL_REASON)

    @property
    def targeted(self) -> bool:
        """Drawn by a model's doubt, its error rate weighted (a targeted check always records its uniform share)."""
        return self.uniform_share is not None


class SpotCheckItem(SQLModel, table=True):
    __tablename__ = "spot_check_item"
    __table_args__ = (
        UniqueConstraint("spot_check_id", "instance_id"),
        # The queue (a check's undecided items in order: the first candidates are read from the index, not sorted
        # on every claim), and whether anything is left to decide in a check (asked after every verdict). No index
        # may lead with decided_at: without statistics SQLite prefers it, and then sorts every open item per claim.
        Index("ix_spot_check_item_spot_check_id_decided_at_position", "spot_check_id", "decided_at", "position"),
        # The first-pass claim's order, undecided items only: PostgreSQL cannot read (check, position) order from
        # the index above past its `decided_at IS NULL` (not an equality to it), and sorted every undecided item of
        # the open checks per claim (8 ms at 10,000). A cancelled check's undecided items stay in it: the claim
        # starts at the first open check (spot_checks.first_pass_candidates), so older ones are never read.
        Index("ix_spot_check_item_undecided_position", "spot_check_id", "position",
              sqlite_where=text("decided_at IS NULL"), postgresql_where=text("decided_at IS NULL")),
        Index("ix_spot_check_item_spot_check_id_second_decided_at_position", "spot_check_id", "second_decided_at",
              "position"),
        # What a reviewer holds (asked by every "next item" and the dashboard): without these, a scan of every
        # item of the open checks.
        Index("ix_spot_check_item_reviewer_id_decided_at", "reviewer_id", "decided_at"),
        Index("ix_spot_check_item_second_reviewer_id_second_decided_at", "second_reviewer_id", "second_decided_at"),
        one_of("verdict", SpotVerdict),
        one_of("second_verdict", SpotVerdict, name="second_verdict"),
    )

    id: int | None = Field(default=None, primary_key=True)
    spot_check_id: int = Field(foreign_key="spot_check.id", ondelete="CASCADE")
    instance_id: int = Field(foreign_key="instance.id", index=True, ondelete="CASCADE")
    position: int
    inclusion_probability: float | None = None  # targeted checks: the chance this instance had of being drawn
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    verdict: str | None = Field(default=None, max_length=30)
    note: str | None = Field(default=None, sa_type=Text)
    decided_at: datetime | None = optional_time_field()
    second_reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    second_verdict: str | None = Field(default=None, max_length=30)
    second_note: str | None = Field(default=None, sa_type=Text)
    second_decided_at: datetime | None = optional_time_field()
    lease_expires_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1)
