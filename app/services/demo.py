"""A small demo workspace: four tasks over generated images, instructions in several states, four users,
and one task taken through review, a blind solve test and a spot check by the real services (so the
dashboard has figures and a verification waits in the queue), and a stage-2 pool of conversations; the model half
(a ready version, the tiny model) is `demo_models.load_model_half`.

Loaded once into an empty database (`make run` / `python -m app demo`); running it again changes nothing.
Passwords are generated, never fixed, and kept for the local user in `<data dir>/demo-credentials.txt`
(mode 0600) so that a second `make run` can print them again."""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw
from sqlmodel import Session, select

from app.core.storage import Media, MediaStore
from app.models import (
    Decision,
    Instance,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    ReviewSubject,
    Role,
    SolveTestItem,
    SourceDataset,
    SpotCheck,
    SpotCheckItem,
    Task,
    TaskGroup,
    TaskStatus,
    User,
    utcnow,
)
from app.schemas import UserCreate
from app.services import audit, demo_models, queues, reviews, solve_tests, spot_checks
from app.services import users as user_service
from app.services.images import add_image
from app.services.qc import QcDefaults
from app.services.tasks import refresh_instance_counts

INSTANCES_PER_TASK = 24
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
DEMO_USERS = (
    ("admin@studio.local", "Ada Admin", [Role.admin, Role.author, Role.reviewer], False),
    ("author@studio.local", "Arun Author", [Role.author], False),
    ("reviewer@studio.local", "Rita Reviewer", [Role.reviewer], True),
    ("reviewer2@studio.local", "Ravi Reviewer", [Role.reviewer], False),
)


@dataclass(frozen=True)
class DemoResult:
    created: bool
    credentials_file: Path
    credentials: list[tuple[str, str]]


def load_demo(session: Session, *, data_dir: Path, media: Media | None = None,
              seed: int = 7) -> DemoResult:
    """Demo users, tasks and instances, once; the images go to `media` (default: `media` in the data dir)."""
    credentials_file = data_dir / "demo-credentials.txt"
    if session.exec(select(User.id)).first() is not None:
        return DemoResult(False, credentials_file, _read_credentials(credentials_file))
    rng = random.Random(seed)
    store = media or MediaStore(data_dir / "media")
    people = {}
    credentials = []
    for email, name, roles, native in DEMO_USERS:
        user, password = user_service.create_user(
            session, data=UserCreate(email=email, display_name=name, roles=roles, native_english=native),
            actor_id=None, commit=False)
        people[email.split("@")[0]] = user
        credentials.append((email, password))
    _write_credentials(credentials_file, credentials)
    admin, author = people["admin"], people["author"]

    shapes = _dataset(session, "SHAPES", "Synthetic shapes drawn for the demo.", admin.id)
    colours = _dataset(session, "COLORS", "Synthetic colour swatches drawn for the demo.", admin.id)
    specs = [
        (shapes, "SHAPES+shape_classification", TaskGroup.classification, "Perception", TaskStatus.in_review),
        (shapes, "SHAPES+shape_counting", TaskGroup.question_answering, "Counting", TaskStatus.in_review),
        (colours, "COLORS+dominant_color", TaskGroup.question_answering, "Color", TaskStatus.draft),
        (colours, "COLORS+scene_caption", TaskGroup.generation, "Captioning", TaskStatus.changes_requested),
    ]
    tasks = {name: _task(session, dataset, name, group, category, status, admin.id)
             for dataset, name, group, category, status in specs}
    for task in tasks.values():
        _instances(session, store, task, rng)
    refresh_instance_counts(session, task_ids=[task.id for task in tasks.values()])

    # Ravi reviews the shapes task and Rita, the native speaker, solves it: she (and the admin) can then verify
    # it, since whoever approves an instruction does not verify it.
    _instruction(session, tasks["SHAPES+shape_classification"], author, people["reviewer2"],
                 "Identify the shape shown in the image. Choose one of the options.", "",
                 InstructionStatus.in_review, None, None)
    _instruction(session, tasks["SHAPES+shape_counting"], author, people["reviewer2"],
                 "Count the shapes in the image.", "There are {{ raw_output }} shapes in the image.",
                 InstructionStatus.in_review, None, None)
    _instruction(session, tasks["COLORS+dominant_color"], author, None,
                 "Name the colour that covers most of the image.", "", InstructionStatus.draft, None, None)
    _instruction(session, tasks["COLORS+scene_caption"], author, people["reviewer"],
                 "Describe the picture.", "", InstructionStatus.changes_requested, Decision.request_changes,
                 "Too vague: say what to describe (shapes, colours, their number) and how long the answer is.")
    session.commit()
    _quality_work(session, tasks["SHAPES+shape_classification"], people["reviewer2"], people["reviewer"])
    demo_models.add_pool(session, rng=rng)
    return DemoResult(True, credentials_file, credentials)


