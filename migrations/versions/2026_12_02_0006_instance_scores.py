"""instance scores (what a model makes of each instance, for ranking by doubt) and targeted spot checks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:51:43.952055
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('instance_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('instruction_version_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('loss', sa.Float(), nullable=False),
    sa.Column('greedy_matched', sa.Boolean(), nullable=False),
    sa.Column('option_probabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('margin', sa.Float(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_instance_score_instance_id_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instruction_version_id'], ['instruction_version.id'], name=op.f('fk_instance_score_instruction_version_id_instruction_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_instance_score_job_id_job'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['model_id'], ['registered_model.id'], name=op.f('fk_instance_score_model_id_registered_model'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_instance_score_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instance_score')),
    sa.UniqueConstraint('instance_id', 'model_id', 'instruction_version_id', name=op.f('uq_instance_score_instance_id_model_id_instruction_version_id'))
    )
    with op.batch_alter_table('instance_score', schema=None) as batch_op:
        batch_op.create_index('ix_instance_score_model_id_instruction_version_id_loss', ['model_id', 'instruction_version_id', 'loss'], unique=False)
        batch_op.create_index(batch_op.f('ix_instance_score_task_id'), ['task_id'], unique=False)
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.add_column(sa.Column('targeted_by_model_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('uniform_share', sa.Float(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_spot_check_targeted_by_model_id_registered_model'),
                                    'registered_model', ['targeted_by_model_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inclusion_probability', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_column('inclusion_probability')
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_spot_check_targeted_by_model_id_registered_model'), type_='foreignkey')
        batch_op.drop_column('uniform_share')
        batch_op.drop_column('targeted_by_model_id')
    with op.batch_alter_table('instance_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_score_task_id'))
        batch_op.drop_index('ix_instance_score_model_id_instruction_version_id_loss')

    op.drop_table('instance_score')
