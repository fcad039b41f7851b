"""Column types shared by the tables. Alembic revisions import this module by name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Timestamps are aware UTC in Python on every backend (SQLite keeps no zone, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use app.models.base.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Integers that reach an INTEGER column (ids, lock versions, seeds): PostgreSQL's INTEGER is 32-bit, so
# inputs are bounded to it, and a larger number is a 422 that names the field, not a driver error.
MAX_DB_INT = 2**31 - 1
RowIdValue = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
LockVersion = Annotated[int, Field(ge=0, le=MAX_DB_INT,
                                   description="The version the edit started from; a newer one means a conflict.")]
