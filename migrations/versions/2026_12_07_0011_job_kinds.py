"""job kinds as the database knows them: a CHECK that a job's kind is one the worker has a handler for
(app.models.JobKind), so that a typo enqueues nothing instead of a job no worker ever claims

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("import", "lint", "export", "preview", "finetune", "score")


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_check_constraint('kind', " OR ".join(f"kind = '{kind}'" for kind in KINDS))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_kind'), type_='check')
