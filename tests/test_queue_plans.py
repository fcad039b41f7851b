"""The queues' hot statements read what they need from an index, on SQLite, whose planner has no statistics
unless someone runs ANALYZE: a claim must walk a check's undecided items in queue order and stop, not sort every
open item (it did, at 15 ms a claim with 10,000 items open, until the limit was written into its SQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlmodel import Session

from app.models import QcStatus, Role, SpotCheck, SpotCheckItem
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


def _cancelled_then_open(db, reviewer_instances: int):
    """A task whose first spot check was cancelled with all its items undecided, and a second one open."""
    from app.services import checks

    author = make_user(db, Role.author)
    task = make_qc_task(db, "PLAN+spot", instances=reviewer_instances)
    _, version, _ = submit_instruction(db, task, author)
    cancelled = spot_checks.create(db, task_id=task.id, actor_id=author.id, size=reviewer_instances,
                                   max_error_rate=0.5, version_id=version.id, seed=1)
    db.flush()
    checks.cancel(db, checks.SPOT, check_id=cancelled.id, task_id=task.id, actor_id=author.id, reason="redrawn")
    opened = spot_checks.create(db, task_id=task.id, actor_id=author.id, size=reviewer_instances,
                                max_error_rate=0.5, version_id=version.id, seed=2)
    db.commit()
    return opened


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_spot_check_claim_reads_the_queue_order_index_from_the_first_open_check_and_stops(db):
    opened = _cancelled_then_open(db, 200)
    reviewer = make_user(db, Role.reviewer)

    claim = leases.claim_query(spot_checks.first_pass_candidates(), SpotCheckItem, postgres=False)
    sql, parameters = executed_sql(db, claim, leases.params(user_id=reviewer.id))
    plan = query_plan(db, sql, parameters)

    assert "USING INDEX ix_spot_check_item_undecided_position (spot_check_id>?)" in plan, plan  # from the open one
    assert "SCAN spot_check_item" not in plan and "TEMP B-TREE" not in plan, plan  # no walk, no sort
    assert "LIMIT ?" not in sql  # the planner is told how few rows are wanted
    # and the claim still hands out the open check's first undecided item in queue order
    first = db.exec(claim, params=leases.params(user_id=reviewer.id)).first()
    item = db.get(SpotCheckItem, first[0])
    assert (item.spot_check_id, item.position) == (opened.id, 0)


def _undecided_share_in_statistics(db) -> float:
    """What PostgreSQL's statistics say of the items' undecided share (the null fraction of decided_at)."""
    return db.connection().exec_driver_sql(
        "SELECT null_frac FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'spot_check_item' "
        "AND attname = 'decided_at'").scalar_one()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_spot_check_claim_on_postgresql_reads_a_few_index_entries_and_sorts_nothing(db):
    """The plan PostgreSQL runs, measured (EXPLAIN ANALYZE), with the statistics a check's opening leaves: before the
    queue-order index of undecided items it read and sorted every undecided item of the open checks."""
    import json

    from sqlalchemy import update

    from app.models.types import utcnow

    # Statistics taken when nearly every item was decided (as at scale, before a new check opens): the check's
    # opening must bring them up to date, or the planner, expecting a handful of undecided items, sorts them all.
    author = make_user(db, Role.author)
    task = make_qc_task(db, "PLAN+done", instances=3000)
    _, version, _ = submit_instruction(db, task, author)
    done = spot_checks.create(db, task_id=task.id, actor_id=author.id, size=3000, max_error_rate=0.5,
                              version_id=version.id, seed=1)
    db.execute(update(SpotCheckItem).where(SpotCheckItem.spot_check_id == done.id)
               .values(decided_at=utcnow(), verdict="correct"))
    db.execute(update(SpotCheck).where(SpotCheck.id == done.id).values(status=QcStatus.passed))
    db.commit()
    db.connection().exec_driver_sql("ANALYZE spot_check_item")
    db.commit()
    assert _undecided_share_in_statistics(db) == 0
    opened = _cancelled_then_open(db, 2000)
    # Opening a check analysed its items: the statistics know 4,000 of the 7,000 are undecided.
    assert _undecided_share_in_statistics(db) == pytest.approx(4 / 7, abs=0.05)
    reviewer = make_user(db, Role.reviewer)
    claim = leases.claim_query(spot_checks.first_pass_candidates(), SpotCheckItem, postgres=True)
    sql, parameters = executed_sql(db, claim, leases.params(user_id=reviewer.id))
    (plan,), = db.connection().exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", parameters).all()
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack += node.get("Plans", [])
    assert not [node for node in nodes if node["Node Type"] in ("Sort", "Incremental Sort")], plan
    scans = [node for node in nodes if node.get("Relation Name") == "spot_check_item"]
    assert scans and all(node["Actual Rows"] <= 10 for node in scans), json.dumps(plan)[:3000]
    first = db.exec(claim, params=leases.params(user_id=reviewer.id)).first()
    item = db.get(SpotCheckItem, first[0])
    assert (item.spot_check_id, item.position) == (opened.id, 0)
