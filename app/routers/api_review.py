"""JSON API for review and quality control: the same queues, decisions and checks as the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.models.types import MAX_DB_INT
from app.schemas import (
    API_ERRORS,
    AnswerIn,
    CheckOut,
    DecisionIn,
    JudgementIn,
    ReviewItemOut,
    SolveTestIn,
    SpotCheckIn,
    VerdictIn,
    VersionScoreIn,
)
from app.schemas.stage2 import ConversationVerdictsIn
from app.services import checks, conversation_reviews, queues, reviews, solve_tests, spot_checks, verifications
from app.web.deps import (
    ADMIN,
    ANY_ROLE,
    QC_OPENERS,
    REVIEWERS,
    STRICT_QUERY,
    CurrentPrincipal,
    CurrentUser,
    RowId,
    SessionDep,
    qc_defaults_of,
    settings_of,
)

router = APIRouter(prefix="/api/v1", tags=["review"], responses=API_ERRORS,
                   dependencies=[STRICT_QUERY])
NEXT = {200: {"description": "The item you hold, or the next one claimed for you."},
        204: {"description": "Nothing waits for you in this queue."}}


def item_out(item: queues.ReviewItem) -> ReviewItemOut:
    return ReviewItemOut(queue=item.queue.name, id=item.item.id, lock_version=item.item.lock_version,
                         task_id=item.task.id if item.task else None, task_name=item.task.name if item.task else None,
                         **item.queue.api_fields(item))


@router.get("/review/queues", dependencies=[REVIEWERS])
def queue_counts(request: Request, session: SessionDep, user: CurrentUser) -> dict[str, dict[str, int]]:
    """Per queue: items for you, and undecided items for anyone."""
    return {row.queue.name: {"for_me": row.for_me, "undecided": row.undecided}
            for row in queues.overview(session, reviewer=user,
                                       reviewer_may_verify=settings_of(request).verifier_may_be_reviewer)}


@router.post("/review/{queue_name}/next", dependencies=[REVIEWERS], response_model=ReviewItemOut, responses=NEXT)
def next_item(request: Request, session: SessionDep, user: CurrentUser, queue_name: str,
              skip: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None):
    queue = queues.get_queue(queue_name)
    settings = settings_of(request)
    item_id = queues.next_item(session, queue=queue, user=user, lease_s=settings.review_lease_s, skip=skip,
                               reviewer_may_verify=settings.verifier_may_be_reviewer)
    if item_id is None:
        return Response(status_code=204)
    return item_out(queue.load(session, item_id=item_id, user_id=user.id))


@router.post("/review/instructions/{review_id}/decision", dependencies=[REVIEWERS])
def decide_instruction(request: Request, session: SessionDep, user: CurrentUser, review_id: RowId,
                       data: DecisionIn) -> dict[str, str]:
    review = reviews.decide(session, review_id=review_id, lock_version=data.lock_version, user_id=user.id,
                            decision=data.decision, comment=data.comment,
                            defaults=qc_defaults_of(request))
    return {"decision": review.decision}


@router.post("/review/conversations/{review_id}/decision", dependencies=[REVIEWERS])
def decide_conversation(session: SessionDep, user: CurrentUser, review_id: RowId,
                        data: ConversationVerdictsIn) -> dict[str, str | int | None]:
    """Your verdicts on the conversation you hold: one per answer (gpt turn), with a fixed text or the exchange
    dropped where an answer is wrong; a fix is proposed for a second reviewer (its id is returned)."""
    review = conversation_reviews.decide(session, review_id=review_id, data=data, user_id=user.id)
    return {"outcome": review.outcome, "revision_id": review.revision_id}


@router.post("/review/verify/{review_id}/decision", dependencies=[REVIEWERS])
def decide_verification(request: Request, session: SessionDep, user: CurrentUser, review_id: RowId,
                        data: DecisionIn) -> dict[str, str]:
    review = verifications.decide(session, review_id=review_id, lock_version=data.lock_version, user_id=user.id,
                                  decision=data.decision, comment=data.comment,
                                  reviewer_may_verify=settings_of(request).verifier_may_be_reviewer)
    return {"decision": review.decision}


@router.post("/review/solve/{item_id}/answer", dependencies=[REVIEWERS])
def answer(request: Request, session: SessionDep, user: CurrentUser, item_id: RowId,
           data: AnswerIn) -> dict[str, bool | None]:
    item = solve_tests.answer(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                              text=data.answer, defaults=qc_defaults_of(request))
    return {"matched": item.matched}


@router.post("/review/solve/{item_id}/judgement", dependencies=[REVIEWERS])
def judge(request: Request, session: SessionDep, user: CurrentUser, item_id: RowId,
          data: JudgementIn) -> dict[str, bool | None]:
    item = solve_tests.judge(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                             matched=data.matched, defaults=qc_defaults_of(request))
    return {"matched": item.matched}


@router.post("/review/spot/{item_id}/verdict", dependencies=[REVIEWERS])
def verdict(session: SessionDep, user: CurrentUser, item_id: RowId, data: VerdictIn) -> dict[str, str]:
    spot_checks.record_verdict(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                               verdict=data.verdict, note=data.note)
    return {"verdict": data.verdict}


def solve_out(session, test) -> CheckOut:
    figures = solve_tests.figures(session, test=test)
    return CheckOut(id=test.id, task_id=test.task_id, status=test.status, size=test.size, seed=test.seed,
                    instruction_version_id=test.instruction_version_id, decided=figures.judged,
                    matched=figures.matched, pass_threshold=test.pass_threshold)


def spot_out(session, check) -> CheckOut:
    figures = spot_checks.figures(session, check=check)
    interval = figures.interval
    return CheckOut(id=check.id, task_id=check.task_id, status=check.status, size=check.size, seed=check.seed,
                    instruction_version_id=check.instruction_version_id, decided=figures.decided,
                    errors=figures.errors, error_rate=interval.rate if interval else None,
                    interval_low=interval.low if interval else None, interval_high=interval.high if interval else None,
                    max_error_rate=check.max_error_rate, kappa=figures.kappa,
                    method="targeted" if check.targeted else "uniform",
                    effective_size=figures.weighted.effective_size if figures.weighted else None)


@router.post("/tasks/{task_id}/solve-tests", dependencies=[QC_OPENERS], response_model=CheckOut, status_code=201)
def open_solve_test(request: Request, session: SessionDep, principal: CurrentPrincipal, task_id: RowId,
                    data: SolveTestIn):
    """Settings weaker than the defaults, replacing a running test or following a failed one unchanged: admins,
    with a `reason`."""
    test = solve_tests.open_requested(session, task_id=task_id, data=data, actor_id=principal.user.id,
                                      defaults=qc_defaults_of(request),
                                      is_admin=principal.is_admin)
    return solve_out(session, test)


@router.post("/tasks/{task_id}/spot-checks", dependencies=[QC_OPENERS], response_model=CheckOut, status_code=201)
def open_spot_check(request: Request, session: SessionDep, principal: CurrentPrincipal, task_id: RowId,
                    data: SpotCheckIn):
    """Settings weaker than the defaults, replacing a running check or following a failed one unchanged, and
    targeted draws: admins (all but the last with a `reason`)."""
    check = spot_checks.open_requested(session, task_id=task_id, data=data, actor_id=principal.user.id,
                                       defaults=qc_defaults_of(request),
                                       is_admin=principal.is_admin)
    return spot_out(session, check)


@router.post("/versions/{version_id}/targeted-spot-checks", dependencies=[ADMIN],
             response_model=list[CheckOut], status_code=201)
def audit_version(request: Request, session: SessionDep, user: CurrentUser, version_id: RowId, data: VersionScoreIn):
    """Admins: a targeted spot check of every task of a ready version, drawn by the model's doubt (each task must
    be scored by it); all or none."""
    opened = spot_checks.open_targeted_for_version(session, version_id=version_id, model_id=data.model_id,
                                                   defaults=qc_defaults_of(request),
                                                   actor_id=user.id)
    return [spot_out(session, check) for check in opened]


@router.get("/solve-tests/{test_id}", dependencies=[ANY_ROLE], response_model=CheckOut)
def get_solve_test(session: SessionDep, test_id: RowId):
    return solve_out(session, checks.get(session, checks.SOLVE, check_id=test_id))


@router.get("/spot-checks/{check_id}", dependencies=[ANY_ROLE], response_model=CheckOut)
def get_spot_check(session: SessionDep, check_id: RowId):
    return spot_out(session, checks.get(session, checks.SPOT, check_id=check_id))
