"""Dataset versions as the studio keeps them: created from a spec, built as a job (or by the CLI), immutable
once ready, identified by their spec's hash and their files' hash, deleted files first."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import update
from sqlmodel import Session, or_, select

from app.core import limits
from app.core.config import Settings
from app.core.db import make_engine
from app.core.failures import Conflict, Invalid, NotFound
from app.exports import image_tokens
from app.exports.build import BuildError, plan
from app.models import (
    ConversationPool,
    DatasetVersion,
    Instance,
    InstructionVersion,
    JobKind,
    RegisteredModel,
    RevisionStatus,
    SpotCheckItem,
    Task,
    TaskStatus,
    VersionStatus,
    utcnow,
)
from app.prompts.tokens import token_counter
from app.qc.stats import FEWEST_TO_TELL
from app.schemas import FinetuneIn, model_families
from app.schemas.export_spec import ExportSpec
from app.schemas.jobs import ExportPayload, FinetunePayload
from app.schemas.manifest import Manifest
from app.services import audit, checks, instance_revisions, instructions, jobs, revisions, version_files
from app.services import registered_models as model_service


def default_task_ids(session: Session) -> list[int]:
    """All verified tasks: what a version holds unless told otherwise."""
    return list(session.exec(select(Task.id).where(Task.status == TaskStatus.verified).order_by(Task.name)))


def task_ids_named(session: Session, names_or_ids: list[str]) -> list[int]:
    """The tasks named (by name or id), refused unless every one exists."""
    numbers = [int(item) for item in names_or_ids if item.isdigit()]
    ids = list(session.exec(select(Task.id).where(or_(Task.name.in_(names_or_ids), Task.id.in_(numbers)))))
    if len(ids) != len(set(names_or_ids)):
        raise Invalid(f"Some of these tasks do not exist: {', '.join(names_or_ids)}", fields={"task": "unknown"})
    return cast(list[int], ids)  # ids of stored rows


def pool_named(session: Session, name: str) -> int:
    pool_id = session.exec(select(ConversationPool.id).where(ConversationPool.name == name)).first()
    if pool_id is None:
        raise NotFound(f"There is no conversation pool called {name!r}.")
    return pool_id


def create(session: Session, *, spec: ExportSpec, name: str | None, actor_id: int | None,
           enqueue: bool = True, qc_override_reason: str | None = None, may_override: bool = False,
           exports_on_bucket: bool = False) -> DatasetVersion:
    """Records the version (building) and queues its build; refuses a spec that cannot be built (with
    `exports_on_bucket`, versions kept on object storage, one that asks for images.tar), and one with a task whose
    latest quality check failed unless an admin (`may_override`) gives the reason the card will state."""
    if spec.images_as_tar and exports_on_bucket:
        raise Invalid("A version kept on object storage names its images in the media bucket, so it has no "
                      "images.tar (`python -m app pull` makes a folder of it).",
                      fields={"images_as_tar": "not with versions kept on object storage"})
    if spec.revisions_through is None:
        spec = spec.model_copy(update={"revisions_through": revisions.newest_accepted_id(session)})
    if spec.as_of is not None and spec.as_of > utcnow():
        raise Invalid("as_of must be a moment that has passed (fixes and reviews still to come would change the "
                      "version): leave it out for now.", fields={"as_of": "in the future"})
    if spec.as_of is None:
        spec = spec.model_copy(update={"as_of": utcnow()})
    try:
        plan(session, spec)
    except BuildError as error:
        raise Conflict(str(error), fields={"task_ids": "cannot be built"}) from None
    qc_override_reason = _qc_override(session, spec, (qc_override_reason or "").strip() or None, may_override)
    if not (name or "").strip():
        newest = session.exec(select(DatasetVersion.id).order_by(DatasetVersion.id.desc())).first()
        name = f"v{(newest or 0) + 1}"
    name = limits.at_most(name.strip(), limits.NAME, field="name")
    if session.exec(select(DatasetVersion.id).where(DatasetVersion.name == name)).first() is not None:
        raise Conflict(f"There is already a version called {name!r}.", fields={"name": "taken"})
    version = DatasetVersion(name=name, spec=spec.model_dump(mode="json"), spec_hash=spec.digest(),
                             created_by_id=actor_id, qc_override_reason=qc_override_reason)
    session.add(version)
    session.flush()
    audit.record(session, actor_id=actor_id, action="version.create", entity_type="dataset_version",
                 entity_id=version.id, after={"name": version.name, "spec_sha256": version.spec_hash,
                                              **({"qc_override_reason": qc_override_reason}
                                                 if qc_override_reason else {})})
    session.commit()
    if enqueue:
        job = jobs.enqueue(session, ExportPayload(version_id=version.id), created_by_id=actor_id)
        version.job_id = job.id
        session.add(version)
        session.commit()
    return version


def _qc_override(session: Session, spec: ExportSpec, reason: str | None, may_override: bool) -> str | None:
    """The override reason to keep, or a refusal naming the tasks whose latest check failed."""
    failing = checks.failing(session, task_ids=spec.task_ids)
    if not failing:
        return None
    named = "; ".join(f"{task}: {why}" for task, why in failing.items())
    if not may_override:
        raise Conflict(f"These tasks' latest quality check failed: {named}. Leave them out, or check them again once "
                       "fixed; an admin may build anyway with a reason, which the dataset card states.",
                       fields={"task_ids": "a check failed"})
    if reason is None:
        raise Invalid(f"These tasks' latest quality check failed: {named}. Say why they go into this version "
                      "anyway: the dataset card states it.", fields={"qc_override_reason": "required"})
    limits.at_most(reason, limits.NOTE, field="qc_override_reason")
    return f"{reason} (over failed checks: {named})"


def run_build(settings: Settings, *, version_id: int,
              on_progress: Callable[[float, str], None] = lambda *_: None) -> DatasetVersion:
    """Builds the version's files and marks it ready; a build that fails marks it failed with the reason.
    Safe to run again after a crash: files appear only whole, and an identical finished build is kept."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            version = get(session, version_id=version_id)
            if version.status == VersionStatus.ready:
                return version
            if version.status == VersionStatus.failed:  # a refused spec stays refused: no point retrying
                raise BuildError(version.error or "This version failed to build.")
            spec = ExportSpec.model_validate(version.spec)
            count, _ = token_counter(settings.tokenizer_path)
            try:
                manifest = Manifest.model_validate(version_files.build_files(engine, settings, version, spec, count,
                                                                             on_progress))
            except BuildError as error:
                _finish(session, version, status=VersionStatus.failed, error=str(error))
                raise
            _finish(session, version, status=VersionStatus.ready, manifest=manifest.stored(),
                    content_hash=hashlib.sha256(manifest.content_lines().encode()).hexdigest())
            return version
    finally:
        engine.dispose()


