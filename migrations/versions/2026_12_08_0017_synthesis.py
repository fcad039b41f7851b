"""stage 2 is written as well as read: a conversation keeps its kind (LLaVA-Instruct's three) and, when a model
wrote it, its origin (generator, prompt version, sampling, context, when); the prompts that synthesis uses are
versioned and reviewed; a model's loss on every answer of a pool is kept to read the least likely first; and
`synthesize` and `score_pool` are job kinds

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
KINDS = ("import", "lint", "export", "preview", "finetune", "score", "bulk_fix")


def _job_kinds(kinds: Sequence[str]) -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_kind'), type_='check')
        batch_op.create_check_constraint('kind', " OR ".join(f"kind = '{kind}'" for kind in kinds))


def upgrade() -> None:
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('origin', JSON, nullable=True))
    op.create_table('synthesis_prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind = 'conversation' OR kind = 'detail' OR kind = 'complex_reasoning'",
                       name=op.f('ck_synthesis_prompt_kind')),
    sa.CheckConstraint("status = 'draft' OR status = 'approved' OR status = 'rejected'",
                       name=op.f('ck_synthesis_prompt_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_synthesis_prompt_author_id_user'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_synthesis_prompt_reviewer_id_user'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_synthesis_prompt')),
    sa.UniqueConstraint('kind', 'version', name=op.f('uq_synthesis_prompt_kind_version'))
    )
    op.create_table('conversation_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('turn_losses', JSON, nullable=False),
    sa.Column('worst_loss', sa.Float(), nullable=False),
    sa.Column('worst_turn', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation_item.id'],
                            name=op.f('fk_conversation_score_conversation_id_conversation_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['conversation_pool.id'],
                            name=op.f('fk_conversation_score_pool_id_conversation_pool'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['registered_model.id'],
                            name=op.f('fk_conversation_score_model_id_registered_model'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_conversation_score_job_id_job'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_score')),
    sa.UniqueConstraint('conversation_id', 'model_id', name=op.f('uq_conversation_score_conversation_id_model_id'))
    )
    op.create_index('ix_conversation_score_pool_id_model_id_worst_loss', 'conversation_score',
                    ['pool_id', 'model_id', 'worst_loss'], unique=False)
    _job_kinds((*KINDS, "score_pool", "synthesize"))


def downgrade() -> None:
    op.execute("DELETE FROM job WHERE kind = 'synthesize' OR kind = 'score_pool'")
    _job_kinds(KINDS)
    op.drop_index('ix_conversation_score_pool_id_model_id_worst_loss', table_name='conversation_score')
    op.drop_table('conversation_score')
    op.drop_table('synthesis_prompt')
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.drop_column('origin')
        batch_op.drop_column('kind')
