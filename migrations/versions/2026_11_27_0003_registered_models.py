"""registered models

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:44:40.905391
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('registered_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('dtype', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("dtype = 'float32' OR dtype = 'bfloat16' OR dtype = 'float16'", name=op.f('ck_registered_model_dtype')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_registered_model_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_model')),
    sa.UniqueConstraint('name', name=op.f('uq_registered_model_name'))
    )


def downgrade() -> None:
    op.drop_table('registered_model')