def _finish(session: Session, version: DatasetVersion, **values) -> None:
    """Ends the build once: a second build of the same version that finishes later changes nothing."""
    ended = session.execute(update(DatasetVersion).where(DatasetVersion.id == version.id,
                                                         DatasetVersion.status == VersionStatus.building)
                            .values(finished_at=utcnow(), **values)).rowcount
    if ended:
        audit.record(session, actor_id=None, action=f"version.{values['status']}", entity_type="dataset_version",
                     entity_id=version.id, after={key: value for key, value in values.items() if key != "manifest"})
    session.commit()
    session.refresh(version)


def get(session: Session, *, version_id: int) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"There is no dataset version with id {version_id}.")
    return version


def named(session: Session, name_or_id: str) -> DatasetVersion:
    """The version called `name_or_id`, or with that id."""
    found = session.exec(select(DatasetVersion).where(DatasetVersion.name == name_or_id)).first()
    if found is None and name_or_id.isdigit():
        found = session.get(DatasetVersion, int(name_or_id))
    if found is None:
        raise NotFound(f"There is no dataset version called {name_or_id!r}.")
    return found


def list_versions(session: Session) -> list[DatasetVersion]:
    return list(session.exec(select(DatasetVersion).order_by(DatasetVersion.id.desc())))


def form_choices(session: Session, *, with_failed: bool = False) -> dict[str, list]:
    """What a new version can be built from: the accepted or verified tasks (and, for an admin who may override,
    those held back by a failed check), and the conversation pools."""
    statuses = [TaskStatus.accepted, TaskStatus.verified] + ([TaskStatus.checks_failed] if with_failed else [])
    return {"tasks": list(session.exec(select(Task).where(Task.status.in_(statuses)).order_by(Task.name))),
            "pools": list(session.exec(select(ConversationPool).order_by(ConversationPool.name)))}


