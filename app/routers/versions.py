"""Dataset versions: the list, a new version's form, one version with its counts and files, downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.core.failures import Conflict, Invalid
from app.qc.stats import FEWEST_TO_TELL
from app.schemas import FinetuneIn, VersionNaming, VersionScoreIn
from app.schemas.export_spec import SUGGESTED_VALIDATION_RATIO, ExportSpec
from app.schemas.recipe import RECIPES, RecipeName
from app.services import jobs as job_service
from app.services import registered_models as model_service
from app.services import scores as score_service
from app.services import spot_checks, version_files, version_fixes
from app.services import versions as version_service
from app.web import markdown
from app.web.deps import (
    ADMIN,
    ANY_ROLE,
    EDITORS,
    PREVIEWERS,
    BlindfoldDep,
    CurrentPrincipal,
    CurrentUser,
    RowId,
    SessionDep,
    qc_defaults_of,
    settings_of,
)
from app.web.forms import FormDep, defaults_of, form_feedback, validate_form
from app.web.sending import send_file
from app.web.templating import render, see_other

router = APIRouter(prefix="/versions", tags=["pages"], include_in_schema=False)


@router.get("", dependencies=[ANY_ROLE])
def version_list(request: Request, session: SessionDep):
    return _list_page(request, session)


def _list_page(request: Request, session, *, values=None, error: Invalid | Conflict | None = None):
    """The list with the new-version form; after a refused form, a 422 (or 409) that keeps what was sent and
    says what is wrong beside each field."""
    choices = version_service.form_choices(session, with_failed=request.state.principal.is_admin)
    defaults = {**defaults_of(ExportSpec), "validation_ratio": SUGGESTED_VALIDATION_RATIO}
    return render(request, "versions/page.html", "versions/_form.html", versions=version_service.list_versions(session),
                  values=values, defaults=defaults, **form_feedback(error), **choices,
                  thin=_thin_split(session, values, defaults, choices["tasks"]), fewest=FEWEST_TO_TELL)


def _thin_split(session, values, defaults, tasks) -> version_service.ThinSplit | None:
    """The form's warning as first drawn: for what was sent, or the verified tasks (ticked) at the default share."""
    if values is None:
        return _estimate(session, [task.id for task in tasks if task.status == "verified"],
                         str(defaults["validation_ratio"]), str(defaults["per_task_cap"]))
    ids = [int(value) for value in values.getlist("task_ids") if value.isdigit()]
    return _estimate(session, ids, values.get("validation_ratio", ""), values.get("per_task_cap", ""))


def _estimate(session, task_ids: list[int], validation_ratio: str, per_task_cap: str
              ) -> version_service.ThinSplit | None:
    """The warning for the form's values as typed; values the form would refuse draw none (the form says why)."""
    try:
        ratio = float(validation_ratio)
        cap = int(per_task_cap) if per_task_cap.strip() else None
    except ValueError:
        return None
    return version_service.thin_split(session, task_ids=task_ids, ratio=ratio, cap=cap)


@router.post("", dependencies=[EDITORS])
def create_version(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep):
    try:
        spec = validate_form(ExportSpec, form, lists=("task_ids", "layouts"),
                             optional=("conversation_pool_id", "model_family"),
                             checkboxes=("images_as_tar", "stage2_unreviewed", "stage2_by_kind"))
        named = validate_form(VersionNaming, form, optional=("name", "qc_override_reason"))
        version = version_service.create(session, spec=spec, name=named.name, actor_id=principal.user.id,
                                         qc_override_reason=named.qc_override_reason,
                                         may_override=principal.is_admin,
                                         exports_on_bucket=version_files.on_object_storage(settings_of(request)))
    except (Invalid, Conflict) as error:
        return _list_page(request, session, values=form, error=error)
    return see_other(request, f"/versions/{version.id}")


@router.get("/validation-estimate", dependencies=[EDITORS])
def validation_estimate(request: Request, session: SessionDep,
                        task_ids: Annotated[list[int], Query(max_length=10_000)] = [],  # noqa: B006 (FastAPI copies it)
                        validation_ratio: str = "", per_task_cap: str = ""):
    """The new-version form's warning, redrawn as it is filled: ticked tasks the validation share would give too
    few records to read a fine-tune's change on."""
    return render(request, "versions/_validation_estimate.html", fewest=FEWEST_TO_TELL,
                  thin=_estimate(session, task_ids, validation_ratio, per_task_cap))


@router.get("/trace", dependencies=[ANY_ROLE])
def trace(request: Request, session: SessionDep, blindfold: BlindfoldDep, id: Annotated[str, Query(max_length=300)]):
    """Where an exported record comes from: its id names the task, the instance and the instruction version;
    this page shows them with the version's reviews, the instance's spot-check verdicts and the fixes that made
    its values (not to someone who must not see its target now)."""
    origin = version_service.trace(session, record_id=id)
    return render(request, "versions/trace.html", record_id=id, origin=origin,
                  fixes_hidden=blindfold.hides(origin.instance.id))


