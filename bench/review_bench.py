"""How fast reviewers get their next item, how fast samples are drawn, and what 16 reviewers at once do to it,
at Vision-Flan scale (187 tasks, 1.66M instances, plus one 10,000-instance task).

    .venv/bin/python bench/review_bench.py                       # SQLite file in a temp dir
    .venv/bin/python bench/review_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

1. "Next item", one reviewer, in-process: server time (the app's Server-Timing header) of claiming and rendering
   the next spot-check item, and of deciding it; baseline: /healthz's server time in the same run.
2. Seeded spot-check samples from the 10,000-instance task (index range scans on the stored random key);
   baseline: `ORDER BY RANDOM() LIMIT n` on the same task in the same run.
   On PostgreSQL, the plans of a decision's three slowest statements, measured with EXPLAIN (ANALYZE, BUFFERS)
   on the bench's data (stderr), and their times in the JSON.
3. 16 (then 8) reviewers on one queue over real HTTP for --swarm-seconds against `python -m app serve` in its
   own process: client latency p50/p95/p99, decisions per second, errors, items handed out twice, and
   decisions lost (accepted by the server but not in the database).
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.migrate import alembic_config
from app.main import create_app
from app.models import Instance, Role, SpotCheckItem, Task, User, utcnow
from app.services import instructions as instruction_service
from app.services import spot_checks
from app.services.sampling import sample_instances
from app.services.tasks import refresh_instance_counts
from bench.filling import fill
from bench.plans import slowest_plans
from tests.factories import login, make_user
from tests.scratch import scratch_database, throwaway_folder
from tests.swarm import run_swarm

ITEM_MARK = 'data-item-id="'


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * (len(ordered) - 1)))], 2) if ordered else 0.0


def server_ms(response) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


def shown_item(response) -> tuple[str, str]:
    """The id and lock version of the item a queue's fragment shows."""
    start = response.text.index(ITEM_MARK) + len(ITEM_MARK)
    return (response.text[start:response.text.index('"', start)],
            response.text.split('data-lock-version="', 1)[1].split('"', 1)[0])


def add_big_task(session: Session, size: int = 10_000) -> Task:
    task = Task(name="BENCH+ten_thousand", category="Perception")
    session.add(task)
    session.flush()
    rng = random.Random(10)
    now = utcnow()
    session.execute(insert(Instance), [
        {"task_id": task.id, "source_id": str(k), "raw_output": ["cat", "dog", "bird"][k % 3], "input_text": f"Q{k}?",
         "options": ["cat", "dog", "bird"], "split": "train", "status": "active", "rkey": rng.getrandbits(31),
         "created_at": now} for k in range(size)])
    refresh_instance_counts(session, task_ids=[task.id])
    session.commit()
    return task


def open_work(session: Session, task: Task, author: User, spot_size: int) -> int:
    instruction = instruction_service.create_instruction(session, task_id=task.id, label="main", author_id=author.id)
    instruction.draft_text = "Which animal is in the picture? Pick one option."
    session.add(instruction)
    session.commit()
    version = instruction_service.submit(session, instruction_id=instruction.id, actor_id=author.id)
    check = spot_checks.create(session, task_id=task.id, actor_id=author.id, size=spot_size, max_error_rate=0.1,
                               version_id=version.id, seed=3)
    session.commit()
    return check.id


def next_item_timings(client: TestClient, csrf: str, repeat: int) -> dict[str, list[float]]:
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    nexts, decides = [], []
    for _ in range(repeat):
        shown = client.post("/review/spot/next", headers=headers)
        nexts.append(server_ms(shown))
        item_id, lock = shown_item(shown)
        decided = client.post(f"/review/spot/{item_id}", data={"verdict": "correct", "lock_version": lock},
                              headers=headers)
        assert decided.status_code == 200, decided.text
        decides.append(server_ms(decided))
    return {"next": nexts, "decide": decides}


def decide_plans(engine, client: TestClient, csrf: str) -> list[tuple[float, str, str]]:
    """The plans of a decision's three slowest statements (the decision and the next item it renders), printed:
    what to read when decide costs more than the next item."""
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    shown = client.post("/review/spot/next", headers=headers)
    item_id, lock = shown_item(shown)
    plans = slowest_plans(engine, lambda: client.post(f"/review/spot/{item_id}", headers=headers,
                                                      data={"verdict": "correct", "lock_version": lock}))
    for ms, statement, plan in plans:
        print(f"  {ms:.2f} ms: {statement[:200]}\n" + "\n".join(f"    {line}" for line in plan.splitlines()),
              file=sys.stderr)
    return plans


