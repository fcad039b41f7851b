"""a version's stage 2 draws from reviewed conversations unless its spec says stage2_unreviewed: the versions made
before conversations were reviewed drew from every conversation, and their stored specs now say so (their digest
is the same: a spec that draws from every conversation writes no stage2_unreviewed into it)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:30:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _set_unreviewed(value: bool | None) -> None:
    connection = op.get_bind()
    versions = sa.table('dataset_version', sa.column('id', sa.Integer), sa.column('spec', JSON))
    for version_id, spec in connection.execute(sa.select(versions.c.id, versions.c.spec)).all():
        spec = json.loads(spec) if isinstance(spec, str) else spec
        if spec.get("conversation_pool_id") is None:
            continue
        if value is None:
            spec.pop("stage2_unreviewed", None)
            spec.pop("as_of", None)
        else:
            spec["stage2_unreviewed"] = value
        connection.execute(versions.update().where(versions.c.id == version_id).values(spec=spec))


def upgrade() -> None:
    _set_unreviewed(True)


def downgrade() -> None:
    _set_unreviewed(None)