def instances_by_category(session: Session, version: DatasetVersion) -> tuple[dict[str, int], dict[str, int]]:
    """The version's instances per task (all splits), and per task category, largest first."""
    manifest = manifest_of(version)
    per_task = {task: sum(split.values()) for task, split in manifest.counts.items()} if manifest else {}
    categories: Counter[str] = Counter()
    if per_task:
        for name, category in session.exec(select(Task.name, Task.category).where(Task.name.in_(list(per_task)))):
            categories[category or "—"] += per_task[name]
    return per_task, dict(categories.most_common())


def file_of(settings: Settings, version: DatasetVersion, relative: str) -> version_files.VersionFile:
    """A file of a ready version (listed in its manifest, or one of its images), to send."""
    if version.status != VersionStatus.ready:
        raise Conflict(f"Version {version.name} is {version.status}: its files are not there.")
    return version_files.open_file(settings, version, relative)


def card_text(settings: Settings, version: DatasetVersion) -> str:
    """The version's dataset card (README.md), as text."""
    file = file_of(settings, version, "README.md")
    data = file.path.read_bytes() if file.path is not None else b"".join(file.chunks or ())
    return data.decode("utf-8", errors="replace")


def delete(session: Session, settings: Settings, *, version_id: int, actor_id: int) -> None:
    version = get(session, version_id=version_id)
    if version.status == VersionStatus.building:
        raise Conflict("This version is still building: cancel its job first, or wait for it to end.")
    audit.record(session, actor_id=actor_id, action="version.delete", entity_type="dataset_version",
                 entity_id=version.id, before={"name": version.name, "content_hash": version.content_hash})
    session.delete(version)
    session.commit()
    # The row first: it never points at missing files; a crash here leaves files nothing refers to.
    version_files.delete_files(settings, version)


@dataclass(frozen=True)
class TaskChange:
    task: str
    before: int  # records (train + validation); 0 when absent
    after: int
    versions_before: list[str]
    versions_after: list[str]

    @property
    def kind(self) -> str:
        if not self.before:
            return "added"
        if not self.after:
            return "removed"
        if self.versions_before != self.versions_after:
            return "instructions changed"
        return "count changed" if self.before != self.after else "same"


def diff(older: DatasetVersion, newer: DatasetVersion) -> list[TaskChange]:
    """Task by task, what changed from one ready version to another (by their manifests)."""
    old, new = manifest_of(older), manifest_of(newer)
    if old is None or new is None:
        raise Conflict("Only two ready versions can be compared.")

    def summary(manifest: Manifest) -> dict[str, tuple[int, list[str]]]:
        return {task: (sum(counts.values()), sorted(manifest.instruction_versions.get(task, {}), key=int))
                for task, counts in manifest.counts.items()}

    before, after = summary(old), summary(new)
    changes = []
    for task in sorted(before.keys() | after.keys()):
        count_before, versions_before = before.get(task, (0, []))
        count_after, versions_after = after.get(task, (0, []))
        changes.append(TaskChange(task, count_before, count_after, versions_before, versions_after))
    return changes


@dataclass(frozen=True)
class Origin:
    task: Task
    instance: Instance
    version: InstructionVersion
    reviews: list  # (Review, reviewer name), newest first
    verdicts: list[SpotCheckItem]
    fixes: list  # instance_revisions.Entry, oldest first: the chain from the import to the values exported


def trace(session: Session, *, record_id: str) -> Origin:
    """The task, instance, instruction version, reviews and spot-check verdicts behind an exported record id
    (`<task>/<instance id>/v<instruction version id>`)."""
    parts = record_id.rsplit("/", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].startswith("v") or not parts[2][1:].isdigit():
        raise Invalid("A record id reads <task>/<instance id>/v<instruction version id>.", fields={"id": "format"})
    task_name, instance_id, version_id = parts[0], int(parts[1]), int(parts[2][1:])
    instance, version = session.get(Instance, instance_id), session.get(InstructionVersion, version_id)
    task = session.exec(select(Task).where(Task.name == task_name)).first()
    if task is None or instance is None or version is None or instance.task_id != task.id:
        raise NotFound(f"No exported record could have the id {record_id!r} (its task, instance or instruction "
                       "version is not here any more).")
    reviews = instructions.review_comments(session, instruction_id=version.instruction_id).get(version.id, [])
    verdicts = list(session.exec(select(SpotCheckItem).where(SpotCheckItem.instance_id == instance.id,
                                                             SpotCheckItem.decided_at.is_not(None))))
    fixes = [entry for entry in reversed(instance_revisions.history_entries(session, instance_id=instance.id))
             if entry.revision.status == RevisionStatus.accepted]
    return Origin(task, instance, version, reviews, verdicts, fixes)


