"""The queues' hot statements read what they need from an index, on SQLite, whose planner has no statistics
unless someone runs ANALYZE: a claim must walk a check's undecided items in queue order and stop, not sort every
open item (it did, at 15 ms a claim with 10,000 items open, until the limit was written into its SQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlmodel import Session

from app.models import Role, SpotCheckItem
from app.services import leases, spot_checks
from tests.factories import make_user
from tests.review_helpers import make_qc_task, submit_instruction


def executed_sql(session: Session, statement, values) -> tuple[str, tuple]:
    """The SQL and parameters the driver got when `statement` ran with `values`."""
    seen = {}

    def capture(connection, cursor, sql, parameters, context, executemany) -> None:
        seen.update(sql=sql, parameters=parameters)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        session.execute(statement, values).all()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen["sql"], seen["parameters"]


def query_plan(session: Session, sql: str, parameters: tuple) -> str:
    """SQLite's EXPLAIN QUERY PLAN of `sql`, one step per line."""
    return "\n".join(row[-1] for row in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_spot_check_claim_reads_the_queue_order_index_and_stops(db):
    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    task = make_qc_task(db, "PLAN+spot", instances=200)
    _, version, _ = submit_instruction(db, task, author)
    spot_checks.create(db, task_id=task.id, actor_id=author.id, size=200, max_error_rate=0.5, version_id=version.id,
                       seed=1)
    db.commit()

    claim = leases.claim_query(spot_checks.first_pass_candidates(), SpotCheckItem, postgres=False)
    sql, parameters = executed_sql(db, claim, leases.params(user_id=reviewer.id))
    plan = query_plan(db, sql, parameters)

    assert "ix_spot_check_item_spot_check_id_decided_at_position" in plan, plan
    assert "SCAN spot_check_item" not in plan, plan  # no walk over every item of every check
    assert "LIMIT ?" not in sql  # the planner is told how few rows are wanted
    # and the claim still hands out the first undecided item in queue order
    first = db.exec(claim, params=leases.params(user_id=reviewer.id)).first()
    assert db.get(SpotCheckItem, first[0]).position == 0
