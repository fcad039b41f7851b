"""sign-ins kept on the server (signing out ends a copied cookie too), failed sign-ins counted in the database
(every web process shares the count), API tokens that may expire. Sessions made before this have no server
record: everyone signs in again once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.types import UTCDateTime

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sign_in_count',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('pending', sa.Integer(), nullable=False),
        sa.Column('window_start', UTCDateTime(timezone=True), nullable=False),
        sa.Column('wait_until', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_sign_in_count')),
    )
    op.create_table(
        'sign_in_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_sign_in_session_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_sign_in_session_token_hash')),
    )
    op.create_index(op.f('ix_sign_in_session_user_id'), 'sign_in_session', ['user_id'])
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    op.drop_index(op.f('ix_sign_in_session_user_id'), table_name='sign_in_session')
    op.drop_table('sign_in_session')
    op.drop_table('sign_in_count')
