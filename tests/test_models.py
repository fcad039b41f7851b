"""The database itself refuses what the code would: statuses, duplicates; timestamps come back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from app.models import Image, Instance, Job, Task, UserRole
from tests.factories import make_task, make_user


def test_status_columns_only_take_known_values(db):
    db.add(Task(name="A+x", status="done"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    user = make_user(db)
    db.add(UserRole(user_id=user.id, role="superuser"))
    with pytest.raises(IntegrityError):
        db.commit()


def test_instances_are_unique_per_task_and_source_id(db):
    task = make_task(db, "A+x", instances=1)
    db.add(Instance(task_id=task.id, source_id="A+x-0", raw_output="again", rkey=1))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    other = make_task(db, "A+y")
    db.add(Instance(task_id=other.id, source_id="A+x-0", raw_output="fine elsewhere", rkey=1))
    db.commit()


def test_images_are_unique_by_sha256(db):
    db.add(Image(sha256="a" * 64, width=1, height=1, format="png", bytes=1))
    db.commit()
    db.add(Image(sha256="a" * 64, width=2, height=2, format="png", bytes=2))
    with pytest.raises(IntegrityError):
        db.commit()


def test_timestamps_round_trip_as_aware_utc(db):
    paris = timezone(timedelta(hours=1))
    job = Job(kind="export", started_at=datetime(2026, 3, 1, 13, 0, tzinfo=paris))
    db.add(job)
    db.commit()
    db.expire_all()
    loaded = db.get(Job, job.id)
    assert loaded.started_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert loaded.started_at.utcoffset() == timedelta(0)
    assert loaded.created_at.tzinfo is not None
    assert loaded.payload == {} and loaded.status == "queued"


def test_naive_timestamps_are_refused(db):
    db.add(Job(kind="export", started_at=datetime(2026, 3, 1, 12, 0)))
    with pytest.raises(Exception, match="naive datetime"):
        db.commit()


def test_instance_counts_are_recounted_from_active_instances_only(db):
    from sqlmodel import select

    from app.services.tasks import refresh_instance_counts

    task, other = make_task(db, "A+x", instances=5), make_task(db, "A+y", instances=2)
    assert (task.instance_count, other.instance_count) == (5, 2)
    for instance in db.exec(select(Instance).where(Instance.task_id == task.id).limit(2)):
        instance.status = "flagged"
        db.add(instance)
    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    db.refresh(task)
    db.refresh(other)
    assert (task.instance_count, other.instance_count) == (3, 2)
