"""Fixes at scale: the corrections queue's next item against /healthz, and what fixes cost a build, on realistic
records (bench/filling.py) at 300,000 instances.

    .venv/bin/python bench/corrections_bench.py                 # SQLite file in a temp dir
    .venv/bin/python bench/corrections_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

1. `queue_next_p95_ratio`: the server time (Server-Timing) of the corrections queue's next item, claimed and
   rendered as a reviewer sees it (the instance before and after, as the export renders it), over /healthz's taken
   just before each one, with --proposed fixes waiting; then each one accepted (`decide_p95_ms`). Target <= 3.
2. `export_slowdown`: building every task (a version's build, in this process) after 10% of the instances were
   fixed since the spec's pin (its moment, as a new version pins; so the build rolls those fixes back), over the
   same build before those fixes, in the same run; the two builds' stage1.json must be the same bytes. Also
   `current_slowdown`: a build pinned after the fixes (the usual case: values as they are). Target <= 1.2.
3. `peak_rss_mb`: the builds' peak (each in a process of its own, with the processes it forks), and each
   build's in the order they ran (`build_peaks_mb`; stderr splits each into the build's own process and its
   largest part). Target < 500. Measured as VmHWM (bench/peak_memory.py): a child's ru_maxrss starts at this
   bench's own peak, which grew with every build it started (the rows it holds, the web app), and had been read
   as the builds' growth. `bench_process_rss_mb` is this process's.
4. `bulk_ratio`: a bare executemany loop doing the same inserts (one revision per instance) and updates (the
   instances' new values), a transaction per 2,000 as the fix's chunks, over applying an accepted bulk fix of
   --bulk instances (replace "a" with "A" inside targets and options, in as many tasks as it takes) through
   `bulk_fix_apply.apply`, in the same run. Target >= 0.5. Also `bulk_propose_s`: working out and storing the
   fix (every instance of those tasks read, its items written).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.migrate import alembic_config
from app.main import create_app
from app.models import BulkFixItem, Instance, Revision, Role, Task, utcnow
from app.schemas.bulk_fixes import BulkDecisionIn, BulkFixIn, BulkQuery, ReplaceChange
from app.schemas.export_spec import ExportSpec
from app.services import bulk_fix_apply, bulk_fixes
from app.services.blinding import NONE
from bench.export_bench import approve_every_task
from bench.filling import fill
from bench.peak_memory import own_peak_mb
from bench.review_bench import percentile, server_ms, shown_item
from tests.factories import login, make_user
from tests.scratch import scratch_database, throwaway_folder


def revisions_of(rows, *, author_id: int, status: str, now) -> list[dict]:
    """Revision rows fixing each (instance, task, target): the target gets a word more."""
    return [{"record_kind": "instance", "record_id": instance_id, "task_id": task_id, "reason": "bench",
             "changes": {"raw_output": {"before": raw, "after": raw + " (fixed)"}}, "dismissal": False,
             "origin": "manual", "base_lock_version": 0, "status": status, "author_id": author_id,
             "created_at": now, "self_accepted": False, "lock_version": 1,
             **({"decided_at": now} if status == "accepted" else {})} for instance_id, task_id, raw in rows]


def queue_timings(client: TestClient, csrf: str, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """The next fix's, the decision's and /healthz's server times, /healthz's taken just before each next fix: on a
    shared machine whose speed drifts over a minute, a floor measured apart had made the ratio swing 1.8-3.9."""
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    nexts, decides, floor = [], [], []
    for _ in range(repeat):
        floor.append(server_ms(client.get("/healthz")))
        shown = client.post("/review/corrections/next", headers=headers)
        nexts.append(server_ms(shown))
        item_id, lock = shown_item(shown)
        decided = client.post(f"/review/corrections/{item_id}", data={"decision": "accept", "lock_version": lock},
                              headers=headers)
        assert decided.status_code == 200, decided.text
        decides.append(server_ms(decided))
    return nexts, decides, floor


BUILD = """
import json, sys, time
from app.core.db import make_engine
from bench.peak_memory import children_peak_mb, own_peak_mb
from app.core.storage import MediaStore
from app.exports.build import build
from app.prompts.tokens import estimate
from app.schemas.export_spec import ExportSpec
url, spec, out, media = sys.argv[1], ExportSpec.model_validate_json(sys.argv[2]), sys.argv[3], sys.argv[4]
started = time.perf_counter()
build(make_engine(url), spec=spec, destination=__import__("pathlib").Path(out), media=MediaStore(media),
      count_tokens=estimate, name="bench")
own, parts = own_peak_mb(), children_peak_mb()
print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": max(own, parts), "own_mb": own,
                  "parts_mb": parts}))
