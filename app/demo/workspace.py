"""The demo workspace: four users, two source datasets with four tasks over generated pictures, their
instructions in several states, and one task taken through review, a blind solve test and a spot check, so
the dashboard has figures and a verification waits in the queue; and a stage-2 pool of conversations. The
model half (a ready version, the tiny model) is `model_half.load_model_half`.

Everything goes in as a team's would: the files `source_files` writes are taken in by the import (its checks of
every record and picture included), and the review work is done through the queues and the services.
Loaded once into an empty database (`make run` / `python -m app demo`); running it again changes nothing.
Passwords are generated, never fixed, and kept for the local user in `<data dir>/demo-credentials.txt`
(mode 0600) so that a second `make run` can print them again."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from app.core.failures import Invalid
from app.core.storage import Media, MediaStore
from app.demo.source_files import HALLUCINATION, INSTANCES, TRUTH, write_source_files
from app.ingest.requests import ConversationImport, ImportRequest, InstanceImport, InstructionImport, MetadataImport
from app.models import (
    ConversationItem,
    ConversationReview,
    Decision,
    Instance,
    Review,
    Revision,
    Role,
    SolveTestItem,
    SpotCheck,
    SpotCheckItem,
    Task,
    User,
)
from app.schemas import UserCreate
from app.schemas.revisions import RevisionDecisionIn
from app.schemas.stage2 import ConversationVerdictsIn
from app.services import conversation_reviews, corrections, queues, reviews, solve_tests, spot_checks
from app.services import users as user_service
from app.services.qc import QcDefaults

__all__ = ["INSTANCES", "POOL", "DemoResult", "load_demo"]

POOL = "demo-conversations"
DEMO_USERS = (
    ("admin@studio.local", "Ada Admin", [Role.admin, Role.author, Role.reviewer], False),
    ("author@studio.local", "Arun Author", [Role.author], False),
    ("reviewer@studio.local", "Rita Reviewer", [Role.reviewer], True),
    ("reviewer2@studio.local", "Ravi Reviewer", [Role.reviewer], False),
)
CHANGES_ASKED = "Too vague: say what to describe (shapes, colours, their number) and how long the answer is."


@dataclass(frozen=True)
class DemoResult:
    created: bool
    credentials_file: Path
    credentials: list[tuple[str, str]]
    source_files: Path  # the files the demo imported: an example of each import format


def load_demo(session: Session, *, data_dir: Path, media: Media | None = None,
              seed: int = 7) -> DemoResult:
    """Demo users, tasks and instances, once; the images go to `media` (default: `media` in the data dir)."""
    credentials_file, folder = data_dir / "demo-credentials.txt", data_dir / "demo-files"
    if session.exec(select(User.id)).first() is not None:
        return DemoResult(False, credentials_file, _read_credentials(credentials_file), folder)
    people = {}
    credentials = []
    for email, name, roles, native in DEMO_USERS:
        user, password = user_service.create_user(
            session, data=UserCreate(email=email, display_name=name, roles=roles, native_english=native),
            actor_id=None, commit=False)
        people[email.split("@")[0]] = user
        credentials.append((email, password))
    session.commit()
    _write_credentials(credentials_file, credentials)

    files = write_source_files(folder, seed=seed)
    store = media or MediaStore(data_dir / "media")
    admin, author = people["admin"].id, people["author"].id
    images = str(files.images)
    _take_in(session, store, MetadataImport(format="metadata", file=str(files.metadata)), admin)
    _take_in(session, store, InstanceImport(format="unified", file=str(files.instances), image_root=images), admin)
    _take_in(session, store, InstructionImport(format="instructions", file=str(files.instruction_drafts)), author)
    _take_in(session, store, InstructionImport(format="instructions", file=str(files.instructions), submit=True),
             author)
    _take_in(session, store, ConversationImport(format="conversations", file=str(files.conversations),
                                                image_root=images, pool=POOL), admin)
    _quality_work(session, [people["reviewer"], people["reviewer2"], people["admin"]])
    _stage2_review(session, people["reviewer"], people["reviewer2"])
    return DemoResult(True, credentials_file, credentials, folder)


def _take_in(session: Session, media: Media, request: ImportRequest, actor_id: int) -> None:
    """One import, as the command line runs it; the demo's own files must import whole."""
    report = request.run(engine=session.get_bind(), media=media, located=request.locate(None), actor_id=actor_id)
    if getattr(report, "rejected_count", 0):
        raise Invalid(f"The demo's {request.format} file was refused in part: {report.summary()}")
    session.expire_all()  # the import wrote through its own connections


