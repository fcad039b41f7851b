"""spot check verdict counts, kept as verdicts come in (the dashboard reads them instead of counting items), and
indexes on what a reviewer holds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('error_count', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.create_index('ix_spot_check_item_reviewer_id_decided_at', ['reviewer_id', 'decided_at'])
        batch_op.create_index('ix_spot_check_item_second_reviewer_id_second_decided_at',
                              ['second_reviewer_id', 'second_decided_at'])
    # The checks made before: counted once from their items.
    op.execute("""
        UPDATE spot_check SET
          decided_count = (SELECT count(*) FROM spot_check_item i
                           WHERE i.spot_check_id = spot_check.id AND i.verdict IS NOT NULL),
          error_count = (SELECT count(*) FROM spot_check_item i
                         WHERE i.spot_check_id = spot_check.id AND i.verdict IS NOT NULL AND i.verdict <> 'correct')
    """)


def downgrade() -> None:
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_index('ix_spot_check_item_second_reviewer_id_second_decided_at')
        batch_op.drop_index('ix_spot_check_item_reviewer_id_decided_at')
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.drop_column('error_count')
        batch_op.drop_column('decided_count')
