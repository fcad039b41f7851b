"""Dependency aliases and the access rules every route declares.

Each route names exactly one access rule (`PUBLIC`, `SIGNED_IN`, `ANY_ROLE`, or `require(rule)` with a rule
of `app.core.access`) in its `dependencies`. The rule authenticates (session cookie, or `Authorization: Bearer`
for scripts), checks the role, and checks the CSRF token of state-changing requests made with a cookie. A
test walks every registered route and refuses any that declares none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request, params
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.core import access
from app.core.config import Settings
from app.core.db import session_scope
from app.core.failures import Forbidden, Invalid, NotAuthenticated
from app.core.security import csrf_matches
from app.models import Role, User
from app.models.types import MAX_DB_INT
from app.services import blinding
from app.services import users as user_service
from app.services.blinding import Blindfold
from app.services.qc import QcDefaults
from app.services.tasks import TaskFilters
from app.web.templating import is_htmx

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def settings_of(request: Request) -> Settings:
    """The studio's settings, made once when it starts (app.main)."""
    return request.app.state.settings


def qc_defaults_of(request: Request) -> QcDefaults:
    """The sizes and thresholds a quality check opens with, unless an admin says otherwise."""
    return QcDefaults.from_settings(settings_of(request))


def get_session(request: Request) -> Iterator[Session]:
    yield from session_scope(request.app.state.engine)


SessionDep = Annotated[Session, Depends(get_session)]
# A row id in a URL: bounded, so that a number no database column can hold is a 422, not a driver error.
RowId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
# Declared through FastAPI's security class so that /docs offers an "Authorize" button for tokens.
BearerDep = Annotated[HTTPAuthorizationCredentials | None,
                      Depends(HTTPBearer(auto_error=False, description="An API token from your account page."))]


@dataclass(frozen=True)
class Principal:
    user: User
    roles: frozenset[Role]
    via_token: bool

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def may(self, rule: access.Rule) -> bool:
        return rule.allows(self.roles)

    @property
    def is_admin(self) -> bool:
        """What services ask to let an admin past an owner's rule or the check defaults."""
        return self.may(access.ADMINS)


@dataclass(frozen=True)
class AccessRule:
    """A route's dependency that enforces `rule`."""

    rule: access.Rule

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def roles(self) -> frozenset[Role] | None:
        return self.rule.roles

    async def __call__(self, request: Request, session: SessionDep, bearer: BearerDep = None) -> None:
        # Database work off the event loop; the CSRF check below may need to await the form body.
        principal = await run_in_threadpool(_authenticate, request, session, bearer)
        request.state.principal = principal
        if not self.rule.allows(principal.roles if principal else None):
            if principal is None:
                raise NotAuthenticated("Please sign in.")
            raise Forbidden(f"This needs the {self.rule.name} role.")
        if request.method not in SAFE_METHODS and not (principal and principal.via_token):
            await _check_csrf(request)


def require(rule: access.Rule) -> params.Depends:
    return Depends(AccessRule(rule))


# Every route declares one of these (tests/test_access.py): the rules of app/core/access.py as dependencies.
PUBLIC = require(access.PUBLIC)
SIGNED_IN = require(access.SIGNED_IN)
ANY_ROLE = require(access.ANY_ROLE)
ADMIN = require(access.ADMINS)
EDITORS = require(access.EDITORS)
REVIEWERS = require(access.REVIEWERS)
QC_OPENERS = require(access.QC_OPENERS)
PREVIEWERS = require(access.PREVIEWERS)


def _authenticate(request: Request, session: Session, bearer: HTTPAuthorizationCredentials | None
                  ) -> Principal | None:
    if bearer is not None:  # a script: the token alone decides, cookies are ignored
        user = user_service.user_for_token(session, token=bearer.credentials)
        if user is None:
            raise NotAuthenticated("The API token is not valid (unknown, revoked, or its user is inactive).")
        return Principal(user, frozenset(user_service.roles_of(session, user.id)), via_token=True)
    user_id, epoch = request.session.get("uid"), request.session.get("epoch")
    if user_id is None:
        return None
    user = user_service.user_for_session(session, token=request.session.get("sid"), user_id=user_id)
    if user is None or not user.is_active or user.auth_epoch != epoch:
        request.session.pop("uid", None)  # signed out (here or everywhere), deactivated or deleted
        return None
    return Principal(user, frozenset(user_service.roles_of(session, user.id)), via_token=False)


async def _check_csrf(request: Request) -> None:
    given: object = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = (await request.form()).get(CSRF_FIELD)
    if not csrf_matches(request.session.get("csrf"), given if isinstance(given, str) else None):
        raise Forbidden("The form has expired or did not come from this site: reload the page and try again.")


def client_address(request: Request) -> str:
    """Who is asking, by address: the peer, or what a trusted proxy says it is (`STUDIO_TRUSTED_PROXIES`)."""
    return request.client.host if request.client else "unknown"


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise NotAuthenticated("Please sign in.")
    return principal


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> User:
    return principal.user


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentUser = Annotated[User, Depends(current_user)]


HxRequest = Annotated[bool, Depends(is_htmx)]


def current_blindfold(session: SessionDep, principal: CurrentPrincipal) -> Blindfold:
    """The targets the signed-in person must not see now: those of the blind solve tests they may still answer."""
    return blinding.for_user(session, user_id=principal.user.id, may_solve=principal.may(access.REVIEWERS))


BlindfoldDep = Annotated[Blindfold, Depends(current_blindfold)]


def _declared_query(dependant) -> frozenset[str]:
    """The query parameters an operation takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query(sub)
    return frozenset(names)


def reject_unknown_query(request: Request) -> None:
    """For the API: a query parameter the operation does not declare is refused, not ignored, so that a
    script's typo (`?limt=5`, `?stauts=draft`) fails loudly instead of quietly returning the wrong page."""
    route = request.scope["route"]
    known = getattr(route, "declared_query", None)
    if known is None:  # worked out once per route, kept on it
        known = route.declared_query = _declared_query(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Invalid(f"Unknown query parameter(s): {', '.join(map(repr, unknown))}; this operation takes "
                      f"{', '.join(sorted(known)) or 'none'}.",
                      fields={name: "not a parameter here" for name in unknown})


STRICT_QUERY = Depends(reject_unknown_query)


def task_filters(q: str | None = None, group: str | None = None, category: str | None = None,
                 status: str | None = None,
                 dataset: Annotated[str | None, Query(pattern=r"^\d{0,9}$", description="A dataset id.")] = None,
                 ) -> TaskFilters:
    """Filters from the query; an empty value (a menu left at "any") means no filter."""
    return TaskFilters(q=q or None, task_group=group or None, category=category or None, status=status or None,
                       source_dataset_id=int(dataset) if dataset else None)


TaskFiltersDep = Annotated[TaskFilters, Depends(task_filters)]
