"""stage 2 is read: a review per conversation (a verdict per gpt turn), handed out in the pool's seeded order;
conversations are revised like instances (a lock_version, and revisions of record kind 'conversation' that a
conversation review may lead to)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
ORIGINS = ("manual", "spot_check", "solve_test", "model_suggestion", "bulk_fix", "file")
OPEN_RECORD = sa.text("status = 'proposed'")


def _revision_rules(kinds: Sequence[str], origins: Sequence[str]) -> None:
    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_revision_record_kind'), type_='check')
        batch_op.create_check_constraint('record_kind', " OR ".join(f"record_kind = '{kind}'" for kind in kinds))
        batch_op.drop_constraint(op.f('ck_revision_origin'), type_='check')
        batch_op.create_check_constraint('origin', " OR ".join(f"origin = '{origin}'" for origin in origins))
    # SQLite's batch copies the table and its indexes: the one-open-fix-per-record index is made again as it was
    # (partial), whatever the copy kept of its condition.
    op.drop_index('uq_revision_open_record', table_name='revision')
    op.create_index('uq_revision_open_record', 'revision', ['record_kind', 'record_id'], unique=True,
                    sqlite_where=OPEN_RECORD, postgresql_where=OPEN_RECORD)


def upgrade() -> None:
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_version', sa.Integer(), nullable=False, server_default='1'))
    op.create_table('conversation_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('rkey', sa.Integer(), nullable=False),
    sa.Column('decided', sa.Boolean(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('verdicts', JSON, nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('conversation_lock_version', sa.Integer(), nullable=True),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("outcome = 'correct' OR outcome = 'flagged' OR outcome = 'fixed'",
                       name=op.f('ck_conversation_review_outcome')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation_item.id'],
                            name=op.f('fk_conversation_review_conversation_id_conversation_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['conversation_pool.id'],
                            name=op.f('fk_conversation_review_pool_id_conversation_pool'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_conversation_review_reviewer_id_user'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_review')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_conversation_review_conversation_id'))
    )
    with op.batch_alter_table('conversation_review', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_review_decided_rkey_id', ['decided', 'rkey', 'id'], unique=False)
        batch_op.create_index('ix_conversation_review_pool_id_outcome', ['pool_id', 'outcome'], unique=False)
        batch_op.create_index('ix_conversation_review_reviewer_id_decided', ['reviewer_id', 'decided'],
                              unique=False)
    op.execute("INSERT INTO conversation_review (conversation_id, pool_id, rkey, decided, lock_version) "
               "SELECT id, pool_id, rkey, false, 1 FROM conversation_item")
    _revision_rules(("instance", "conversation"), (*ORIGINS, "conversation_review"))


def downgrade() -> None:
    op.execute("DELETE FROM revision WHERE record_kind = 'conversation' OR origin = 'conversation_review'")
    _revision_rules(("instance",), ORIGINS)
    op.drop_table('conversation_review')
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.drop_column('lock_version')
