"""QC gates that hold: a `checks_failed` task status, the reasons an admin gives for weaker or replacing checks
and for versions built over a failed check, one running check of a kind per task and one verifier per slot of a
verification round (unique indexes).

Repairs what the old rules let through, each with an audit event: a task accepted or verified while its latest
check of a kind had failed goes to `checks_failed` (its undecided verification slots withdrawn); a person who
holds an undecided second slot of the same round gives it back; a second slot that person decided is replaced by
a fresh one (the task, verified by one person, goes back to accepted).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("draft", "in_review", "changes_requested", "accepted", "verified", "retired")
NEW_STATUSES = ("draft", "in_review", "changes_requested", "accepted", "verified", "checks_failed", "retired")
SLOT = "subject = 'task_verification' AND reviewer_id IS NOT NULL"


def _status_check(statuses) -> str:
    return " OR ".join(f"status = '{status}'" for status in statuses)


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_task_status'), type_='check')
        batch_op.create_check_constraint('status', _status_check(NEW_STATUSES))
    for table in ('solve_test', 'spot_check'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('override_reason', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qc_override_reason', sa.Text(), nullable=True))
    connection = op.get_bind()
    for table in ('solve_test', 'spot_check'):
        _one_open_per_task(connection, table)
        op.create_index(f'uq_{table}_open_per_task', table, ['task_id'], unique=True,
                        sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
    _one_vote_per_round(connection)
    op.create_index('uq_review_verifier_per_round', 'review', ['task_id', 'round', 'reviewer_id'], unique=True,
                    sqlite_where=sa.text(SLOT), postgresql_where=sa.text(SLOT))
    _send_back_failed(connection)


def downgrade() -> None:
    op.drop_index('uq_review_verifier_per_round', table_name='review')
    for table in ('spot_check', 'solve_test'):
        op.drop_index(f'uq_{table}_open_per_task', table_name=table)
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.drop_column('qc_override_reason')
    for table in ('spot_check', 'solve_test'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('cancel_reason')
            batch_op.drop_column('override_reason')
    op.execute("UPDATE task SET status = 'in_review' WHERE status = 'checks_failed'")
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_task_status'), type_='check')
        batch_op.create_check_constraint('status', _status_check(OLD_STATUSES))


def _audit(connection, *, task_id: int, action: str, entity_type: str, entity_id: int, before=None, after=None):
    connection.execute(sa.text(
        "INSERT INTO audit_event (at, actor_id, action, entity_type, entity_id, task_id, before, after) "
        "VALUES (:at, NULL, :action, :entity_type, :entity_id, :task_id, :before, :after)").bindparams(
        sa.bindparam("before", type_=sa.JSON()), sa.bindparam("after", type_=sa.JSON())),
        {"at": datetime.now(UTC), "action": action, "entity_type": entity_type, "entity_id": str(entity_id),
         "task_id": task_id, "before": before, "after": after})


def _one_open_per_task(connection, table: str) -> None:
    """Before the unique index: of a task's running checks of a kind (opened by a race), the newest runs on."""
    connection.execute(sa.text(f"""
        UPDATE {table} SET status = 'cancelled', completed_at = :now,
               cancel_reason = 'another check of this kind was running at the same time (migration 0009)'
        WHERE status = 'open' AND EXISTS (SELECT 1 FROM {table} newer WHERE newer.task_id = {table}.task_id
                                          AND newer.status = 'open' AND newer.id > {table}.id)"""),
        {"now": datetime.now(UTC)})


def _one_vote_per_round(connection) -> None:
    """Before the unique index: every (task, round, reviewer) that holds or decided more than one slot keeps its
    first; an undecided extra is given back, a decided one is replaced by a fresh slot and its task unverified."""
    extras = connection.execute(sa.text("""
        SELECT r.id, r.task_id, r.round, r.reviewer_id, r.decision, r.needs_native_english
        FROM review r WHERE r.subject = 'task_verification' AND r.reviewer_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM review o WHERE o.subject = 'task_verification' AND o.task_id = r.task_id
                      AND o.round = r.round AND o.reviewer_id = r.reviewer_id AND o.id < r.id)
        ORDER BY r.id""")).all()
    for review_id, task_id, round_number, reviewer_id, decision, native in extras:
        if decision is None:
            connection.execute(sa.text("UPDATE review SET reviewer_id = NULL, lease_expires_at = NULL, "
                                       "lock_version = lock_version + 1 WHERE id = :id"), {"id": review_id})
            continue
        connection.execute(sa.text("DELETE FROM review WHERE id = :id"), {"id": review_id})
        connection.execute(sa.text(
            "INSERT INTO review (subject, task_id, round, needs_native_english, lock_version, created_at) "
            "VALUES ('task_verification', :task_id, :round, :native, 1, :now)"),
            {"task_id": task_id, "round": round_number, "native": native, "now": datetime.now(UTC)})
        _audit(connection, task_id=task_id, action="verification.void", entity_type="review", entity_id=review_id,
               before={"reviewer_id": reviewer_id, "decision": decision, "round": round_number},
               after={"reason": "the same person decided both slots of this verification round; the slot is open "
                                "again for someone else"})
        moved = connection.execute(sa.text("UPDATE task SET status = 'accepted', lock_version = lock_version + 1 "
                                           "WHERE id = :id AND status = 'verified'"), {"id": task_id}).rowcount
        if moved:
            _audit(connection, task_id=task_id, action="task.transition", entity_type="task", entity_id=task_id,
                   before={"status": "verified"},
                   after={"status": "accepted", "reason": "verified by one person in two slots (migration 0009)"})


def _send_back_failed(connection) -> None:
    """Accepted or verified tasks whose latest concluded check of a kind failed (a solve test counts only where
    the task needs one) go to checks_failed; their undecided verification slots are withdrawn."""
    latest = """(SELECT c.status FROM {table} c WHERE c.task_id = t.id AND c.status IN ('passed', 'failed')
                 ORDER BY c.id DESC LIMIT 1)"""
    rows = connection.execute(sa.text(f"""
        SELECT t.id, t.status FROM task t
        WHERE t.status IN ('accepted', 'verified')
          AND ({latest.format(table='spot_check')} = 'failed'
               OR (t.solve_test_required AND {latest.format(table='solve_test')} = 'failed'))
        ORDER BY t.id""")).all()
    for task_id, status in rows:
        connection.execute(sa.text("UPDATE task SET status = 'checks_failed', lock_version = lock_version + 1 "
                                   "WHERE id = :id"), {"id": task_id})
        connection.execute(sa.text("DELETE FROM review WHERE task_id = :id AND subject = 'task_verification' "
                                   "AND decided_at IS NULL"), {"id": task_id})
        _audit(connection, task_id=task_id, action="task.transition", entity_type="task", entity_id=task_id,
               before={"status": status}, after={"status": "checks_failed", "reason": "its latest quality check "
                                                 "failed (sent back by migration 0009)"})

