"""The demo workspace: real tasks, instances and images, instructions in several states, once."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from app.core.storage import MediaStore
from app.demo.workspace import INSTANCES, load_demo
from app.ingest.requests import InstanceImport
from app.models import (
    AuditEvent,
    Image,
    Instance,
    Instruction,
    InstructionVersion,
    Review,
    SolveTest,
    SpotCheck,
    SpotCheckItem,
    Task,
    User,
)
from tests.factories import login, soup


def test_demo_builds_a_workspace_once(db, settings):
    result = load_demo(db, data_dir=settings.data_dir)
    assert result.created and len(result.credentials) == 4
    tasks = {task.name: task for task in db.exec(select(Task)).all()}
    assert {task.status for task in tasks.values()} == {"accepted", "in_review", "draft", "changes_requested"}
    assert db.exec(select(func.count()).select_from(Instance)).one() == INSTANCES
    statuses = set(db.exec(select(Instruction.status)).all())
    assert statuses == {"draft", "in_review", "changes_requested", "approved"}
    assert db.exec(select(func.count()).select_from(InstructionVersion)).one() == 3
    # One task went through review, a passed solve test and a spot check that found one bad target.
    shapes = tasks["SHAPES+shape_classification"]
    assert shapes.status == "accepted" and shapes.flagged_count == 1
    # the same instance on every run (the check's queue order is drawn afresh): versions of it are the same too
    first = db.exec(select(func.min(SpotCheckItem.instance_id))).one()
    assert db.exec(select(Instance.id).where(Instance.status == "flagged")).all() == [first]
    assert db.exec(select(SolveTest.status)).all() == ["passed"]
    assert db.exec(select(SpotCheck.status)).all() == ["passed"]
    pending = db.exec(select(Review.subject).where(Review.decision.is_(None))).all()
    assert sorted(pending) == ["instruction_version", "task_verification", "task_verification"]
    store = MediaStore(settings.media_dir)
    images = db.exec(select(Image)).all()
    assert images and all(store.exists(image.sha256) and image.format == "png" for image in images)
    assert all(inst.image_id for inst in db.exec(select(Instance)).all())

    # It came in through the import, whose files stay as examples: importing them again finds nothing new.
    actions = set(db.exec(select(AuditEvent.action)).all())
    assert {"dataset.create", "task.create", "import.unified", "import.conversations", "instruction.submit"} <= actions
    request = InstanceImport(format="unified", file=str(result.source_files / "instances.jsonl"),
                             image_root=str(result.source_files / "images"))
    report = request.run(engine=db.get_bind(), media=store, located=request.locate(None), actor_id=None)
    assert (report.imported, report.duplicates) == (0, INSTANCES)

    again = load_demo(db, data_dir=settings.data_dir)
    assert not again.created and again.credentials == result.credentials
    assert db.exec(select(func.count()).select_from(User)).one() == 4


def test_demo_accounts_sign_in(client, db, settings):
    result = load_demo(db, data_dir=settings.data_dir)
    email, password = result.credentials[0]
    login(client, email, password)
    page = soup(client.get("/tasks"))
    assert len(page.select("table.tasks tbody tr")) == 3  # page size 3 in tests, 4 tasks
