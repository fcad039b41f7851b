"""Stage-2 conversation pools, to read: each pool with its counts and what review found, its conversations in
keyset pages (filtered by image, number of turns, text, pre-screen finding and review), and one conversation
beside its image.

Stage 2 is where the paper's "annotation error and bias in GPT-4 synthesized data" lives, and since about a
thousand conversations are enough, a team can read every one; this is the reading, with the pre-screens
(app/qc/prescreen.py) saying what to read first; the conversation queue (`conversation_reviews`) is the
reviewing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import String, cast, func
from sqlmodel import Session, col, select

from app.core.failures import NotFound
from app.models import ConversationItem, ConversationPool, ConversationReview, ConversationScore, DatasetVersion, Image
from app.prompts.tokens import estimate
from app.qc import prescreen
from app.qc.prescreen import Finding
from app.schemas.export_spec import ExportSpec
from app.services.conversation_reviews import PoolQuality, pool_quality

PAGE_SIZE = 50
# A conversation's length against what a version's stage 2 is built with: the export's own token estimate and its
# spec's defaults for an image's tokens and the trainer's maximum.
BUDGET = prescreen.Budget(count_tokens=estimate, image_tokens=ExportSpec.model_fields["image_tokens"].default,
                          max_tokens=ExportSpec.model_fields["max_tokens"].default)


@dataclass(frozen=True)
class PoolSummary:
    pool: ConversationPool
    conversations: int
    with_image: int
    versions: list[str]  # the versions whose stage 2 was drawn from it
    quality: PoolQuality  # what review found


@dataclass(frozen=True)
class PoolFilters:
    image: Literal["with", "without"] | None = None
    turns: int | None = None  # exchanges (a human turn and its answer) at least
    q: str | None = None  # text anywhere in the conversation, any case
    finding: prescreen.RuleName | None = None  # a pre-screen the conversation breaks
    review: Literal["unread", "correct", "flagged", "fixed"] | None = None  # what its review found
    order: Literal["doubt"] | None = None  # least likely answer first, under the pool's newest scores
    kind: str | None = None  # a ConversationKind: LLaVA-Instruct's file, or what synthesis wrote

    def as_query(self, **changes: object) -> dict[str, str]:
        """The filters as a URL's query; `changes` set some (None leaves one out)."""
        values = {**asdict(self), **changes}
        return {name: str(value) for name, value in values.items() if value not in (None, "")}


@dataclass(frozen=True)
class ConversationRow:
    item: ConversationItem
    image: Image | None
    review: ConversationReview | None = None
    score: ConversationScore | None = None

    @property
    def exchanges(self) -> int:
        return len(self.item.conversations) // 2

    @property
    def opening(self) -> str:
        """The first human turn, without its image token: what a list shows of the conversation."""
        first = self.item.conversations[0]["value"] if self.item.conversations else ""
        return first.replace("<image>", "").strip()


@dataclass(frozen=True)
class PoolPage:
    rows: list[ConversationRow]
    next_after: int | None  # the last position shown, when there is more
    findings: dict[int, list[Finding]]  # the pre-screens' findings, per position shown


def findings(session: Session, *, pool_id: int) -> dict[int, list[Finding]]:
    """Every conversation of the pool through the pre-screens (a pass over the pool: thousands take a moment)."""
    rows = session.exec(select(ConversationItem.position, ConversationItem.conversations, ConversationItem.image_id,
                               ConversationItem.origin)
                        .where(ConversationItem.pool_id == pool_id).order_by(ConversationItem.position)
                        .execution_options(yield_per=1000))
    return prescreen.screen(((position, turns, image_id, prescreen.source_of(origin))
                             for position, turns, image_id, origin in rows), budget=BUDGET)


def finding_counts(found: dict[int, list[Finding]]) -> dict[str, int]:
    """Conversations per rule, every rule listed (0 where none)."""
    counts: dict[str, int] = dict.fromkeys(prescreen.RULES, 0)
    for position_findings in found.values():
        for rule in {finding.rule for finding in position_findings}:
            counts[rule] += 1
    return counts


def list_pools(session: Session) -> list[PoolSummary]:
    counts = {pool_id: (total, pictured) for pool_id, total, pictured in session.exec(
        select(ConversationItem.pool_id, func.count(), func.count(ConversationItem.image_id))
        .group_by(ConversationItem.pool_id))}
    drawn: dict[int, list[str]] = {}
    for name, spec in session.exec(select(DatasetVersion.name, DatasetVersion.spec).order_by(DatasetVersion.id)):
        if spec.get("conversation_pool_id") is not None:
            drawn.setdefault(spec["conversation_pool_id"], []).append(name)
    pools = list(session.exec(select(ConversationPool).order_by(ConversationPool.name)))
    quality = pool_quality(session, pool_ids=[pool.id for pool in pools])
    return [PoolSummary(pool, *counts.get(pool.id, (0, 0)), drawn.get(pool.id, []), quality[pool.id or 0])
            for pool in pools]


