"""Who may do what. Routes declare these rules (`deps.require`) and templates ask the same ones (`may(EDITORS)`),
so a button shows exactly when its route would let the user through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.models import Role


@dataclass(frozen=True)
class Rule:
    """`roles=None`: anyone, signed in or not; empty: any signed-in user; else any one of `roles`."""

    name: str
    roles: frozenset[Role] | None

    def allows(self, roles: Iterable[Role] | None) -> bool:
        """Whether someone with `roles` (None: not signed in) passes."""
        if self.roles is None:
            return True
        if roles is None:
            return False
        return not self.roles or bool(self.roles.intersection(roles))


def any_of(*roles: Role) -> Rule:
    return Rule(" or ".join(sorted(roles)), frozenset(roles))


PUBLIC = Rule("public", None)
SIGNED_IN = Rule("signed in", frozenset())
ANY_ROLE = any_of(*Role)
ADMINS = any_of(Role.admin)
EDITORS = any_of(Role.admin, Role.author)  # datasets, tasks, instructions, imports, versions, fine-tunes
# The review queues. Admins work them too (the README says they can do what reviewers do); they are still
# never drawn to review an instruction (only reviewers are), and like anyone never judge their own work.
REVIEWERS = any_of(Role.admin, Role.reviewer)
QC_OPENERS = any_of(Role.admin, Role.reviewer)  # open solve tests and spot checks by hand
PREVIEWERS = any_of(Role.admin, Role.author, Role.reviewer)  # model previews

TEMPLATE_RULES = {"ADMINS": ADMINS, "EDITORS": EDITORS, "REVIEWERS": REVIEWERS, "QC_OPENERS": QC_OPENERS,
                  "PREVIEWERS": PREVIEWERS}
