"""review queues: leases, verification slots, task history

New non-null columns get server defaults so that existing rows take them; flagged counts are computed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:28:37.665887
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_event_task_id'), ['task_id'], unique=False)

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_native_english', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('judged_at', app.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lock_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_solve_test_item_answered_at_lease_expires_at', ['answered_at', 'lease_expires_at'], unique=False)

    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=False, server_default='0.95'))
        batch_op.add_column(sa.Column('census', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('second_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lock_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_spot_check_item_decided_at_lease_expires_at', ['decided_at', 'lease_expires_at'], unique=False)
        batch_op.create_index('ix_spot_check_item_spot_check_id_decided_at', ['spot_check_id', 'decided_at'], unique=False)
        batch_op.create_index('ix_spot_check_item_spot_check_id_second_decided_at', ['spot_check_id', 'second_decided_at'], unique=False)

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flagged_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('solve_test_required', sa.Boolean(), nullable=False, server_default=sa.true()))

    op.execute("UPDATE task SET flagged_count = (SELECT count(*) FROM instance "
               "WHERE instance.task_id = task.id AND instance.status = 'flagged')")


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('solve_test_required')
        batch_op.drop_column('flagged_count')

    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_index('ix_spot_check_item_spot_check_id_second_decided_at')
        batch_op.drop_index('ix_spot_check_item_spot_check_id_decided_at')
        batch_op.drop_index('ix_spot_check_item_decided_at_lease_expires_at')
        batch_op.drop_column('lock_version')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('second_note')

    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.drop_column('census')
        batch_op.drop_column('confidence')

    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.drop_index('ix_solve_test_item_answered_at_lease_expires_at')
        batch_op.drop_column('lock_version')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('judged_at')

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_column('needs_native_english')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_task_id'))
        batch_op.drop_column('task_id')

