"""Users, roles, passwords and API tokens. Every change is audited in the same transaction."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.failures import Conflict, Invalid, NotFound
from app.core.security import (
    generate_password,
    hash_api_token,
    hash_password,
    new_api_token,
    new_session_token,
    verify_password,
)
from app.models import ApiToken, Role, SignInSession, User, UserRole, utcnow
from app.schemas import UserCreate, UserOut, UserUpdate
from app.services import audit, queues

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is a hint; not worth a write per request
MAX_TOKEN_DAYS = 3650


def roles_of(session: Session, user_id: int) -> list[Role]:
    rows = session.exec(select(UserRole.role).where(UserRole.user_id == user_id))
    return sorted(Role(role) for role in rows)


def to_out(session: Session, user: User) -> UserOut:
    return UserOut.model_validate({**user.model_dump(), "roles": roles_of(session, user.id)})


def create_user(session: Session, *, data: UserCreate, actor_id: int | None,
                commit: bool = True) -> tuple[User, str | None]:
    """Creates the user; returns it with the generated password when none was given (shown once).
    `commit=False` leaves the transaction to a caller that creates more in the same one."""
    generated = None if data.password else generate_password()
    if session.exec(select(User.id).where(User.email == data.email)).first() is not None:
        raise Conflict(f"A user with the email {data.email} already exists.", fields={"email": "already taken"})
    user = User(email=data.email, display_name=data.display_name, native_english=data.native_english,
                password_hash=hash_password(data.password or generated))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent create won the race
        session.rollback()
        raise Conflict(f"A user with the email {data.email} already exists.",
                       fields={"email": "already taken"}) from error
    session.add_all(UserRole(user_id=user.id, role=role) for role in set(data.roles))
    audit.record(session, actor_id=actor_id, action="user.create", entity_type="user", entity_id=user.id,
                 after={"email": user.email, "roles": sorted(set(data.roles))})
    if commit:
        session.commit()
    return user, generated


def update_user(session: Session, *, user_id: int, data: UserUpdate, actor_id: int | None) -> User:
    user = get_user(session, user_id=user_id)
    before = _profile(session, user)
    if actor_id == user.id:
        losing_admin = data.roles is not None and Role.admin in before["roles"] and Role.admin not in data.roles
        if data.is_active is False or losing_admin:
            raise Conflict("You cannot deactivate yourself or remove your own admin role.",
                          fields={"roles": "keep admin on your own account"})
    if data.display_name is not None:
        user.display_name = data.display_name.strip()
    if data.native_english is not None:
        user.native_english = data.native_english
    if data.is_active is not None and data.is_active != user.is_active:
        user.is_active = data.is_active
        user.auth_epoch += 1  # deactivation signs the user out everywhere
    if data.roles is not None:
        session.execute(delete(UserRole).where(UserRole.user_id == user.id))
        session.add_all(UserRole(user_id=user.id, role=role) for role in set(data.roles))
    session.add(user)
    session.flush()
    after = _profile(session, user)
    audit.record(session, actor_id=actor_id, action="user.update", entity_type="user", entity_id=user.id,
                 before=before, after=after)
    reviewed = before["is_active"] and Role.reviewer in before["roles"]
    if reviewed and not (after["is_active"] and Role.reviewer in after["roles"]):
        queues.hand_back(session, user_id=user.id, actor_id=actor_id)  # nothing waits on someone who left
    session.commit()
    return user


def _profile(session: Session, user: User) -> dict:
    """What an admin can change about a user, as the audit log records it."""
    return {"display_name": user.display_name, "roles": [str(role) for role in roles_of(session, user.id)],
            "is_active": user.is_active, "native_english": user.native_english}


def set_password(session: Session, *, user_id: int, password: str | None, actor_id: int | None) -> str | None:
    """Sets (or generates, returned once) a password, signs the user out of every session and revokes their API
    tokens: whoever knew the old password may have made one."""
    generated = None if password else generate_password()
    user = get_user(session, user_id=user_id)
    user.password_hash = hash_password(password or generated)
    user.auth_epoch += 1
    session.add(user)
    revoked = session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=utcnow())).rowcount
    audit.record(session, actor_id=actor_id, action="user.password", entity_type="user", entity_id=user.id,
                 after={"tokens_revoked": revoked})
    session.commit()
    return generated


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no user with id {user_id}.")
    return user


def get_by_email(session: Session, *, email: str) -> User:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"There is no user with email {email}.")
    return user


def display_names(session: Session, *, user_ids: list[int | None]) -> dict[int, str]:
    """The display names of these users, by id (a deleted user is missing)."""
    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    if not wanted:
        return {}
    return {user_id: name for user_id, name in session.exec(
        select(User.id, User.display_name).where(User.id.in_(wanted)))}


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.email)))


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The active user with these credentials, or None (the same for every kind of mismatch)."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
        return None
    user.last_login_at = utcnow()
    session.add(user)
    session.commit()
    return user


def start_session(session: Session, *, user_id: int) -> str:
    """A new sign-in: its token for the cookie (only its hash is kept). Commits."""
    token = new_session_token()
    session.add(SignInSession(user_id=user_id, token_hash=hash_api_token(token)))
    session.commit()
    return token


def end_session(session: Session, *, token: str | None) -> None:
    """Signs this session out on the server: its cookie, wherever it was copied, no longer works."""
    if token:
        session.execute(update(SignInSession).where(SignInSession.token_hash == hash_api_token(token),
                                                    SignInSession.ended_at.is_(None)).values(ended_at=utcnow()))
        session.commit()


def user_for_session(session: Session, *, token: str | None, user_id: int) -> User | None:
    """The user of a live session (one statement: every request asks)."""
    if not token:
        return None
    return session.exec(select(User).join(SignInSession, SignInSession.user_id == User.id).where(
        SignInSession.token_hash == hash_api_token(token), SignInSession.ended_at.is_(None),
        User.id == user_id)).first()


def create_token(session: Session, *, user_id: int, name: str, actor_id: int | None,
                 expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new API token, shown once; it stops working after `expires_in_days` (None: when revoked)."""
    name = name.strip()
    if not name:
        raise Invalid("Give the token a name, such as the script that will use it.", fields={"name": "required"})
    if len(name) > 120:
        raise Invalid("Keep the token's name under 120 characters.", fields={"name": "at most 120 characters"})
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise Invalid(f"A token expires within 1 to {MAX_TOKEN_DAYS} days, or never.",
                      fields={"expires_in_days": f"1 to {MAX_TOKEN_DAYS}"})
    token, token_hash, prefix = new_api_token()
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(user_id=user_id, name=name, prefix=prefix, token_hash=token_hash, expires_at=expires_at)
    session.add(row)
    session.flush()
    audit.record(session, actor_id=actor_id, action="token.create", entity_type="api_token", entity_id=row.id,
                 after={"user_id": user_id, "name": row.name, "prefix": prefix,
                        "expires_at": expires_at.isoformat() if expires_at else None})
    session.commit()
    return row, token


def tokens_of(session: Session, *, user_id: int) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())))


def revoke_token(session: Session, *, token_id: int, user_id: int, actor_id: int | None) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:  # someone else's token is as good as none
        raise NotFound(f"There is no token with id {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, actor_id=actor_id, action="token.revoke", entity_type="api_token", entity_id=row.id)
        session.commit()


def user_for_token(session: Session, *, token: str) -> User | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_api_token(token))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return user
