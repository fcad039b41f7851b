"""People and how they authenticate: users, their roles, API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, one_of, optional_time_field
from app.models.types import UTCDateTime


class Role(StrEnum):
    admin = "admin"  # manages users, datasets and everything else
    author = "author"  # writes instructions, registers datasets and tasks
    reviewer = "reviewer"  # reviews instructions, blind-solves and spot-checks


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, description="Lower-cased; the login name.")
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255, description="argon2id; never the password.")
    is_active: bool = Field(default=True)
    native_english: bool = Field(default=False, description="Final verification needs one native speaker.")
    auth_epoch: int = Field(default=0, description="Bumped to sign out every session of this user.")
    created_at: datetime = created_at_field()
    last_login_at: datetime | None = optional_time_field()


class UserRole(SQLModel, table=True):
    __tablename__ = "user_role"
    __table_args__ = (one_of("role", Role),)

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(max_length=20, primary_key=True)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=120)
    prefix: str = Field(max_length=16, description="First characters, shown so people can tell tokens apart.")
    token_hash: str = Field(max_length=64, unique=True, description="sha256 of the token; the token is shown once.")
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = optional_time_field()
    revoked_at: datetime | None = optional_time_field()
    expires_at: datetime | None = optional_time_field()


class SignInCount(SQLModel, table=True):
    """Failed sign-ins counted by where they came from or which account they tried, in the database so that every
    web process shares them. An attempt is `pending` while its password is checked, and counts against the limit
    meanwhile, so parallel attempts cannot slip past it."""

    __tablename__ = "sign_in_count"

    key: str = Field(primary_key=True, max_length=300, description="address:<ip> or account:<email>")
    failures: int = Field(default=0)
    pending: int = Field(default=0, description="Attempts whose password is being checked right now.")
    window_start: datetime = Field(sa_type=UTCDateTime, nullable=False)
    wait_until: datetime | None = optional_time_field()


class SignInSession(SQLModel, table=True):
    """A browser's sign-in, kept on the server: the cookie carries a random token whose sha256 is here, so that
    signing out ends the session even where its cookie was copied to."""

    __tablename__ = "sign_in_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    ended_at: datetime | None = optional_time_field()
