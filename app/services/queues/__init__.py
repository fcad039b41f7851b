"""The reviewer queues behind one "next item" interface: instruction reviews, blind solve tests, spot checks,
final verifications, corrections and stage-2 conversations. Each is an object (`base.ReviewQueue`) that owns its
candidates, its holder rules, its typed item context and its template; `claims` works any of them."""

from __future__ import annotations

from app.core.failures import NotFound
from app.services.queues import claims
from app.services.queues.base import ReviewItem, ReviewQueue
from app.services.queues.claims import QueueCounts, current, next_item
from app.services.queues.conversations import ConversationReviews
from app.services.queues.corrections import Corrections
from app.services.queues.instructions import InstructionReviews
from app.services.queues.solve import BlindSolveTests
from app.services.queues.spot import SpotChecks
from app.services.queues.verify import FinalVerifications

INSTRUCTIONS = InstructionReviews()
SOLVE = BlindSolveTests()
SPOT = SpotChecks()
VERIFY = FinalVerifications()
CORRECTIONS = Corrections()
CONVERSATIONS = ConversationReviews()
ALL: tuple[ReviewQueue, ...] = (INSTRUCTIONS, SOLVE, SPOT, VERIFY, CORRECTIONS, CONVERSATIONS)  # as pages list them

__all__ = ["ALL", "CONVERSATIONS", "CORRECTIONS", "INSTRUCTIONS", "SOLVE", "SPOT", "VERIFY", "QueueCounts",
           "ReviewItem", "ReviewQueue",
           "current", "get_queue", "hand_back", "next_item", "overview"]


def overview(session, *, reviewer, cap: int | None = None, reviewer_may_verify: bool = False) -> list[QueueCounts]:
    """Every queue's undecided items, and (for a reviewer) how many are theirs to take; counted no further than
    `cap` + 1 when given."""
    return claims.overview(session, queues=ALL, reviewer=reviewer, cap=cap, reviewer_may_verify=reviewer_may_verify)


def hand_back(session, *, user_id: int, actor_id: int | None) -> None:
    """Someone stops reviewing (deactivated, or the reviewer role taken away), in the caller's transaction: what
    they held in every queue goes back now rather than when the leases run out, each queue by its own rule."""
    for queue in ALL:
        queue.hand_back(session, user_id=user_id, actor_id=actor_id)


def get_queue(name: str) -> ReviewQueue:
    """The queue a URL names."""
    for queue in ALL:
        if queue.name == name:
            return queue
    raise NotFound(f"There is no queue called {name!r}: try one of {', '.join(queue.name for queue in ALL)}.")
