"""JSON API for instructions, with the editor's rules: anyone signed in reads; authors and admins create; only
the draft's author (or an admin) saves and submits it; a save from a stale lock_version is a 409."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas import API_ERRORS, DraftIn
from app.schemas.instructions import InstructionDiffOut, InstructionIn, InstructionOut, InstructionVersionOut
from app.services import instructions as instruction_service
from app.services import tasks as task_service
from app.web.deps import ANY_ROLE, EDITORS, STRICT_QUERY, CurrentPrincipal, CurrentUser, RowId, SessionDep

router = APIRouter(prefix="/api/v1", tags=["instructions"], responses=API_ERRORS, dependencies=[STRICT_QUERY])


@router.get("/tasks/{task_id}/instructions", dependencies=[ANY_ROLE], response_model=list[InstructionOut])
def list_instructions(session: SessionDep, task_id: RowId):
    task = task_service.get_task(session, task_id=task_id)
    return [InstructionOut.of(instruction) for instruction in task_service.instructions_of(session, task_id=task.id)]


@router.post("/tasks/{task_id}/instructions", dependencies=[EDITORS], response_model=InstructionOut,
             status_code=201)
def create_instruction(session: SessionDep, user: CurrentUser, task_id: RowId, data: InstructionIn):
    """An empty draft, owned by the caller."""
    task = task_service.get_task(session, task_id=task_id)
    return InstructionOut.of(instruction_service.create_instruction(session, task_id=task.id, label=data.label,
                                                                    author_id=user.id))


@router.get("/instructions/{instruction_id}", dependencies=[ANY_ROLE], response_model=InstructionOut)
def get_instruction(session: SessionDep, instruction_id: RowId):
    return InstructionOut.of(instruction_service.get_instruction(session, instruction_id=instruction_id))


@router.put("/instructions/{instruction_id}/draft", dependencies=[EDITORS], response_model=InstructionOut)
def save_draft(session: SessionDep, principal: CurrentPrincipal, instruction_id: RowId, data: DraftIn):
    """Saves the draft if `lock_version` is the current one (the answer carries the next); otherwise 409, and
    nothing is overwritten: load the instruction again and merge."""
    return InstructionOut.of(instruction_service.save_draft(
        session, instruction_id=instruction_id, data=data, actor_id=principal.user.id,
        is_admin=principal.is_admin))


@router.post("/instructions/{instruction_id}/submit", dependencies=[EDITORS], response_model=InstructionVersionOut,
             status_code=201)
def submit(session: SessionDep, principal: CurrentPrincipal, instruction_id: RowId):
    """Freezes the saved draft as the next version and opens its review. Refused (422) when the draft is empty
    or its templates fail the lint or the editor's preview sample."""
    return instruction_service.submit(session, instruction_id=instruction_id, actor_id=principal.user.id,
                                      is_admin=principal.is_admin)


@router.get("/instructions/{instruction_id}/versions", dependencies=[ANY_ROLE],
            response_model=list[InstructionVersionOut])
def list_versions(session: SessionDep, instruction_id: RowId):
    """Newest first."""
    instruction = instruction_service.get_instruction(session, instruction_id=instruction_id)
    return instruction_service.versions_of(session, instruction_id=instruction.id)


@router.get("/instructions/{instruction_id}/versions/{older}/diff/{newer}", dependencies=[ANY_ROLE],
            response_model=InstructionDiffOut)
def diff_versions(session: SessionDep, instruction_id: RowId, older: RowId, newer: RowId):
    """Word-level differences between two versions, by number."""
    old, new = (instruction_service.version_numbered(session, instruction_id=instruction_id, number=number)
                for number in (older, newer))
    pieces = {field: [{"kind": kind, "text": text} for kind, text in diff]
              for field, diff in instruction_service.word_diffs(old, new).items()}
    changed = [name for name in ("options_style", "image_placement") if getattr(old, name) != getattr(new, name)]
    return InstructionDiffOut(older=old.number, newer=new.number, settings_changed=changed, **pieces)
