"""Every table of the studio. Import from here: `from app.models import Task, Instance`."""

from sqlmodel import SQLModel

from app.models.bulk_fixes import BulkFix, BulkFixItem, BulkFixStatus
from app.models.catalog import Image, Instance, InstanceStatus, SourceDataset, Task, TaskGroup, TaskStatus
from app.models.instructions import (
    ImagePlacement,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    OptionsStyle,
)
from app.models.operations import (
    AuditEvent,
    ConversationItem,
    ConversationPool,
    DatasetVersion,
    Job,
    JobKind,
    JobMetric,
    JobStatus,
    ModelOutput,
    RegisteredModel,
    VersionStatus,
)
from app.models.review_work import (
    Decision,
    QcStatus,
    Review,
    ReviewSubject,
    SolveTest,
    SolveTestItem,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
)
from app.models.revisions import RecordKind, Revision, RevisionOrigin, RevisionStatus
from app.models.scores import ConversationScore, InstanceScore
from app.models.stage2 import (
    ConversationKind,
    ConversationOutcome,
    ConversationReview,
    PromptStatus,
    SynthesisPrompt,
    TurnVerdict,
)
from app.models.types import utcnow
from app.models.users import ApiToken, Role, SignInCount, SignInSession, User, UserRole

metadata = SQLModel.metadata

__all__ = [
    "ApiToken", "AuditEvent", "BulkFix", "BulkFixItem", "BulkFixStatus", "ConversationItem", "ConversationKind",
    "ConversationOutcome", "ConversationPool", "ConversationReview", "ConversationScore", "PromptStatus",
    "SynthesisPrompt",
    "DatasetVersion", "Decision", "Image", "ImagePlacement", "Instance", "InstanceScore", "InstanceStatus",
    "Instruction", "InstructionStatus", "InstructionVersion", "Job", "JobKind", "JobMetric", "JobStatus",
    "ModelOutput", "OptionsStyle", "QcStatus", "RecordKind", "RegisteredModel", "Review", "ReviewSubject", "Revision",
    "RevisionOrigin", "RevisionStatus", "Role", "SignInCount", "SignInSession", "SolveTest", "SolveTestItem",
    "SourceDataset", "SpotCheck", "SpotCheckItem", "SpotVerdict", "Task", "TaskGroup", "TaskStatus", "TurnVerdict",
    "User", "UserRole", "VersionStatus", "metadata", "utcnow",
]
