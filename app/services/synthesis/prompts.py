"""The prompts that synthesis writes conversations with: one line of versions per kind (LLaVA-Instruct's three),
reviewed like instructions. A version is text the generator gets as its instructions; the subject (the image, or
the dataset's words about it) follows in the user's message. Version 1 of each kind ships with the studio,
approved; a new version is a draft that someone other than its author approves or rejects, and a job uses an
approved version only."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import ConversationKind, PromptStatus, SynthesisPrompt, utcnow
from app.services import audit

ANSWER_FORMAT = (
    'Reply with JSON only, no other text: {"turns": [{"question": "...", "answer": "..."}]}.')
GROUNDING = (
    "Answer as someone who sees the image. Say only what the image shows or what follows from it with confidence: "
    "name no object, colour, count or position you cannot see, and never mention a description, captions, boxes or "
    "these instructions.")

# In our own words, after the three kinds of haotian-liu/LLaVA's playground/data/prompts: the same intent, an answer
# format a program can read, and the grounding rule whose absence HalluciDoctor found in their output.
SHIPPED: dict[ConversationKind, str] = {
    ConversationKind.conversation: (
        "Write a conversation between a person asking about an image and an AI assistant who is looking at it. "
        "Ask three to five varied questions the image answers: what the objects are, how many, what they do, "
        "where they are relative to each other, what they are for. Vary the wording; keep each answer to a few "
        f"sentences. {GROUNDING} {ANSWER_FORMAT}"),
    ConversationKind.detail: (
        "Write one request for a detailed description of an image (vary its wording) and the assistant's answer: "
        "a thorough description of what is in the image, the objects, their attributes, counts and positions, and "
        f"the scene as a whole, in a paragraph or two. {GROUNDING} {ANSWER_FORMAT}"),
    ConversationKind.complex_reasoning: (
        "Write one question about an image whose answer needs reasoning beyond naming what is visible: why "
        "something is happening, what is likely to happen next, what the scene suggests, or what someone there "
        "should do. Then the assistant's answer, reasoning step by step from what the image shows. "
        f"{GROUNDING} {ANSWER_FORMAT}"),
}
MAX_TEXT = 20_000


def ensure_shipped(session: Session) -> None:
    """Version 1 of each kind, approved as shipped, where the database has no version of that kind yet."""
    have = set(session.exec(select(SynthesisPrompt.kind).distinct()))
    missing = [kind for kind in ConversationKind if kind.value not in have]
    for kind in missing:
        session.add(SynthesisPrompt(kind=kind, version=1, text=SHIPPED[kind], status=PromptStatus.approved,
                                    decided_at=utcnow()))
    if missing:
        session.commit()


def get(session: Session, *, prompt_id: int) -> SynthesisPrompt:
    prompt = session.get(SynthesisPrompt, prompt_id)
    if prompt is None:
        raise NotFound(f"There is no synthesis prompt with id {prompt_id}.")
    return prompt


def listing(session: Session) -> list[SynthesisPrompt]:
    """Every version, by kind, newest first."""
    ensure_shipped(session)
    return list(session.exec(select(SynthesisPrompt)
                             .order_by(SynthesisPrompt.kind, col(SynthesisPrompt.version).desc())))


def newest_approved(session: Session, *, kind: str) -> SynthesisPrompt:
    ensure_shipped(session)
    prompt = session.exec(select(SynthesisPrompt).where(SynthesisPrompt.kind == kind,
                                                        SynthesisPrompt.status == PromptStatus.approved)
                          .order_by(col(SynthesisPrompt.version).desc()).limit(1)).first()
    if prompt is None:
        raise NotFound(f"No version of the {kind} prompt is approved.")
    return prompt


def usable(session: Session, *, prompt_id: int) -> SynthesisPrompt:
    """The prompt a job is asked to use, refused unless it is approved."""
    prompt = get(session, prompt_id=prompt_id)
    if prompt.status != PromptStatus.approved:
        raise Invalid(f"Version {prompt.version} of the {prompt.kind} prompt is {prompt.status}: a job uses only an "
                      "approved version.", fields={"prompt_id": "not approved"})
    return prompt


def propose(session: Session, *, kind: str, text: str, author_id: int) -> SynthesisPrompt:
    """A new draft version of `kind`'s prompt."""
    if kind not in {member.value for member in ConversationKind}:
        raise Invalid(f"{kind!r} is not a conversation kind ({', '.join(ConversationKind)}).",
                      fields={"kind": "unknown"})
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise Invalid(f"A prompt needs between 1 and {MAX_TEXT:,} characters.", fields={"text": "empty or too long"})
    ensure_shipped(session)
    newest = session.exec(select(func.max(SynthesisPrompt.version)).where(SynthesisPrompt.kind == kind)).one()
    version = (newest or 0) + 1
    prompt = SynthesisPrompt(kind=kind, version=version, text=text, author_id=author_id)
    session.add(prompt)
    session.flush()
    audit.record(session, actor_id=author_id, action="synthesis_prompt.propose", entity_type="synthesis_prompt",
                 entity_id=prompt.id, after={"kind": kind, "version": version})
    session.commit()
    return prompt


def decide(session: Session, *, prompt_id: int, approve: bool, reviewer_id: int, note: str | None = None
           ) -> SynthesisPrompt:
    """Approves or rejects a draft; never its author's own (the four-eyes rule of instructions)."""
    prompt = get(session, prompt_id=prompt_id)
    if prompt.author_id == reviewer_id:
        raise Forbidden("A prompt is approved or rejected by someone other than whoever wrote it.")
    if prompt.status != PromptStatus.draft:
        raise Conflict(f"Version {prompt.version} of the {prompt.kind} prompt was already {prompt.status}.")
    if not approve and not (note or "").strip():
        raise Invalid("Say why the prompt is rejected: its author reads it.", fields={"note": "required"})
    status = PromptStatus.approved if approve else PromptStatus.rejected
    decided = session.execute(
        SynthesisPrompt.__table__.update().where(SynthesisPrompt.id == prompt_id,
                                                 SynthesisPrompt.status == PromptStatus.draft)
        .values(status=status, reviewer_id=reviewer_id, review_note=(note or "").strip() or None,
                decided_at=utcnow())).rowcount
    if not decided:  # someone else decided it between the read and now
        session.rollback()
        raise Conflict(f"Version {prompt.version} of the {prompt.kind} prompt was decided by someone else just now.")
    audit.record(session, actor_id=reviewer_id, action="synthesis_prompt.decide", entity_type="synthesis_prompt",
                 entity_id=prompt_id, after={"status": status, "note": note})
    session.commit()
    session.refresh(prompt)
    return prompt
