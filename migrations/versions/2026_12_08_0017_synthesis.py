"""stage 2 is written as well as read: a conversation keeps its kind (LLaVA-Instruct's three) and, when a model
wrote it, its origin (generator, prompt version, sampling, context, when); the prompts that synthesis uses are
versioned and reviewed; and `synthesize` is a job kind

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
    _job_kinds((*KINDS, "synthesize"))


def downgrade() -> None:
    op.execute("DELETE FROM job WHERE kind = 'synthesize'")
    _job_kinds(KINDS)
    op.drop_table('synthesis_prompt')
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.drop_column('origin')
        batch_op.drop_column('kind')