def length_rule(version: DatasetVersion) -> str | None:
    """How its records were held to the trainer's max length, in words, where it was built for a model family."""
    family = version.spec.get("model_family")
    return image_tokens.length_rule(family) if family else None


def has_stage2(version: DatasetVersion) -> bool:
    """Whether the version holds stage-2 conversations (a pool was sampled)."""
    return _records_in(version, "stage2.json") > 0


def has_validation(version: DatasetVersion) -> bool:
    """Whether the version holds validation records, which a fine-tune scores before and after."""
    return _records_in(version, "val.json") > 0


def thin_validation(version: DatasetVersion) -> list[str]:
    """The tasks of the version with validation records, but fewer than a change in accuracy can be read on."""
    manifest = manifest_of(version)
    if manifest is None:
        return []
    return sorted(task for task, counts in manifest.counts.items()
                  if 0 < counts.get("validation", 0) < FEWEST_TO_TELL)


@dataclass(frozen=True)
class ThinSplit:
    """Before a build: the ticked tasks a validation share would give too few records to read a change on."""

    ratio: float
    tasks: list[tuple[str, int]]  # (task, about how many validation records)
    enough: float | None  # the share that gives each of them FEWEST_TO_TELL, where one under 1 does


def thin_split(session: Session, *, task_ids: list[int], ratio: float, cap: int | None) -> ThinSplit | None:
    """What the version form warns of as it is filled. A build draws each instance into validation with
    probability `ratio`, so a task gets about its exported instances times the ratio. None when every task gets
    enough, or when the share is 0 (no validation asked for)."""
    if ratio <= 0 or not task_ids:
        return None
    exported = {task.name: min(task.instance_count, cap or task.instance_count)
                for task in session.exec(select(Task).where(Task.id.in_(task_ids)).order_by(Task.name))}
    thin = {name: round(count * ratio) for name, count in exported.items() if round(count * ratio) < FEWEST_TO_TELL}
    if not thin:
        return None
    needed = math.ceil(100 * FEWEST_TO_TELL / max(min(exported[name] for name in thin), 1)) / 100
    return ThinSplit(ratio, list(thin.items()), needed if needed < 1 else None)


def _records_in(version: DatasetVersion, name: str) -> int:
    manifest = manifest_of(version)
    return manifest.records_in(name) if manifest else 0


def manifest_of(version: DatasetVersion) -> Manifest | None:
    """The version's manifest as a model; None until it is ready."""
    return Manifest.read(version.manifest)


def model_work(session: Session, *, version_id: int) -> dict:
    """The fine-tunes of a version, and the previews by the models they registered."""
    made = tuple(session.exec(select(RegisteredModel.id).where(RegisteredModel.version_id == version_id)))
    return {"finetunes": jobs.list_jobs(session, filters=jobs.JobFilters(kind=JobKind.finetune, version_id=version_id)),
            "previews": jobs.list_jobs(session, filters=jobs.JobFilters(kind=JobKind.preview, model_ids=made))
            if made else []}


def start_finetune(session: Session, *, version_id: int, data: FinetuneIn, actor_id: int | None):
    """Queues a fine-tune of a registered base model on a ready version (the paper's recipe by default)."""
    version = get(session, version_id=version_id)
    if version.status != VersionStatus.ready:
        raise Conflict(f"Version {version.name} is {version.status}: only a ready version can be trained on.")
    base = model_service.get(session, model_id=data.base_model_id)
    try:  # where the web can read the model's folder; the worker checks again before it trains
        model_families.family_of(Path(base.path))
    except model_families.UnsupportedFamily as refused:
        raise Invalid(str(refused), fields={"base_model_id": "a family the worker does not know"}) from None
    return jobs.enqueue(session, FinetunePayload(**data.model_dump(), version_id=version.id),
                        created_by_id=actor_id, max_attempts=3)