def _quality_work(session: Session, task: Task, reviewer: User, solver: User) -> None:
    """The reviewer approves; the other reviewer solves blind and spot-checks (finding one bad target):
    the task ends up accepted, with its final verification waiting in the queue."""
    def next_item(queue: queues.ReviewQueue, user: User) -> int | None:
        return queues.next_item(session, queue=queue, user=user, lease_s=600)

    defaults = QcDefaults(solve_test_size=10, solve_test_pass=9)
    review_id = next_item(queues.INSTRUCTIONS, reviewer)
    reviews.decide(session, review_id=review_id, lock_version=session.get(Review, review_id).lock_version,
                   user_id=reviewer.id, decision=Decision.approve, comment=None, defaults=defaults)
    while (item_id := next_item(queues.SOLVE, solver)) is not None:
        item = session.get(SolveTestItem, item_id, populate_existing=True)
        target = session.get(Instance, item.instance_id).raw_output
        solve_tests.answer(session, item_id=item_id, lock_version=item.lock_version, user_id=solver.id, text=target,
                           defaults=defaults)
    # The bad target is the check's lowest instance, not its first in queue order (drawn afresh on each run),
    # so every demo flags the same instance and builds the same versions.
    flagged = session.exec(select(SpotCheckItem.id).join(SpotCheck).where(SpotCheck.task_id == task.id)
                           .order_by(SpotCheckItem.instance_id)).first()
    while (item_id := next_item(queues.SPOT, solver)) is not None:
        spot_item = session.get(SpotCheckItem, item_id, populate_existing=True)
        wrong = item_id == flagged
        spot_checks.record_verdict(session, item_id=item_id, lock_version=spot_item.lock_version, user_id=solver.id,
                                   verdict="wrong_target" if wrong else "correct",
                                   note="The drawing is a square, not a circle." if wrong else None)


def _dataset(session: Session, name: str, notes: str, actor_id: int) -> SourceDataset:
    dataset = SourceDataset(name=name, notes=notes, licence="CC0-1.0", url="https://example.org/" + name.lower())
    session.add(dataset)
    session.flush()
    audit.record(session, actor_id=actor_id, action="dataset.create", entity_type="source_dataset",
                 entity_id=dataset.id, after={"name": name})
    return dataset


def _task(session, dataset, name, group, category, status, actor_id) -> Task:
    task = Task(name=name, source_dataset_id=dataset.id, task_group=group, category=category, status=status)
    session.add(task)
    session.flush()
    audit.record(session, actor_id=actor_id, action="task.create", entity_type="task", entity_id=task.id,
                 after={"name": name, "status": str(status)})
    return task


def _instances(session: Session, store: Media, task: Task, rng: random.Random) -> None:
    kind = task.name.split("+")[1]
    for k in range(INSTANCES_PER_TASK):
        shape, colour, count = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.randint(1, 4)
        image = add_image(session, store, _draw(shape, colour, count, rng))
        options, input_text = None, None
        if kind == "shape_classification":
            options, raw = list(SHAPES), shape
        elif kind == "shape_counting":
            raw, input_text = str(count), f"Count the {shape}s."
        elif kind == "dominant_color":
            raw = colour
        else:
            raw = f"{count} {colour} {shape}{'s' if count > 1 else ''} on a white background."
        session.add(Instance(task_id=task.id, source_id=f"{kind}-{k:04d}", image_id=image.id, options=options,
                             input_text=input_text, raw_output=raw, rkey=rng.getrandbits(31),
                             split="train" if k % 6 else "validation"))
    session.flush()


def _draw(shape: str, colour: str, count: int, rng: random.Random) -> bytes:
    picture = PILImage.new("RGB", (128, 128), "white")
    pen = ImageDraw.Draw(picture)
    for _ in range(count):
        x, y, r = rng.randint(20, 108), rng.randint(20, 108), rng.randint(8, 16)
        box = (x - r, y - r, x + r, y + r)
        if shape == "circle":
            pen.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            pen.rectangle(box, fill=COLOURS[colour])
        else:
            pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=COLOURS[colour])
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _instruction(session, task, author, reviewer, text, output_template, status, decision, comment) -> None:
    instruction = Instruction(task_id=task.id, author_id=author.id, status=status, draft_text=text,
                              draft_output_template=output_template, draft_saved_at=utcnow())
    session.add(instruction)
    session.flush()
    if status == InstructionStatus.draft:
        return
    version = InstructionVersion(instruction_id=instruction.id, number=1, text=text,
                                 output_template=output_template, status=status, author_id=author.id)
    session.add(version)
    session.flush()
    session.add(Review(subject=ReviewSubject.instruction_version, instruction_version_id=version.id,
                       task_id=task.id, reviewer_id=reviewer.id, decision=decision, comment=comment,
                       decided_at=utcnow() if decision else None))
    audit.record(session, actor_id=author.id, action="instruction.submit", entity_type="instruction_version",
                 entity_id=version.id, after={"task": task.name, "number": 1})
    if decision:
        audit.record(session, actor_id=reviewer.id, action="review.decide", entity_type="instruction_version",
                     entity_id=version.id, after={"decision": str(decision), "comment": comment})


def _write_credentials(path: Path, credentials: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Demo accounts, generated on first run. Change or delete them before sharing this studio.\n")
        out.writelines(f"{email}\t{password}\n" for email, password in credentials)


def _read_credentials(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return [(email, password) for email, password in rows]