def _quality_work(session: Session, reviewers: list[User]) -> None:
    """Each submitted instruction is decided by the reviewer it was assigned to (drawn, as for any team): the
    caption's gets changes asked for, the shapes task's is approved and the counting task's waits. Another
    reviewer (the native speaker first) then solves the shapes task blind and spot-checks it, finding one bad
    target: the task ends up accepted, with its final verification waiting in the queue."""
    defaults = QcDefaults(solve_test_size=10, solve_test_pass=9)

    def next_item(queue: queues.ReviewQueue, user: User) -> int | None:
        return queues.next_item(session, queue=queue, user=user, lease_s=600)

    def decide_review_of(task_name: str, decision: Decision, comment: str | None) -> User:
        review = session.exec(select(Review).join(Task, Task.id == Review.task_id)
                              .where(Task.name == task_name, Review.decided_at.is_(None))).one()
        reviewer = next(user for user in reviewers if user.id == review.reviewer_id)
        offered = next_item(queues.INSTRUCTIONS, reviewer)
        assert offered == review.id, "a reviewer is offered their oldest review first"
        reviews.decide(session, review_id=review.id, lock_version=session.get(Review, review.id).lock_version,
                       user_id=reviewer.id, decision=decision, comment=comment, defaults=defaults)
        return reviewer

    decide_review_of("COLORS+scene_caption", Decision.request_changes, CHANGES_ASKED)
    approver = decide_review_of("SHAPES+shape_classification", Decision.approve, None)
    solver = next(user for user in reviewers if user.id != approver.id)
    while (item_id := next_item(queues.SOLVE, solver)) is not None:
        item = session.get(SolveTestItem, item_id, populate_existing=True)
        target = session.get(Instance, item.instance_id).raw_output
        solve_tests.answer(session, item_id=item_id, lock_version=item.lock_version, user_id=solver.id, text=target,
                           defaults=defaults)
    # The bad target is the check's lowest instance, not its first in queue order (drawn afresh on each run),
    # so every demo flags the same instance and builds the same versions.
    flagged = session.exec(select(SpotCheckItem.id).join(SpotCheck)
                           .join(Task, Task.id == SpotCheck.task_id).where(Task.name == "SHAPES+shape_classification")
                           .order_by(SpotCheckItem.instance_id)).first()
    while (item_id := next_item(queues.SPOT, solver)) is not None:
        spot_item = session.get(SpotCheckItem, item_id, populate_existing=True)
        wrong = item_id == flagged
        spot_checks.record_verdict(session, item_id=item_id, lock_version=spot_item.lock_version, user_id=solver.id,
                                   verdict="wrong_target" if wrong else "correct",
                                   note="The drawing is a square, not a circle." if wrong else None)


STAGE2_READ = 12  # of the demo pool's 16 conversations: the rest wait in the queue for whoever tries it


def _stage2_review(session: Session, reader: User, second: User) -> None:
    """A reviewer reads most of the demo pool in the queue's order and finds the answer that sees a dog; their fix
    is accepted by a second reviewer. Stage 2 draws from what review passed."""
    for _ in range(STAGE2_READ):
        review_id = queues.next_item(session, queue=queues.CONVERSATIONS, user=reader, lease_s=600)
        if review_id is None:
            return
        review = session.get(ConversationReview, review_id, populate_existing=True)
        turns = session.get(ConversationItem, review.conversation_id).conversations
        answers = [index for index, turn in enumerate(turns) if turn["from"] == "gpt"]
        fix = {"verdict": "hallucinated_object", "note": "There is no dog in the picture.", "text": TRUTH} \
            if turns[answers[-1]]["value"] == HALLUCINATION else None
        verdicts = [{"turn": index, "verdict": "correct", **(fix if fix and index == answers[-1] else {})}
                    for index in answers]
        decided = conversation_reviews.decide(session, review_id=review.id, user_id=reader.id, data=(
            ConversationVerdictsIn(lock_version=review.lock_version, turns=verdicts)))
        if decided.revision_id is not None:
            held = queues.next_item(session, queue=queues.CORRECTIONS, user=second, lease_s=600)
            revision = session.get(Revision, held, populate_existing=True)
            corrections.decide(session, revision_id=revision.id, user_id=second.id,
                               data=RevisionDecisionIn(decision="accept", lock_version=revision.lock_version))


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
