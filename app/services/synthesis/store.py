"""Generated conversations into their pool: each reply checked (`replies`), then stored with its origin and the
review that waits for it, a few at a time so that a job stopped by a failing endpoint keeps all it produced.

Synthesized conversations have pools of their own (`SYNTHESIZED` as the pool's source): an imported pool's
positions are its file's lines, which a resumed import skips by position, so nothing else may take one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from app.core.failures import Invalid
from app.models import ConversationItem, ConversationPool, SynthesisPrompt, utcnow
from app.qc import prescreen
from app.services.bulk_rows import get_or_create, insert_conversation_items, stable_rkey
from app.services.synthesis import replies
from app.services.synthesis.endpoints import Reply
from app.services.synthesis.requests import context_record
from app.services.synthesis.subjects import Drawn

SYNTHESIZED = "synthesized"
FLUSH_EVERY = 16
MAX_REFUSALS_KEPT = 200  # in the job's result; the count is exact


def synthesized_pool(engine: Engine, *, name: str, actor_id: int | None) -> int:
    """The id of the synthesized pool `name`, made if missing; refused when `name` is an imported pool."""
    with engine.begin() as connection:
        pool_id = get_or_create(connection, ConversationPool, "name", name, {
            "source": SYNTHESIZED, "image_root": None, "created_by_id": actor_id, "created_at": utcnow()})
        source = connection.execute(select(ConversationPool.source).where(ConversationPool.id == pool_id)).scalar()
    if source != SYNTHESIZED:
        raise Invalid(f"Pool {name!r} holds an imported file: synthesized conversations go to a pool of their own "
                      "(a version's stage 2 may draw from it).", fields={"pool": "imported"})
    return pool_id


def keys_present(session: Session, *, pool_id: int, keys: list[str]) -> set[str]:
    """Which request keys the pool already holds a conversation for (a rerun skips them)."""
    present: set[str] = set()
    for start in range(0, len(keys), 1000):
        present.update(session.exec(select(ConversationItem.source_id).where(
            ConversationItem.pool_id == pool_id, ConversationItem.source_id.in_(keys[start:start + 1000]))).scalars())
    return present


@dataclass
class Collector:
    """Takes replies, refuses what is not a usable conversation (with its reason), stores the rest."""

    engine: Engine
    pool_id: int
    pool_name: str
    prompt: SynthesisPrompt
    subjects: dict[str, Drawn]  # by request key
    generator: dict[str, Any]  # backend, name, host, model
    sampling: dict[str, Any]
    saw_image: bool
    budget: prescreen.Budget
    job_id: int | None = None
    stored: int = 0
    refused: int = 0
    refusals: list[dict[str, str]] = field(default_factory=list)
    _rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def taken(self) -> int:
        """Replies taken so far: stored, refused, or waiting to be stored."""
        return self.stored + self.refused + len(self._rows)

    def take(self, reply: Reply) -> None:
        drawn = self.subjects[reply.key]
        has_image = drawn.image_id is not None
        try:
            if reply.problem:
                raise replies.Refused(reply.problem)
            turns = replies.conversation(reply.text, has_image=has_image, budget=self.budget,
                                         blind_source=None if self.saw_image else drawn.subject.context())
        except replies.Refused as refusal:
            self.refused += 1
            if len(self.refusals) < MAX_REFUSALS_KEPT:
                self.refusals.append({"key": reply.key, "reason": str(refusal)})
            return
        generator = {**self.generator, "model": reply.model or self.generator.get("model")}
        prompt = {"id": self.prompt.id, "kind": self.prompt.kind, "version": self.prompt.version}
        self._rows.append({"source_id": reply.key, "image_id": drawn.image_id, "conversations": turns,
                           "kind": self.prompt.kind, "origin": {
                               "job_id": self.job_id, "generator": generator, "prompt": prompt,
                               "sampling": self.sampling, "context": context_record(drawn.subject,
                                                                                   saw_image=self.saw_image),
                               "tokens": {"prompt": reply.prompt_tokens, "completion": reply.completion_tokens},
                               "at": utcnow().isoformat()}})
        if len(self._rows) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        with self.engine.begin() as connection:
            # Taking the pool's row first makes two jobs writing into one pool number their conversations in turn.
            connection.execute(update(ConversationPool).where(ConversationPool.id == self.pool_id)
                               .values(name=ConversationPool.name))
            present = set(connection.execute(select(ConversationItem.source_id).where(
                ConversationItem.pool_id == self.pool_id,
                ConversationItem.source_id.in_([row["source_id"] for row in self._rows]))).scalars())
            position = connection.execute(select(func.coalesce(func.max(ConversationItem.position), -1)).where(
                ConversationItem.pool_id == self.pool_id)).scalar_one()
            rows = []
            for row in self._rows:
                if row["source_id"] in present:  # another run of the same request got there first
                    continue
                position += 1
                rows.append({**row, "pool_id": self.pool_id, "position": position,
                             "rkey": stable_rkey(self.pool_name, row["source_id"])})
            if rows:
                insert_conversation_items(connection, rows)
        self.stored += len(rows)
        self._rows = []
