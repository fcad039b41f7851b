"""The instruction editor: draft on the left, a live preview on real instances on the right."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Conflict, Invalid, NotFound
from app.models import ImagePlacement, OptionsStyle
from app.prompts.rendering import lint_templates
from app.prompts.specs import render_instance
from app.qc.overlap import most_similar
from app.schemas import DraftIn
from app.schemas.instructions import InstructionIn
from app.schemas.jobs import LintPayload
from app.services import instructions as instruction_service
from app.services import jobs as job_service
from app.services import sampling
from app.services import tasks as task_service
from app.web.deps import ANY_ROLE, EDITORS, BlindfoldDep, CurrentPrincipal, CurrentUser, RowId, SessionDep, settings_of
from app.web.forms import FormDep, validate_form
from app.web.templating import is_htmx, see_other
from app.web.templating import render as render_page

INLINE_LINT_SECONDS = 3.0  # a lint inside a request stops here and carries on as a job
router = APIRouter(tags=["pages"], include_in_schema=False)


@router.post("/tasks/{task_id}/instructions", dependencies=[EDITORS])
def new_instruction(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, task_id: RowId):
    data = validate_form(InstructionIn, form, optional=("label",))
    task = task_service.get_task(session, task_id=task_id)
    instruction = instruction_service.create_instruction(session, task_id=task.id, label=data.label,
                                                         author_id=user.id)
    return see_other(request, f"/instructions/{instruction.id}")


@router.get("/instructions/{instruction_id}", dependencies=[ANY_ROLE])
def editor(request: Request, session: SessionDep, principal: CurrentPrincipal, instruction_id: RowId):
    instruction = instruction_service.get_instruction(session, instruction_id=instruction_id)
    task = task_service.get_task(session, task_id=instruction.task_id)
    can_edit = instruction_service.may_edit(instruction, user_id=principal.user.id,
                                            is_admin=principal.is_admin)
    return render_page(request, "instructions/editor.html", instruction=instruction, task=task, can_edit=can_edit,
                       versions=instruction_service.versions_of(session, instruction_id=instruction.id),
                       comments=instruction_service.review_comments(session, instruction_id=instruction.id),
                       auto_lint=task.instance_count <= settings_of(request).inline_lint_limit,
                       styles=list(OptionsStyle), placements=list(ImagePlacement))


@router.get("/instructions/{instruction_id}/history", dependencies=[ANY_ROLE])
def history(request: Request, session: SessionDep, instruction_id: RowId, a: int | None = None, b: int | None = None):
    """Word-level differences between any two versions (default: the latest two)."""
    instruction = instruction_service.get_instruction(session, instruction_id=instruction_id)
    versions = instruction_service.versions_of(session, instruction_id=instruction.id)
    by_number = {version.number: version for version in versions}
    new = by_number.get(b) if b else (versions[0] if versions else None)
    old = by_number.get(a) if a else (versions[1] if len(versions) > 1 else None)
    if (a and a not in by_number) or (b and b not in by_number):
        raise NotFound("There is no such version of this instruction.")
    diffs = instruction_service.word_diffs(old, new) if old and new else {}
    return render_page(request, "instructions/history.html", instruction=instruction, versions=versions,
                       old=old, new=new, diffs=diffs,
                       task=task_service.get_task(session, task_id=instruction.task_id))


@router.post("/instructions/{instruction_id}/draft", dependencies=[EDITORS])
def save_draft(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep,
               instruction_id: RowId):
    """Autosave and Ctrl+S: answers with the save status and the new draft version (out of band), never
    with the fields themselves, so nothing the author is typing gets replaced."""
    try:
        data = validate_form(DraftIn, form)
        instruction = instruction_service.save_draft(session, instruction_id=instruction_id, data=data,
                                                     actor_id=principal.user.id, is_admin=principal.is_admin)
    except (Invalid, Conflict) as error:
        return render_page(request, "instructions/_draft_status.html", status_code=error.status_code,
                           instruction=None, message=error.message, fields=error.fields, oob=False)
    return render_page(request, "instructions/_draft_status.html", instruction=instruction, message=None, oob=True)


@router.post("/instructions/{instruction_id}/submit", dependencies=[EDITORS])
def submit(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep, instruction_id: RowId):
    """Freezes the draft the editor shows (htmx sends its fields; without script, the saved draft). A refusal
    comes back as the draft's status line, beside the text to fix."""
    try:
        draft = validate_form(DraftIn, form) if "lock_version" in form else None
        instruction_service.submit(session, instruction_id=instruction_id, actor_id=principal.user.id,
                                   is_admin=principal.is_admin, draft=draft)
    except (Invalid, Conflict) as error:
        if not is_htmx(request):
            raise
        return render_page(request, "instructions/_draft_status.html", status_code=error.status_code,
                           instruction=None, message=error.message, fields=error.fields, oob=False)
    return see_other(request, f"/instructions/{instruction_id}")