"""


def timed_build(url: str, spec: ExportSpec, workdir: Path, name: str) -> tuple[float, float, bytes]:
    """A version's build in a process of its own (its peak RSS is its own): seconds, peak MB, stage1.json."""
    out = workdir / "exports" / name
    done = subprocess.run([sys.executable, "-c", BUILD, url, spec.model_dump_json(), str(out), str(workdir / "media")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {name}: {figures['seconds']:.1f} s, peak {figures['own_mb']:.0f} MB in the build's process, "
          f"{figures['parts_mb']:.0f} MB in its largest part process", file=sys.stderr)
    return figures["seconds"], figures["peak_mb"], (out / "stage1.json").read_bytes()


def bulk_timings(engine, *, tasks: list[int], per_task: int, wanted: int, author_id: int,
                 reviewer_id: int) -> dict:
    """Proposes, accepts and applies a bulk fix of about `wanted` instances, then runs the bare loop."""
    chosen = tasks[:max(1, -(-wanted * 5 // (per_task * 4)))]  # 85-95% of the realistic records hold an "a"
    data = BulkFixIn(query=BulkQuery(task_ids=chosen), reason="bench: capital A",
                     change=ReplaceChange(action="replace", find="a", replace_with="A", whole_value=False))
    with Session(engine) as session:
        started = time.perf_counter()
        fix = bulk_fixes.propose(session, data=data, author_id=author_id, blindfold=NONE, self_accept_allowed=False)
        propose_s = time.perf_counter() - started
        fix = bulk_fixes.decide(session, fix_id=fix.id, user_id=reviewer_id, blindfold=NONE,
                                data=BulkDecisionIn(decision="accept", lock_version=fix.lock_version))
        print(f"  applying a bulk fix of {fix.change_count:,} instances", file=sys.stderr)
        started = time.perf_counter()
        applied = bulk_fix_apply.apply(session, fix_id=fix.id)
        apply_s = time.perf_counter() - started
        items = session.exec(select(BulkFixItem.instance_id, BulkFixItem.task_id, BulkFixItem.changes).where(
            BulkFixItem.bulk_fix_id == fix.id).order_by(BulkFixItem.id)).all()
    started = time.perf_counter()
    bare_loop(engine, items, author_id=author_id)
    bare_s = time.perf_counter() - started
    print(f"  bulk fix {apply_s:.1f} s ({applied.applied:,} applied), bare loop {bare_s:.1f} s", file=sys.stderr)
    return {"bulk_instances": applied.applied, "bulk_propose_s": round(propose_s, 1),
            "bulk_apply_s": round(apply_s, 1), "bulk_bare_s": round(bare_s, 1),
            "bulk_ratio": round(bare_s / apply_s, 2)}


def bare_loop(engine, items, *, author_id: int, chunk: int = bulk_fix_apply.CHUNK) -> None:
    """The same revisions inserted and the same values written, with nothing else: no checks, no locks, no
    progress, one statement per field set as the fix groups them."""
    table = Instance.__table__
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        now = utcnow()
        with engine.begin() as connection:
            connection.execute(insert(Revision), [
                {"record_kind": "instance", "record_id": instance_id, "task_id": task_id, "changes": changes,
                 "dismissal": False, "reason": "bench: capital A", "origin": "bulk_fix", "base_lock_version": 1,
                 "status": "accepted", "author_id": author_id, "created_at": now, "decided_at": now,
                 "self_accepted": False, "lock_version": 1} for instance_id, task_id, changes in part])
            groups: dict[tuple, list] = {}
            for instance_id, _, changes in part:
                groups.setdefault(tuple(sorted(changes)), []).append(
                    {"instance": instance_id, **{f"new_{name}": change["after"] for name, change in changes.items()}})
            for fields, rows in groups.items():
                connection.execute(update(table).where(table.c.id == bindparam("instance")).values(
                    lock_version=table.c.lock_version + 1, **{name: bindparam(f"new_{name}") for name in fields}),
                    rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--tasks", type=int, default=34)
    parser.add_argument("--instances", type=int, default=300_000)
    parser.add_argument("--proposed", type=int, default=5_000, help="fixes waiting in the queue")
    parser.add_argument("--repeat", type=int, default=200, help="next items to time")
    parser.add_argument("--fixed-share", type=float, default=0.1)
    parser.add_argument("--bulk", type=int, default=100_000, help="instances a bulk fix changes")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-corrections-bench-")
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        print(f"filling {args.tasks} tasks with {args.instances:,} instances", file=sys.stderr)
        fill(url, args.tasks, args.instances, seed=1, media=workdir / "media")
        approve_every_task(url)
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning",
                                  _env_file=None))
        engine = app.state.engine
        with Session(engine, expire_on_commit=False) as session:
            author = make_user(session, Role.author, email="author@bench.org")
            reviewer = make_user(session, Role.reviewer, email="reviewer@bench.org")
            rows = session.exec(select(Instance.id, Instance.task_id, Instance.raw_output)).all()
            rng = random.Random(5)
            rng.shuffle(rows)
            spec = ExportSpec(task_ids=list(session.exec(select(Task.id))), per_task_cap=10_000_000)

            # 1. the queue, with fixes waiting
            waiting = rows[:args.proposed]
            session.execute(insert(Revision), revisions_of(waiting, author_id=author.id, status="proposed",
                                                            now=utcnow()))
            session.commit()
            client = TestClient(app, follow_redirects=False)
            csrf = login(client, reviewer.email)
            queue_timings(client, csrf, 10)  # warm up
            nexts, decides, floor = queue_timings(client, csrf, args.repeat)
            print(f"  next fix p50 {statistics.median(nexts):.1f} ms, p95 {percentile(nexts, 0.95)} ms "
                  f"(healthz p95 {percentile(floor, 0.95)} ms); accept p95 {percentile(decides, 0.95)} ms",
                  file=sys.stderr)
            session.execute(text("DELETE FROM revision WHERE status = 'proposed'"))
            session.commit()
            # pinned as a new version pins: the moment (and the newest revision, as specs from before it did)
            pinned = {"revisions_through": session.exec(select(Revision.id).order_by(Revision.id.desc())).first(),
                      "as_of": utcnow()}
            print("building with the queue's fixes", file=sys.stderr)
            before_s, before_mb, before = timed_build(url, spec.model_copy(update=pinned), workdir, "before")

            # 2. 10% of the instances fixed after the pin: accepted revisions and the current values they wrote
            fixed = rows[args.proposed:args.proposed + int(args.fixed_share * len(rows))]
            session.execute(insert(Revision), revisions_of(fixed, author_id=author.id, status="accepted",
                                                            now=utcnow()))
            session.connection().execute(
                update(Instance.__table__).where(Instance.__table__.c.id == bindparam("fixed_id"))
                .values(raw_output=bindparam("after"), lock_version=Instance.__table__.c.lock_version + 1),
                [{"fixed_id": instance_id, "after": raw + " (fixed)"} for instance_id, _, raw in fixed])
            session.commit()
            newest = {"revisions_through": session.exec(select(Revision.id).order_by(Revision.id.desc())).first(),
                      "as_of": utcnow()}
        print(f"building pinned before {len(fixed):,} fixes, and after them", file=sys.stderr)
        pinned_s, pinned_mb, again = timed_build(url, spec.model_copy(update=pinned), workdir, "pinned")
        assert again == before, "a pinned spec must build the same bytes"
        current_s, current_mb, current = timed_build(url, spec.model_copy(update=newest), workdir, "current")
        assert current != before
        print("bulk fix", file=sys.stderr)
        with Session(engine) as session:
            task_ids = list(session.exec(select(Task.id).order_by(Task.id)))
        bulk = bulk_timings(engine, tasks=task_ids, per_task=args.instances // args.tasks, wanted=args.bulk,
                            author_id=author.id, reviewer_id=reviewer.id)
        engine.dispose()
        peak_mb = max(before_mb, pinned_mb, current_mb)  # the builds' own; the queue's is the web app's
        print(f"  build peaks: {before_mb:.0f} MB before, {pinned_mb:.0f} MB pinned, {current_mb:.0f} MB current",
              file=sys.stderr)
        web_mb = own_peak_mb()
        figures = {"database": make_url(url).get_backend_name(), "instances": args.instances,
                   "proposed_waiting": args.proposed, "queue_next_p50_ms": round(statistics.median(nexts), 2),
                   "queue_next_p95_ms": percentile(nexts, 0.95), "healthz_p95_ms": percentile(floor, 0.95),
                   "queue_next_p95_ratio": round(percentile(nexts, 0.95) / max(percentile(floor, 0.95), 0.01), 2),
                   "decide_p95_ms": percentile(decides, 0.95), "fixed_instances": len(fixed),
                   "build_s": round(before_s, 1), "pinned_build_s": round(pinned_s, 1),
                   "current_build_s": round(current_s, 1), "export_slowdown": round(pinned_s / before_s, 2),
                   "current_slowdown": round(current_s / before_s, 2), "peak_rss_mb": round(peak_mb, 1),
                   "build_peaks_mb": [round(before_mb), round(pinned_mb), round(current_mb)],
                   "bench_process_rss_mb": round(web_mb, 1), **bulk}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
