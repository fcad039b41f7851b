"""initial schema: the whole domain

Revision ID: 0001
Revises:
Create Date: 2026-11-27 16:57:11.267364
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image')),
    sa.UniqueConstraint('sha256', name=op.f('uq_image_sha256'))
    )
    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('native_english', sa.Boolean(), nullable=False),
    sa.Column('auth_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_audit_event_actor_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index('ix_audit_event_entity_type_entity_id_at', ['entity_type', 'entity_id', 'at'], unique=False)

    op.create_table('conversation_pool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('image_root', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_conversation_pool_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_pool')),
    sa.UniqueConstraint('name', name=op.f('uq_conversation_pool_name'))
    )
    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('progress_message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'queued' OR status = 'running' OR status = 'succeeded' OR status = 'failed' OR status = 'cancelled'", name=op.f('ck_job_status')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_job_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_status_lease_expires_at', ['status', 'lease_expires_at'], unique=False)

    op.create_table('source_dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('citation', sa.Text(), nullable=True),
    sa.Column('licence', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('annotator_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_source_dataset_annotator_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_dataset')),
    sa.UniqueConstraint('name', name=op.f('uq_source_dataset_name'))
    )
    with op.batch_alter_table('source_dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_dataset_annotator_id'), ['annotator_id'], unique=False)

    op.create_table('user_role',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.CheckConstraint("role = 'admin' OR role = 'author' OR role = 'reviewer'", name=op.f('ck_user_role_role')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_role_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role', name=op.f('pk_user_role'))
    )
    op.create_table('conversation_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('conversations', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rkey', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_conversation_item_image_id_image'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pool_id'], ['conversation_pool.id'], name=op.f('fk_conversation_item_pool_id_conversation_pool'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_item')),
    sa.UniqueConstraint('pool_id', 'position', name=op.f('uq_conversation_item_pool_id_position'))
    )
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_item_pool_id_rkey', ['pool_id', 'rkey'], unique=False)

    op.create_table('dataset_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('spec_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('manifest', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'building' OR status = 'ready' OR status = 'failed'", name=op.f('ck_dataset_version_status')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_dataset_version_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_dataset_version_job_id_job'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_version')),
    sa.UniqueConstraint('name', name=op.f('uq_dataset_version_name'))
    )
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_version_spec_hash'), ['spec_hash'], unique=False)

    op.create_table('task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('source_dataset_id', sa.Integer(), nullable=True),
    sa.Column('task_group', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('instance_count', sa.Integer(), nullable=False),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'draft' OR status = 'in_review' OR status = 'changes_requested' OR status = 'accepted' OR status = 'verified' OR status = 'retired'", name=op.f('ck_task_status')),
    sa.CheckConstraint("task_group = 'question answering' OR task_group = 'classification' OR task_group = 'generation'", name=op.f('ck_task_task_group')),
    sa.ForeignKeyConstraint(['source_dataset_id'], ['source_dataset.id'], name=op.f('fk_task_source_dataset_id_source_dataset'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task')),
    sa.UniqueConstraint('name', name=op.f('uq_task_name'))
    )
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_source_dataset_id'), ['source_dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_status'), ['status'], unique=False)

    op.create_table('instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('input_text', sa.Text(), nullable=True),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('raw_output', sa.Text(), nullable=False),
    sa.Column('human_preferred_output', sa.Text(), nullable=True),
    sa.Column('split', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('rkey', sa.Integer(), nullable=False),
    sa.Column('provenance', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'active' OR status = 'flagged' OR status = 'excluded'", name=op.f('ck_instance_status')),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_instance_image_id_image'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_instance_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instance')),
    sa.UniqueConstraint('task_id', 'source_id', name=op.f('uq_instance_task_id_source_id'))
    )
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_image_id'), ['image_id'], unique=False)
        batch_op.create_index('ix_instance_task_id_id', ['task_id', 'id'], unique=False)
        batch_op.create_index('ix_instance_task_id_status_rkey', ['task_id', 'status', 'rkey'], unique=False)

    op.create_table('instruction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('draft_text', sa.Text(), nullable=False),
    sa.Column('draft_input_template', sa.Text(), nullable=False),
    sa.Column('draft_output_template', sa.Text(), nullable=False),
    sa.Column('draft_options_style', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('draft_image_placement', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('draft_saved_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("draft_image_placement = 'before' OR draft_image_placement = 'after'", name=op.f('ck_instruction_draft_image_placement')),
    sa.CheckConstraint("draft_options_style = 'paren_letters' OR draft_options_style = 'dot_capitals' OR draft_options_style = 'dot_numbers'", name=op.f('ck_instruction_draft_options_style')),
    sa.CheckConstraint("status = 'draft' OR status = 'in_review' OR status = 'changes_requested' OR status = 'approved' OR status = 'rejected'", name=op.f('ck_instruction_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_instruction_author_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_instruction_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instruction'))
    )
    with op.batch_alter_table('instruction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instruction_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instruction_task_id'), ['task_id'], unique=False)

    op.create_table('instruction_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instruction_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('input_template', sa.Text(), nullable=False),
    sa.Column('output_template', sa.Text(), nullable=False),
    sa.Column('options_style', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('image_placement', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("image_placement = 'before' OR image_placement = 'after'", name=op.f('ck_instruction_version_image_placement')),
    sa.CheckConstraint("options_style = 'paren_letters' OR options_style = 'dot_capitals' OR options_style = 'dot_numbers'", name=op.f('ck_instruction_version_options_style')),
    sa.CheckConstraint("status = 'draft' OR status = 'in_review' OR status = 'changes_requested' OR status = 'approved' OR status = 'rejected'", name=op.f('ck_instruction_version_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_instruction_version_author_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['instruction_id'], ['instruction.id'], name=op.f('fk_instruction_version_instruction_id_instruction'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instruction_version')),
    sa.UniqueConstraint('instruction_id', 'number', name=op.f('uq_instruction_version_instruction_id_number'))
    )
    op.create_table('model_output',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('instruction_version_id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_model_output_instance_id_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instruction_version_id'], ['instruction_version.id'], name=op.f('fk_model_output_instruction_version_id_instruction_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_model_output_job_id_job'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_output')),
    sa.UniqueConstraint('job_id', 'instance_id', 'instruction_version_id', name=op.f('uq_model_output_job_id_instance_id_instruction_version_id'))
    )
    with op.batch_alter_table('model_output', schema=None) as batch_op:
        batch_op.create_index('ix_model_output_instance_id_instruction_version_id', ['instance_id', 'instruction_version_id'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('instruction_version_id', sa.Integer(), nullable=True),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('lease_expires_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("decision = 'approve' OR decision = 'request_changes' OR decision = 'reject'", name=op.f('ck_review_decision')),
    sa.CheckConstraint("subject = 'instruction_version' OR subject = 'task_verification'", name=op.f('ck_review_subject')),
    sa.ForeignKeyConstraint(['instruction_version_id'], ['instruction_version.id'], name=op.f('fk_review_instruction_version_id_instruction_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_review_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_review_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index('ix_review_decided_at_lease_expires_at', ['decided_at', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_instruction_version_id'), ['instruction_version_id'], unique=False)
        batch_op.create_index('ix_review_reviewer_id_decided_at', ['reviewer_id', 'decided_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_task_id'), ['task_id'], unique=False)

    op.create_table('solve_test',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('instruction_version_id', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('pass_threshold', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'open' OR status = 'passed' OR status = 'failed' OR status = 'cancelled'", name=op.f('ck_solve_test_status')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_solve_test_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['instruction_version_id'], ['instruction_version.id'], name=op.f('fk_solve_test_instruction_version_id_instruction_version'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_solve_test_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_solve_test'))
    )
    with op.batch_alter_table('solve_test', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_solve_test_task_id'), ['task_id'], unique=False)

    op.create_table('spot_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('instruction_version_id', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('max_error_rate', sa.Float(), nullable=False),
    sa.Column('double_review', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'open' OR status = 'passed' OR status = 'failed' OR status = 'cancelled'", name=op.f('ck_spot_check_status')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_spot_check_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['instruction_version_id'], ['instruction_version.id'], name=op.f('fk_spot_check_instruction_version_id_instruction_version'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_spot_check_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spot_check'))
    )
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spot_check_task_id'), ['task_id'], unique=False)

    op.create_table('solve_test_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('solve_test_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('solver_id', sa.Integer(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('matched', sa.Boolean(), nullable=True),
    sa.Column('answered_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_solve_test_item_instance_id_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['solve_test_id'], ['solve_test.id'], name=op.f('fk_solve_test_item_solve_test_id_solve_test'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['solver_id'], ['user.id'], name=op.f('fk_solve_test_item_solver_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_solve_test_item')),
    sa.UniqueConstraint('solve_test_id', 'instance_id', name=op.f('uq_solve_test_item_solve_test_id_instance_id'))
    )
    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_solve_test_item_instance_id'), ['instance_id'], unique=False)

    op.create_table('spot_check_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spot_check_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('second_reviewer_id', sa.Integer(), nullable=True),
    sa.Column('second_verdict', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('second_decided_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("second_verdict = 'correct' OR second_verdict = 'wrong_target' OR second_verdict = 'bad_image' OR second_verdict = 'instruction_mismatch' OR second_verdict = 'ambiguous'", name=op.f('ck_spot_check_item_second_verdict')),
    sa.CheckConstraint("verdict = 'correct' OR verdict = 'wrong_target' OR verdict = 'bad_image' OR verdict = 'instruction_mismatch' OR verdict = 'ambiguous'", name=op.f('ck_spot_check_item_verdict')),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_spot_check_item_instance_id_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_spot_check_item_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['second_reviewer_id'], ['user.id'], name=op.f('fk_spot_check_item_second_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['spot_check_id'], ['spot_check.id'], name=op.f('fk_spot_check_item_spot_check_id_spot_check'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spot_check_item')),
    sa.UniqueConstraint('spot_check_id', 'instance_id', name=op.f('uq_spot_check_item_spot_check_id_instance_id'))
    )
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spot_check_item_instance_id'), ['instance_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spot_check_item_instance_id'))

    op.drop_table('spot_check_item')
    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_solve_test_item_instance_id'))

    op.drop_table('solve_test_item')
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spot_check_task_id'))

    op.drop_table('spot_check')
    with op.batch_alter_table('solve_test', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_solve_test_task_id'))

    op.drop_table('solve_test')
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_task_id'))
        batch_op.drop_index('ix_review_reviewer_id_decided_at')
        batch_op.drop_index(batch_op.f('ix_review_instruction_version_id'))
        batch_op.drop_index('ix_review_decided_at_lease_expires_at')

    op.drop_table('review')
    with op.batch_alter_table('model_output', schema=None) as batch_op:
        batch_op.drop_index('ix_model_output_instance_id_instruction_version_id')

    op.drop_table('model_output')
    op.drop_table('instruction_version')
    with op.batch_alter_table('instruction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instruction_task_id'))
        batch_op.drop_index(batch_op.f('ix_instruction_author_id'))

    op.drop_table('instruction')
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_task_id_status_rkey')
        batch_op.drop_index('ix_instance_task_id_id')
        batch_op.drop_index(batch_op.f('ix_instance_image_id'))

    op.drop_table('instance')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_status'))
        batch_op.drop_index(batch_op.f('ix_task_source_dataset_id'))
        batch_op.drop_index(batch_op.f('ix_task_category'))

    op.drop_table('task')
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_version_spec_hash'))

    op.drop_table('dataset_version')
    with op.batch_alter_table('conversation_item', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_item_pool_id_rkey')

    op.drop_table('conversation_item')
    op.drop_table('user_role')
    with op.batch_alter_table('source_dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_dataset_annotator_id'))

    op.drop_table('source_dataset')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_status_lease_expires_at')

    op.drop_table('job')
    op.drop_table('conversation_pool')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_entity_type_entity_id_at')
        batch_op.drop_index(batch_op.f('ix_audit_event_actor_id'))

    op.drop_table('audit_event')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    op.drop_table('user')
    op.drop_table('image')
