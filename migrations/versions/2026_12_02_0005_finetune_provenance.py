"""fine-tune provenance and step metrics

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:30:12.985323
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_created_by_id_id', ['created_by_id', 'id'], unique=False)
        batch_op.create_index('ix_job_kind_id', ['kind', 'id'], unique=False)

    with op.batch_alter_table('job_metric', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lr', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('samples_per_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('tokens_per_s', sa.Float(), nullable=True))

    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_job_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('base_model_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_registered_model_version_id'), ['version_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_registered_model_version_id_dataset_version'), 'dataset_version', ['version_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_registered_model_source_job_id_job'), 'job', ['source_job_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_registered_model_base_model_id_registered_model'), 'registered_model', ['base_model_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_registered_model_base_model_id_registered_model'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_registered_model_source_job_id_job'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_registered_model_version_id_dataset_version'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_registered_model_version_id'))
        batch_op.drop_column('base_model_id')
        batch_op.drop_column('version_id')
        batch_op.drop_column('source_job_id')

    with op.batch_alter_table('job_metric', schema=None) as batch_op:
        batch_op.drop_column('tokens_per_s')
        batch_op.drop_column('samples_per_s')
        batch_op.drop_column('lr')

    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_kind_id')
        batch_op.drop_index('ix_job_created_by_id_id')