def get_pool(session: Session, *, pool_id: int) -> ConversationPool:
    pool = session.get(ConversationPool, pool_id)
    if pool is None:
        raise NotFound(f"There is no conversation pool with id {pool_id}.")
    return pool


def page(session: Session, *, pool_id: int, filters: PoolFilters, after: int | None = None,
         size: int = PAGE_SIZE, found: dict[int, list[Finding]] | None = None, scored_by: int | None = None
         ) -> PoolPage:
    """The pool's conversations in file order from after position `after`, filtered; with `scored_by` (a model
    that scored the pool), each with its score, and in `filters.order == "doubt"` the least likely answer first,
    `after` then counting the rows already shown. The filters on turns and text read each conversation's JSON, so
    they scan the pool (a pool is thousands, not millions); paging in file order is by the (pool, position) key.
    `found`: the pool's pre-screen findings, when the caller has them (else worked out)."""
    found = findings(session, pool_id=pool_id) if found is None else found
    doubt = filters.order == "doubt" and scored_by is not None
    query = (select(ConversationItem, Image, ConversationReview, ConversationScore)
             .outerjoin(Image, col(Image.id) == ConversationItem.image_id)
             .outerjoin(ConversationReview, ConversationReview.conversation_id == ConversationItem.id)
             .join(ConversationScore, (ConversationScore.conversation_id == ConversationItem.id)
                   & (ConversationScore.model_id == (scored_by or 0)), isouter=not doubt)
             .where(ConversationItem.pool_id == pool_id))
    if filters.review == "unread":
        query = query.where(col(ConversationReview.outcome).is_(None))
    elif filters.review:
        query = query.where(ConversationReview.outcome == filters.review)
    if after is not None and not doubt:
        query = query.where(ConversationItem.position > after)
    if filters.kind:
        query = query.where(ConversationItem.kind == filters.kind)
    if filters.image == "with":
        query = query.where(col(ConversationItem.image_id).is_not(None))
    elif filters.image == "without":
        query = query.where(col(ConversationItem.image_id).is_(None))
    if filters.q and _same_in_json(filters.q):  # narrowed in the database; the exact test is below
        text = func.lower(cast(ConversationItem.conversations, String))
        query = query.where(text.contains(filters.q.lower(), autoescape=True))
    order = (col(ConversationScore.worst_loss).desc(), ConversationItem.position) if doubt \
        else (ConversationItem.position,)
    rows, passed = [], 0
    for item, image, review, score in session.exec(query.order_by(*order)
                                                   .execution_options(yield_per=PAGE_SIZE * 4)):
        row = ConversationRow(item, image, review, score)
        if filters.turns and row.exchanges < filters.turns:
            continue
        if filters.q and not _mentions(item.conversations, filters.q):
            continue  # the JSON text matched an escape or a key, not what a person reads
        if filters.finding and filters.finding not in {finding.rule for finding in found.get(item.position, [])}:
            continue
        if doubt and passed < (after or 0):  # shown on an earlier page
            passed += 1
            continue
        rows.append(row)
        if len(rows) > size:
            break
    more = len(rows) > size
    rows = rows[:size]
    following = ((after or 0) + size if doubt else rows[-1].item.position) if more and rows else None
    return PoolPage(rows, following,
                    {row.item.position: found[row.item.position] for row in rows if row.item.position in found})


def conversation(session: Session, *, pool_id: int, position: int) -> ConversationRow:
    found = session.exec(select(ConversationItem, Image, ConversationReview)
                         .outerjoin(Image, col(Image.id) == ConversationItem.image_id)
                         .outerjoin(ConversationReview, ConversationReview.conversation_id == ConversationItem.id)
                         .where(ConversationItem.pool_id == pool_id, ConversationItem.position == position)).first()
    if found is None:
        raise NotFound(f"Pool {pool_id} has no conversation at position {position}.")
    return ConversationRow(*found)


def neighbours(session: Session, *, pool_id: int, position: int) -> tuple[int | None, int | None]:
    """The positions of the conversations before and after this one in the pool (None at either end)."""
    here = ConversationItem.pool_id == pool_id
    before = session.exec(select(func.max(ConversationItem.position)).where(here,
                                                                           ConversationItem.position < position)).one()
    after = session.exec(select(func.min(ConversationItem.position)).where(here,
                                                                          ConversationItem.position > position)).one()
    return before, after


def _same_in_json(text: str) -> bool:
    """Whether `text` reads the same inside stored JSON (which may escape non-ASCII, quotes and backslashes)."""
    return text.isascii() and text.isprintable() and not {'"', "\\"} & set(text)


def _mentions(turns: list[dict], text: str) -> bool:
    wanted = text.lower()
    return any(wanted in str(turn.get("value", "")).lower() for turn in turns)