def sampling(session: Session, task_id: int, size: int, repeat: int) -> tuple[list[float], list[float]]:
    ours, by_random = [], []
    for seed in range(repeat):
        started = time.perf_counter()
        rows = sample_instances(session, task_id=task_id, seed=seed, size=size)
        ours.append((time.perf_counter() - started) * 1000)
        assert len(rows) == size
        started = time.perf_counter()
        session.exec(select(Instance.id).where(Instance.task_id == task_id, Instance.status == "active")
                     .order_by(func.random()).limit(size)).all()
        by_random.append((time.perf_counter() - started) * 1000)
    return ours, by_random


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, what: str, timeout_s: float = 30) -> None:
    """Returns once something listens on the port; fails when `process` ended or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline and process.poll() is None, f"{what} did not start"
        time.sleep(0.1)


def swarm(url: str, workdir: Path, emails: list[str], seconds: float, web_workers: int) -> dict:
    port = free_port()
    env = {**os.environ, "STUDIO_DATABASE_URL": url, "STUDIO_DATA_DIR": str(workdir), "STUDIO_PORT": str(port),
           "STUDIO_LOG_LEVEL": "warning", "STUDIO_MODE": "dev", "OMP_NUM_THREADS": "1",
           "STUDIO_WEB_WORKERS": str(web_workers)}
    server = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env, cwd=Path(__file__).parent.parent)
    try:
        wait_until_listening(port, server, "the server")
        result = run_swarm(f"http://127.0.0.1:{port}", emails, queue="spot", seconds=seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"reviewers": len(emails), "web_workers": web_workers, "seconds": round(result.seconds, 1),
            "requests": sum(result.statuses.values()),
            "decisions": len(result.decided), "decisions_per_s": round(len(result.decided) / result.seconds, 1),
            "p50_ms": percentile(result.latencies_ms, 0.5), "p95_ms": percentile(result.latencies_ms, 0.95),
            "p99_ms": percentile(result.latencies_ms, 0.99), "server_p50_ms": percentile(result.server_ms, 0.5),
            "server_p95_ms": percentile(result.server_ms, 0.95), "errors": result.server_errors + len(result.problems),
            "double_assignments": result.double_assignments, "_decided": result.decided}


def lost_decisions(session: Session, decided: list[tuple[int, str]]) -> int:
    ids = dict(session.exec(select(User.email, User.id)).all())
    stored = {row for row in session.exec(select(SpotCheckItem.id, SpotCheckItem.reviewer_id)
                                          .where(SpotCheckItem.decided_at.is_not(None))).all()}
    return sum(1 for item_id, email in decided if (item_id, ids[email]) not in stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--repeat", type=int, default=200, help="next items, and samples, to time")
    parser.add_argument("--sample-size", type=int, default=53, help="the default spot-check size")
    parser.add_argument("--swarm-seconds", type=float, default=30.0)
    parser.add_argument("--web-workers", type=int, default=1, help="server processes for the crowds "
                        "(STUDIO_WEB_WORKERS)")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/filling.py)")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-review-bench-")
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        print(f"filling {args.tasks} tasks with {args.instances:,} instances", file=sys.stderr)
        fill(url, args.tasks, args.instances, seed=1, media=workdir / "media", thin=args.thin)
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning",
                                  _env_file=None))
        with Session(app.state.engine, expire_on_commit=False) as session:
            session.execute(text("UPDATE task SET status = 'draft'"))
            session.commit()
            author = make_user(session, Role.author, email="author@bench.org")
            reviewer = make_user(session, Role.reviewer, email="reviewer@bench.org")
            big = add_big_task(session)
            open_work(session, big, author, spot_size=10_000)  # enough for both crowds never to run dry
            emails = [make_user(session, Role.reviewer, email=f"r{k}@bench.org").email for k in range(16)]
            client = TestClient(app, follow_redirects=False)
            csrf = login(client, reviewer.email)
            floor = [server_ms(client.get("/healthz")) for _ in range(args.repeat)]
            next_item_timings(client, csrf, 10)  # warm up
            timings = next_item_timings(client, csrf, args.repeat)
            ours, by_random = sampling(session, big.id, args.sample_size, args.repeat)
            plans = decide_plans(app.state.engine, client, csrf)
            print(f"  next item p50 {statistics.median(timings['next']):.1f} ms, p95 "
                  f"{percentile(timings['next'], 0.95)} ms (healthz p95 {percentile(floor, 0.95)} ms)", file=sys.stderr)
            print(f"  sample p95 {percentile(ours, 0.95)} ms vs ORDER BY RANDOM() p95 {percentile(by_random, 0.95)} ms",
                  file=sys.stderr)
        app.state.engine.dispose()
        crowds = {}
        for count in (16, 8):
            crowds[count] = swarm(url, workdir, emails[:count], args.swarm_seconds, args.web_workers)
            print(f"  {count} reviewers: " + ", ".join(f"{k} {v}" for k, v in crowds[count].items()
                                                       if not k.startswith("_")), file=sys.stderr)
        engine = create_app(Settings(mode="test", data_dir=workdir, database_url=url, _env_file=None)).state.engine
        with Session(engine) as session:
            lost = lost_decisions(session, crowds[16].pop("_decided") + crowds[8].pop("_decided"))
        engine.dispose()
        figures = {
            "database": make_url(url).get_backend_name(), "records": "thin" if args.thin else "realistic",
            "tasks": args.tasks + 1,
            "instances": args.instances + 10_000,
            "baseline_healthz_p95_ms": percentile(floor, 0.95),
            "next_item_p50_ms": round(statistics.median(timings["next"]), 2),
            "next_item_p95_ms": percentile(timings["next"], 0.95),
            "decide_p95_ms": percentile(timings["decide"], 0.95),
            "sample_size": args.sample_size, "sample_p95_ms": percentile(ours, 0.95),
            "order_by_random_p95_ms": percentile(by_random, 0.95),
            "slowest_statements_of_a_decide_ms": [round(ms, 2) for ms, _, _ in plans],
            "swarm_16": crowds[16], "swarm_8": crowds[8],
            "double_assignments": crowds[16]["double_assignments"] + crowds[8]["double_assignments"],
            "errors": crowds[16]["errors"] + crowds[8]["errors"], "lost_decisions": lost,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
