"""The reviewer's queues: one "next item" page per queue, driven by the keyboard (static/review.js).

Deciding answers with the next item's fragment, so a reviewer goes from one item to the next in one round
trip. A decision on a stale page is a 409 that says what happened, and nothing is overwritten."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from app.core.failures import Invalid
from app.schemas import AnswerIn, DecisionIn, JudgementIn, SkipIn, VerdictIn
from app.schemas.revisions import InstanceFixIn, RevisionDecisionIn
from app.schemas.stage2 import ConversationVerdictsIn
from app.services import (
    bulk_fixes,
    conversation_reviews,
    corrections,
    instance_revisions,
    queues,
    reviews,
    solve_tests,
    spot_checks,
    verdict_undo,
    verifications,
)
from app.services import instances as instance_service
from app.web.deps import REVIEWERS, BlindfoldDep, CurrentUser, RowId, SessionDep, qc_defaults_of, settings_of
from app.web.fixes import FixOffer, fix_values
from app.web.forms import FormDep, validate_form, validate_values
from app.web.templating import is_htmx, render, see_other

router = APIRouter(prefix="/review", tags=["pages"], include_in_schema=False)
# The queue page counts no further than this ("999+"): enough to plan a day by, without counting an open spot check
# of 10,000 items on every visit (the API's /review counts stay exact).
REVIEW_COUNT_CAP = 999


@router.get("", dependencies=[REVIEWERS])
def overview(request: Request, session: SessionDep, user: CurrentUser):
    return render(request, "review/page.html", counts=queues.overview(
        session, reviewer=user, cap=REVIEW_COUNT_CAP,
        reviewer_may_verify=settings_of(request).verifier_may_be_reviewer),
        bulk_waiting=bulk_fixes.waiting_for(session, user_id=user.id))


@router.get("/{queue_name}", dependencies=[REVIEWERS])
def queue_page(request: Request, session: SessionDep, user: CurrentUser, queue_name: str):
    """The item you hold, or (once the page has loaded) the next one claimed for you."""
    queue = queues.get_queue(queue_name)
    held = queues.current(session, queue=queue, user=user)
    item = queue.load(session, item_id=held, user_id=user.id) if held else None
    return render(request, "review/queue.html", queue=queue, item=item)


@router.post("/{queue_name}/next", dependencies=[REVIEWERS])
def next_item(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, queue_name: str):
    data = validate_form(SkipIn, form, optional=("skip",))
    return _next(request, session, user, queues.get_queue(queue_name), skip=data.skip)


def _next(request: Request, session, user, queue, *, skip: int | None = None, message: str | None = None,
          offer: FixOffer | None = None, undo: str | None = None):
    settings = settings_of(request)
    item_id = queues.next_item(session, queue=queue, user=user, lease_s=settings.review_lease_s, skip=skip,
                               reviewer_may_verify=settings.verifier_may_be_reviewer)
    if not is_htmx(request):  # a plain form post: the queue page shows the item now held
        return see_other(request, f"/review/{queue.name}")
    item = queue.load(session, item_id=item_id, user_id=user.id) if item_id else None
    return render(request, "review/_item.html", queue=queue, item=item, message=message, offer=offer, undo=undo)


@router.post("/instructions/{review_id}", dependencies=[REVIEWERS])
def decide_instruction(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, review_id: RowId):
    data = validate_form(DecisionIn, form, optional=("comment",))
    reviews.decide(session, review_id=review_id, lock_version=data.lock_version, user_id=user.id,
                   decision=data.decision, comment=data.comment, defaults=qc_defaults_of(request))
    return _next(request, session, user, queues.INSTRUCTIONS, message="Decision recorded.")


@router.post("/corrections/{revision_id}", dependencies=[REVIEWERS])
def decide_correction(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, revision_id: RowId):
    data = validate_form(RevisionDecisionIn, form, optional=("comment",))
    revision = corrections.decide(session, revision_id=revision_id, data=data, user_id=user.id)
    noun = revision.record_kind
    done = f"Accepted: the {noun} now has the fixed values." if revision.status == "accepted" else \
        f"Rejected: the {noun} stays as it was."
    return _next(request, session, user, queues.CORRECTIONS, message=done)


@router.post("/conversations/{review_id}", dependencies=[REVIEWERS])
def decide_conversation(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, review_id: RowId):
    data = validate_values(ConversationVerdictsIn, _verdicts_of(form), nested=("turns",))
    review = conversation_reviews.decide(session, review_id=review_id, data=data, user_id=user.id)
    wrong = sum(judgement["verdict"] != "correct" for judgement in review.verdicts or [])
    if not wrong:
        message = "Recorded: every answer is correct."
    else:
        message = f"Recorded: {wrong} answer{'s' if wrong != 1 else ''} wrong. " + (
            "Your fix waits for a second reviewer in Corrections." if review.revision_id else
            "Without a fix the conversation stays out of stage 2.")
    return _next(request, session, user, queues.CONVERSATIONS, message=message)


def _verdicts_of(form) -> dict:
    """The review form's fields (verdict-N, text-N, drop-N, note-N for each answer N) as ConversationVerdictsIn's
    values; "Every answer correct" judges every answer correct and changes nothing."""
    every_answer_correct = form.get("all") == "correct"
    turns = []
    for key in form:
        if not key.startswith("verdict-"):
            continue
        index = key.removeprefix("verdict-")
        turn: dict = {"turn": index, "verdict": "correct" if every_answer_correct else form[key]}
        if not every_answer_correct:
            text = form.get(f"text-{index}")
            if text is not None:  # browsers send a textarea's line breaks as CR LF
                turn["text"] = text.replace("\r\n", "\n")
            turn["drop"] = f"drop-{index}" in form
            turn["note"] = form.get(f"note-{index}") or None
        turns.append(turn)
    if not turns:
        raise Invalid("The form sent no verdicts: reload the page and give one on each answer.",
                      fields={"turns": "no verdicts"})
    return {"lock_version": form.get("lock_version"), "turns": turns,
            "note": None if every_answer_correct else form.get("note") or None}


@router.post("/verify/{review_id}", dependencies=[REVIEWERS])
def decide_verification(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, review_id: RowId):
    data = validate_form(DecisionIn, form, optional=("comment",))
    verifications.decide(session, review_id=review_id, lock_version=data.lock_version, user_id=user.id,
                         decision=data.decision, comment=data.comment,
                         reviewer_may_verify=settings_of(request).verifier_may_be_reviewer)
    return _next(request, session, user, queues.VERIFY, message="Verification recorded.")


@router.post("/solve/{item_id}/answer", dependencies=[REVIEWERS])
def answer(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, item_id: RowId):
    data = validate_form(AnswerIn, form)
    item = solve_tests.answer(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                              text=data.answer, defaults=qc_defaults_of(request))
    queue = queues.SOLVE
    if item.judged_at is None:  # free text: the solver now sees the target and judges their answer
        return _next(request, session, user, queue)
    return _next(request, session, user, queue, message="Matched." if item.matched else "Did not match.",
                 offer=None if item.matched else _solve_offer(session, item))


@router.post("/solve/{item_id}/judge", dependencies=[REVIEWERS])
def judge(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, item_id: RowId):
    data = validate_form(JudgementIn, form)
    item = solve_tests.judge(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                             matched=data.matched, defaults=qc_defaults_of(request))
    return _next(request, session, user, queues.SOLVE, message="Judgement recorded.",
                 offer=None if item.matched else _solve_offer(session, item))


def _solve_offer(session, item) -> FixOffer:
    """A blind answer that did not match: if the target is what is wrong, fix it from here (starting from the
    answer)."""
    instance, _ = instance_service.get_instance(session, instance_id=item.instance_id)
    return FixOffer(f"/review/solve/{item.id}/fix", instance, f"The blind answer was “{item.answer}”.",
                    target=item.answer)


@router.post("/spot/{item_id}", dependencies=[REVIEWERS])
def verdict(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, item_id: RowId):
    data = validate_form(VerdictIn, form, optional=("note",))
    item = spot_checks.record_verdict(session, item_id=item_id, lock_version=data.lock_version, user_id=user.id,
                                      verdict=data.verdict, note=data.note)
    undo = f"/review/spot/{item.id}/undo"
    instance, _ = instance_service.get_instance(session, instance_id=item.instance_id)
    if data.verdict == "correct":
        return _next(request, session, user, queues.SPOT, undo=undo,
                     message=f"Verdict recorded: {instance.source_id} is correct.")
    verdict = data.verdict.replace("_", " ")
    offer = FixOffer(f"/review/spot/{item.id}/fix", instance, data.note or verdict,
                     instance_revisions.suggestion_for(session, instance=instance))
    return _next(request, session, user, queues.SPOT, offer=offer, undo=undo,
                 message=f"Verdict recorded: {instance.source_id} is flagged ({verdict}) and left out of exports "
                         "until a fix or a dismissal of the finding is accepted.")


@router.post("/spot/{item_id}/undo", dependencies=[REVIEWERS])
def undo_verdict(request: Request, session: SessionDep, user: CurrentUser, item_id: RowId):
    """Takes back the reviewer's last verdict: the item comes back to them to judge again."""
    item = verdict_undo.undo_last_verdict(session, item_id=item_id, user_id=user.id,
                                          lease_s=settings_of(request).review_lease_s)
    instance, _ = instance_service.get_instance(session, instance_id=item.instance_id)
    return _next(request, session, user, queues.SPOT,
                 message=f"Verdict on {instance.source_id} undone: judge it again.")


PROPOSE_FROM = {"spot": instance_revisions.propose_from_spot_check,  # a verdict that found a problem
                "solve": instance_revisions.propose_from_solve_test}  # a blind answer that did not match


@router.post("/{finding}/{item_id}/fix", dependencies=[REVIEWERS])
def fix_from_finding(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep,
                     form: FormDep, finding: Literal["spot", "solve"], item_id: RowId):
    """The fix offered beside the next item after a finding, traced to it; answers in the offer's place."""
    data = validate_values(InstanceFixIn, fix_values(form))
    revision = PROPOSE_FROM[finding](session, item_id=item_id, data=data, user_id=user.id, blindfold=blindfold)
    return render(request, "review/_fix_offer.html", proposed=revision, offer=None)