@router.post("/instructions/{instruction_id}/lint", dependencies=[ANY_ROLE])
def lint_everything(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, form: FormDep,
                    instruction_id: RowId):
    """The unsaved fields checked on every instance of the task: now for a task up to the inline limit (and for
    at most INLINE_LINT_SECONDS), otherwise as a job whose status fragment polls itself until the result is
    there."""
    instruction = instruction_service.get_instruction(session, instruction_id=instruction_id)
    task = task_service.get_task(session, task_id=instruction.task_id)
    settings = settings_of(request)
    spec = instruction_service.spec_of(validate_form(DraftIn, form))
    if any(issue.severity == "error" for issue in lint_templates(spec)):
        # The preview lists what is wrong with the draft itself, once; every instance would only repeat it.
        return render_page(request, "instructions/_lint_all.html", issues=[], checked=0, blocked=True)
    if task.instance_count <= settings.inline_lint_limit:
        try:
            issues = instruction_service.lint_all(
                session, task_id=task.id, spec=spec, token_budget=settings.prompt_token_budget,
                tokenizer_path=settings.tokenizer_path, skip=sorted(blindfold.hidden), seconds=INLINE_LINT_SECONDS)
            return render_page(request, "instructions/_lint_all.html", issues=issues, checked=task.instance_count,
                               blocked=False)
        except instruction_service.LintTooSlow:
            pass  # the whole check, as a job
    job = job_service.enqueue(session, LintPayload(
        task_id=task.id, spec=spec, token_budget=settings.prompt_token_budget,
        skip_instance_ids=sorted(blindfold.hidden),
        tokenizer_path=str(settings.tokenizer_path) if settings.tokenizer_path else None), created_by_id=user.id)
    return render_page(request, "jobs/_status.html", job=job, terminal=False, report=None)


def _unrendered(samples: list[tuple], issues: list) -> str | None:
    """When no sample renders and for one reason, that reason, said once instead of on every sample ("" when the
    draft's own problems, listed above the samples, are the reason)."""
    errors = {error for *_, error in samples}
    if not samples or None in errors:
        return None
    if any(issue.severity == "error" for issue in issues):
        return ""
    return errors.pop() if len(errors) == 1 else None


@router.post("/instructions/{instruction_id}/preview", dependencies=[ANY_ROLE])
def preview(request: Request, session: SessionDep, blindfold: BlindfoldDep, form: FormDep, instruction_id: RowId):
    """The unsaved fields rendered on seeded instances, exactly as the export will render them; never on an
    instance whose target the viewer must not see (any template can print the target)."""
    instruction = instruction_service.get_instruction(session, instruction_id=instruction_id)
    draft = validate_form(DraftIn, form) if "lock_version" in form else DraftIn(lock_version=0)
    spec = instruction_service.spec_of(draft)
    seed = int(form.get("seed", 0)) if str(form.get("seed", "0")).isdigit() else 0
    size = instruction_service.PREVIEW_SIZE
    pinned = [int(part) for part in str(form.get("pinned", "")).split(",") if part.strip().isdigit()][:size]
    samples = []
    for instance, image in sampling.preview_instances(session, task_id=instruction.task_id, seed=seed,
                                                      size=size, pinned=pinned, avoid=sorted(blindfold.hidden)):
        samples.append((instance, image, *render_instance(spec, instance, has_image=image is not None)))
    others = instruction_service.other_tasks_instructions(session, task_id=instruction.task_id)
    similar = most_similar(spec.text, others)
    issues = lint_templates(spec)
    return render_page(request, "instructions/_preview.html", instruction=instruction, samples=samples,
                       issues=issues, seed=seed, similar=similar, unrendered=_unrendered(samples, issues),
                       pinned=[instance.id for instance, *_ in samples if instance.id in pinned])


