"""revisions: proposed changes to a record's content, applied when a second person accepts them; instances gain
a lock_version (a server default, so that the import's bulk path and existing rows need nothing: SQLite and
PostgreSQL add such a column without rewriting the table)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('dismissal', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('origin_id', sa.Integer(), nullable=True),
    sa.Column('origin_detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('base_lock_version', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_comment', sa.Text(), nullable=True),
    sa.Column('self_accepted', sa.Boolean(), nullable=False),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.CheckConstraint("origin = 'manual' OR origin = 'spot_check' OR origin = 'solve_test' OR origin = 'model_suggestion' OR origin = 'bulk_fix' OR origin = 'file'", name=op.f('ck_revision_origin')),
    sa.CheckConstraint("record_kind = 'instance'", name=op.f('ck_revision_record_kind')),
    sa.CheckConstraint("status = 'proposed' OR status = 'accepted' OR status = 'rejected' OR status = 'withdrawn'", name=op.f('ck_revision_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_revision_author_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_revision_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_revision_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revision'))
    )
    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.create_index('ix_revision_record_kind_record_id_id', ['record_kind', 'record_id', 'id'], unique=False)
        batch_op.create_index('ix_revision_reviewer_id_status', ['reviewer_id', 'status'], unique=False)
        batch_op.create_index('ix_revision_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_revision_task_id_status', ['task_id', 'status'], unique=False)
        batch_op.create_index('uq_revision_open_record', ['record_kind', 'record_id'], unique=True, sqlite_where=sa.text("status = 'proposed'"), postgresql_where=sa.text("status = 'proposed'"))

    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_version', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.drop_column('lock_version')

    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.drop_index('uq_revision_open_record', sqlite_where=sa.text("status = 'proposed'"), postgresql_where=sa.text("status = 'proposed'"))
        batch_op.drop_index('ix_revision_task_id_status')
        batch_op.drop_index('ix_revision_status_id')
        batch_op.drop_index('ix_revision_reviewer_id_status')
        batch_op.drop_index('ix_revision_record_kind_record_id_id')

    op.drop_table('revision')
