"""The plans of what a request runs, at the bench's own scale: every statement a call sends to PostgreSQL is
captured with its parameters, then run again under `EXPLAIN (ANALYZE, BUFFERS)` in a transaction that is rolled
back, so a plan is measured on the data the figures come from (a plan on a tiny test table says little).

In a bench:  `slowest_plans(engine, lambda: client.post(...), top=3)` -> [(ms, statement, plan text)]."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import Engine, event

EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


def slowest_plans(engine: Engine, call: Callable[[], object], *, top: int = 3) -> list[tuple[float, str, str]]:
    """The `top` statements of `call` by their measured execution time, each with its plan (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return []
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if not executemany and statement.lstrip().split(" ", 1)[0].upper() in ("SELECT", "UPDATE", "INSERT",
                                                                              "DELETE", "WITH"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    for statement, parameters in sent:
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).all()
            finally:
                transaction.rollback()
        text = "\n".join(row[0] for row in rows)
        found = EXECUTION.search(text)
        plans.append((float(found.group(1)) if found else 0.0, " ".join(statement.split()), text))
    return sorted(plans, key=lambda plan: -plan[0])[:top]