@router.get("/diff", dependencies=[ANY_ROLE])
def version_diff(request: Request, session: SessionDep, blindfold: BlindfoldDep, a: int, b: int):
    """What changed from version a to version b, task by task, and the records fixes changed."""
    older, newer = version_service.get(session, version_id=a), version_service.get(session, version_id=b)
    return render(request, "versions/diff.html", older=older, newer=newer,
                  changes=version_service.diff(older, newer),
                  fixed=version_fixes.fixed_between(session, older, newer, blindfold=blindfold))


@router.get("/{version_id}", dependencies=[ANY_ROLE])
def version_detail(request: Request, session: SessionDep, version_id: RowId,
                   recipe: RecipeName = "paper"):
    return _detail_page(request, session, version_service.get(session, version_id=version_id), recipe=recipe)


def _detail_page(request: Request, session, version, *, values=None, error: Invalid | Conflict | None = None,
                 recipe: RecipeName = "paper"):
    """The version with its files, counts, fine-tunes and previews, its fine-tune form filled from `recipe`; after
    a refused fine-tune form, a 422 (or 409) that keeps what was sent and says what is wrong beside each field."""
    job = job_service.get_job(session, job_id=version.job_id) if version.job_id else None
    per_task, categories = version_service.instances_by_category(session, version)
    others = [other for other in version_service.list_versions(session)
              if other.id != version.id and other.status == "ready"]
    models = model_service.list_models(session)
    return render(request, "versions/detail.html", "versions/_finetune_form.html", version=version, job=job,
                  others=others, models=models, terminal=job is None or job.status in job_service.TERMINAL,
                  per_task=per_task, categories=categories, has_stage2=version_service.has_stage2(version),
                  has_validation=version_service.has_validation(version),
                  thin=version_service.thin_validation(version), fewest=FEWEST_TO_TELL,
                  names={model.id: model.name for model in models}, values=values, recipes=RECIPES, recipe=recipe,
                  length_rule=version_service.length_rule(version),
                  defaults={**defaults_of(FinetuneIn), **RECIPES[recipe][1]},
                  scoring=defaults_of(VersionScoreIn),
                  **form_feedback(error),
                  **version_service.model_work(session, version_id=version.id))


@router.get("/{version_id}/card", dependencies=[ANY_ROLE])
def version_card(request: Request, session: SessionDep, version_id: RowId):
    """The dataset card, rendered, to read without downloading it."""
    version = version_service.get(session, version_id=version_id)
    return render(request, "versions/card.html", version=version,
                  card=markdown.to_html(version_service.card_text(settings_of(request), version)))


@router.get("/{version_id}/files/{name:path}", dependencies=[ANY_ROLE])
def version_file(request: Request, session: SessionDep, version_id: RowId, name: str):
    version = version_service.get(session, version_id=version_id)
    file = version_service.file_of(settings_of(request), version, name)
    return send_file(file, headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.post("/{version_id}/finetune", dependencies=[EDITORS])
def finetune(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, version_id: RowId):
    """Queues the two-stage fine-tune of a base model on this version; its job page draws the loss live."""
    version = version_service.get(session, version_id=version_id)
    try:
        data = validate_form(FinetuneIn, form, checkboxes=("lora",), optional=("max_steps",))
        job = version_service.start_finetune(session, version_id=version.id, data=data, actor_id=user.id)
    except (Invalid, Conflict) as error:
        recipe = form.get("recipe")
        return _detail_page(request, session, version, values=form, error=error,
                            recipe=recipe if recipe in RECIPES else "paper")
    return see_other(request, f"/jobs/{job.id}")


@router.post("/{version_id}/scores", dependencies=[PREVIEWERS])
def score(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, version_id: RowId):
    """Scores every task of the version with a model, each with the instruction versions its records used; the
    Jobs page lists the score jobs."""
    data = validate_form(VersionScoreIn, form)
    score_service.start_for_version(session, version_id=version_id, model_id=data.model_id,
                                    batch_size=data.batch_size, actor_id=user.id)
    return see_other(request, "/jobs?kind=score")


@router.post("/{version_id}/targeted-spot-checks", dependencies=[ADMIN])
def audit(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, version_id: RowId):
    """An admin's audit: a targeted spot check of every task of the version, drawn by a model's doubt."""
    data = validate_form(VersionScoreIn, form)
    spot_checks.open_targeted_for_version(session, version_id=version_id, model_id=data.model_id,
                                          defaults=qc_defaults_of(request),
                                          actor_id=user.id)
    return see_other(request, "/review/spot")


@router.post("/{version_id}/delete", dependencies=[ADMIN])
def delete_version(request: Request, session: SessionDep, user: CurrentUser, version_id: RowId):
    version_service.delete(session, settings_of(request), version_id=version_id, actor_id=user.id)
    return see_other(request, "/versions")
