"""bulk fixes: one change to every instance a query picks, reviewed as a whole and applied by a job (bulk_fix,
with its frozen items in bulk_fix_item); the job kind that applies them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("import", "lint", "export", "preview", "finetune", "score")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _job_kinds(kinds: Sequence[str]) -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_kind'), type_='check')
        batch_op.create_check_constraint('kind', " OR ".join(f"kind = '{kind}'" for kind in kinds))


def upgrade() -> None:
    op.create_table('bulk_fix',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('query', JSON, nullable=False),
    sa.Column('change', JSON, nullable=False),
    sa.Column('include_validation', sa.Boolean(), nullable=False),
    sa.Column('undoes_id', sa.Integer(), nullable=True),
    sa.Column('change_count', sa.Integer(), nullable=False),
    sa.Column('validation_count', sa.Integer(), nullable=False),
    sa.Column('refused_count', sa.Integer(), nullable=False),
    sa.Column('hidden_count', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_comment', sa.Text(), nullable=True),
    sa.Column('self_accepted', sa.Boolean(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('applied_through', sa.Integer(), nullable=False),
    sa.Column('applied_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('applied_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status = 'proposed' OR status = 'rejected' OR status = 'withdrawn' OR status = 'accepted' OR status = 'applied'", name=op.f('ck_bulk_fix_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_bulk_fix_author_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_bulk_fix_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_bulk_fix_job_id_job'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['undoes_id'], ['bulk_fix.id'], name=op.f('fk_bulk_fix_undoes_id_bulk_fix'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_fix'))
    )
    with op.batch_alter_table('bulk_fix', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_fix_status_id', ['status', 'id'], unique=False)

    op.create_table('bulk_fix_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bulk_fix_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('changes', JSON, nullable=False),
    sa.Column('base_lock_version', sa.Integer(), nullable=False),
    sa.Column('validation', sa.Boolean(), nullable=False),
    sa.Column('refusal', sa.Text(), nullable=True),
    sa.Column('skipped', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['bulk_fix_id'], ['bulk_fix.id'], name=op.f('fk_bulk_fix_item_bulk_fix_id_bulk_fix'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_bulk_fix_item_instance_id_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_bulk_fix_item_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_fix_item'))
    )
    with op.batch_alter_table('bulk_fix_item', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_fix_item_bulk_fix_id_id', ['bulk_fix_id', 'id'], unique=False)

    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.create_index('ix_revision_origin_origin_id', ['origin', 'origin_id'], unique=False)
    _job_kinds((*KINDS, "bulk_fix"))


def downgrade() -> None:
    op.execute("DELETE FROM job WHERE kind = 'bulk_fix'")
    _job_kinds(KINDS)
    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.drop_index('ix_revision_origin_origin_id')
    with op.batch_alter_table('bulk_fix_item', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_fix_item_bulk_fix_id_id')
    op.drop_table('bulk_fix_item')
    with op.batch_alter_table('bulk_fix', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_fix_status_id')
    op.drop_table('bulk_fix')
