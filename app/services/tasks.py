"""Finding tasks: filtered keyset pages, one task with its figures, counts for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, or_, update
from sqlmodel import Session, select

from app.core.failures import Conflict, NotFound
from app.models import Instance, InstanceStatus, Instruction, Task, TaskStatus, utcnow
from app.schemas import TaskMetadataIn
from app.services import audit, task_states


@dataclass(frozen=True)
class TaskFilters:
    q: str | None = None
    task_group: str | None = None
    category: str | None = None
    status: str | None = None
    source_dataset_id: int | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as the list page's query parameters, for links that keep them."""
        names = {"q": self.q, "group": self.task_group, "category": self.category, "status": self.status,
                 "dataset": self.source_dataset_id}
        return {name: str(value) for name, value in names.items() if value not in (None, "")}


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_after: str | None
    prev_before: str | None


def list_tasks(session: Session, *, filters: TaskFilters, after: str | None = None, before: str | None = None,
               limit: int = 50) -> TaskPage:
    """Tasks ordered by name, `limit` at a time, after (or before) a name: a keyset page, as fast on page
    100 as on page 1."""
    query = select(Task)
    if filters.q:
        pattern = f"%{escape_like(filters.q.strip())}%"
        query = query.where(or_(Task.name.ilike(pattern, escape="\\"), Task.description.ilike(pattern, escape="\\")))
    for column, value in ((Task.task_group, filters.task_group), (Task.category, filters.category),
                          (Task.status, filters.status), (Task.source_dataset_id, filters.source_dataset_id)):
        if value not in (None, ""):
            query = query.where(column == value)
    return page_by_name(session, query, after=after, before=before, limit=limit)


def page_by_name(session: Session, query, *, after: str | None, before: str | None, limit: int) -> TaskPage:
    """`query`'s tasks ordered by name, `limit` at a time, after (or before) a name: a keyset page, as fast on
    page 100 as on page 1 (the task list's, and the dashboard's quality table)."""
    if before is not None:
        rows = list(session.exec(query.where(Task.name < before).order_by(Task.name.desc()).limit(limit + 1)))
        has_more_before = len(rows) > limit
        tasks = list(reversed(rows[:limit]))
        has_more_after = True
    else:
        if after is not None:
            query = query.where(Task.name > after)
        rows = list(session.exec(query.order_by(Task.name).limit(limit + 1)))
        has_more_after = len(rows) > limit
        tasks = rows[:limit]
        has_more_before = after is not None
    return TaskPage(
        tasks=tasks,
        next_after=tasks[-1].name if tasks and has_more_after else None,
        prev_before=tasks[0].name if tasks and has_more_before else None,
    )


def refresh_instance_counts(session: Session | Connection, *, task_ids: list[int]) -> None:
    """Recounts the active and flagged instances of these tasks into `Task.instance_count` and
    `Task.flagged_count`, in the caller's transaction. Whatever adds, flags or excludes instances calls this
    for the tasks it touched."""
    if not task_ids:
        return

    def counted(status: InstanceStatus):
        return (select(func.count()).select_from(Instance)
                .where(Instance.task_id == Task.id, Instance.status == status).scalar_subquery())

    session.execute(update(Task).where(Task.id.in_(task_ids)).values(
        instance_count=counted(InstanceStatus.active), flagged_count=counted(InstanceStatus.flagged)))


def choices(session: Session) -> list[tuple[int, str]]:
    """Every task as (id, name), by name: for a form that picks tasks."""
    return [(task_id, name) for task_id, name in session.exec(select(Task.id, Task.name).order_by(Task.name))]


def get_task(session: Session, *, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"There is no task with id {task_id}.")
    return task


def update_metadata(session: Session, *, task_id: int, data: TaskMetadataIn, actor_id: int | None) -> Task:
    """Group, category, description (and, if given, whether a blind solve test is required); refused with
    Conflict if the task changed since the form was loaded (optimistic concurrency on `lock_version`), so
    nobody's edit is silently overwritten."""
    task = get_task(session, task_id=task_id)
    stale = Conflict("Someone else changed this task while you were editing it: reload to see their change.",
                     fields={"lock_version": "stale"})
    if task.lock_version != data.lock_version:
        raise stale
    fields = ["task_group", "category", "description"]
    if data.solve_test_required is not None:
        fields.append("solve_test_required")
    before = {name: getattr(task, name) for name in fields}
    changed = session.execute(
        update(Task).where(Task.id == task.id, Task.lock_version == data.lock_version)
        .values(**{name: getattr(data, name) for name in fields}, lock_version=Task.lock_version + 1,
                updated_at=utcnow()))
    if changed.rowcount != 1:  # lost a race with a concurrent save between the read and this update
        session.rollback()
        raise stale
    audit.record(session, actor_id=actor_id, action="task.update", entity_type="task", entity_id=task.id,
                 before=before, after={name: getattr(data, name) for name in fields})
    if before.get("solve_test_required", data.solve_test_required) != data.solve_test_required:
        task_states.advance(session, task_id=task.id, actor_id=actor_id, reason="solve test requirement changed")
    session.commit()
    session.refresh(task)
    return task


METADATA = ("task_group", "category", "description")


def put_metadata(session: Session, *, name: str, dataset_id: int, values: dict, actor_id: int | None) -> bool:
    """The task named `name` made (a draft) or updated to `values` (METADATA), in the caller's transaction;
    returns whether it is new."""
    task = session.exec(select(Task).where(Task.name == name)).first()
    created = task is None
    before = None if created else {key: getattr(task, key) for key in METADATA}
    task = task or Task(name=name)
    task.source_dataset_id = dataset_id
    for key in METADATA:
        setattr(task, key, values[key])
    task.updated_at = utcnow()
    if not created:
        task.lock_version += 1
    session.add(task)
    session.flush()
    audit.record(session, actor_id=actor_id, action="task.create" if created else "task.update", entity_type="task",
                 entity_id=task.id, before=before, after={key: values[key] for key in METADATA})
    return created


def instructions_of(session: Session, *, task_id: int) -> list[Instruction]:
    return list(session.exec(select(Instruction).where(Instruction.task_id == task_id).order_by(Instruction.id)))


def counts_by_status(session: Session) -> dict[str, int]:
    counts = dict.fromkeys((str(status) for status in TaskStatus), 0)
    counts.update(dict(session.exec(select(Task.status, func.count()).group_by(Task.status)).all()))
    return counts


_CATEGORIES = select(Task.category).where(Task.category.is_not(None)).distinct()
_GROUPS = select(Task.task_group).distinct()


def facet_values(session: Session) -> dict[str, list[str]]:
    """The groups and categories in use, for the filter menus."""
    return {"categories": sorted(session.exec(_CATEGORIES)), "groups": sorted(session.exec(_GROUPS))}


def escape_like(text: str) -> str:
    """`text` for a LIKE pattern: its own % and _ match literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
