"""The web app under load at Vision-Flan scale: 16 clients for 60 s across the main pages and the reviewer's
next-item endpoint, against `python -m app serve` in its own process(es).

    .venv/bin/python bench/web_load.py                       # SQLite file in a temp dir
    .venv/bin/python bench/web_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Every client signs in as a reviewer and, until time is up, picks its next request at random by weight: the
dashboard, the task list (plain and searched), a task page, a task's instance browser, an instance page,
the datasets, the review overview, and "next item" then its decision in the spot-check queue. It measures
client latency (p50/p95/p99), throughput, errors (5xx and transport failures) and the server's resident
memory (sampled each second, summed over its processes, reported per web process).

Baseline, same run, same clients: the same load on /healthz only, which costs the stack (HTTP, middleware,
one session) and nothing else; pages are compared with it. The clients share this machine's two cores with
the server, as in review_bench. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.migrate import alembic_config
from app.main import create_app
from app.models import Instance, Role, Task
from bench.filling import fill
from bench.review_bench import add_big_task, free_port, open_work, percentile
from tests.factories import PASSWORD, csrf_from, make_user
from tests.scratch import scratch_database, throwaway_folder
from tests.swarm import ITEM

# (name, weight): what a team's day looks like, roughly; "next" is a next-item request plus its decision.
MIX = [("dashboard", 1), ("tasks", 2), ("tasks_search", 1), ("task", 2), ("instances", 2), ("instance", 1),
       ("datasets", 1), ("review", 1), ("next", 3)]


class Load:
    """Latencies per request kind, statuses and transport errors, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.server: dict[str, list[float]] = defaultdict(list)  # the app's own time (Server-Timing)
        self.statuses: Counter = Counter()
        self.failures: list[str] = []

    def record(self, kind: str, started: float, response: httpx2.Response | None, failure: str | None = None):
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            if response is None:
                self.failures.append(f"{kind}: {failure}")
                return
            self.latencies[kind].append(elapsed)
            self.statuses[response.status_code] += 1
            timing = response.headers.get("server-timing", "")
            if "dur=" in timing:
                self.server[kind].append(float(timing.split("dur=")[1].split(",")[0]))

    def all_latencies(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]

    @property
    def errors(self) -> int:
        return len(self.failures) + sum(count for status, count in self.statuses.items() if status >= 500)


def client_loop(base_url: str, email: str, targets: dict, only_health: bool, seconds: float, load: Load,
                start: threading.Barrier, seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*MIX, strict=True)
    with httpx2.Client(base_url=base_url, follow_redirects=False, timeout=60) as client:
        token = csrf_from(client.get("/login").text)
        client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        csrf = csrf_from(client.get("/account").text)
        htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kind = "healthz" if only_health else rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                if kind == "next":
                    shown = client.post("/review/spot/next", headers=htmx)
                    load.record("next", started, shown)
                    found = ITEM.search(shown.text)
                    if found:
                        started = time.perf_counter()
                        decided = client.post(f"/review/spot/{found.group(1)}", headers=htmx,
                                              data={"verdict": "correct", "lock_version": found.group(2)})
                        load.record("decide", started, decided)
                    continue
                load.record(kind, started, client.get(url_for(kind, targets, rng)))
            except httpx2.HTTPError as error:
                load.record(kind, started, None, f"{type(error).__name__}: {error}")


def url_for(kind: str, targets: dict, rng: random.Random) -> str:
    task_id = rng.choice(targets["task_ids"])
    return {"healthz": "/healthz", "dashboard": "/", "tasks": "/tasks",
            "tasks_search": f"/tasks?q=task_{rng.randrange(187):03d}",
            "task": f"/tasks/{task_id}", "instances": f"/tasks/{task_id}/instances",
            "instance": f"/instances/{rng.randint(1, targets['max_instance_id'])}", "datasets": "/datasets",
            "review": "/review"}[kind]


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its worker processes (uvicorn --workers forks them)."""
    total, seen = 0, {pid}
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        seen |= {int(child) for child in children.read_text().split()}
    for process in seen:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def run(base_url: str, emails: list[str], targets: dict, seconds: float, server_pid: int, only_health: bool) -> dict:
    load = Load()
    start = threading.Barrier(len(emails) + 1)
    threads = [threading.Thread(target=client_loop, args=(base_url, email, targets, only_health, seconds, load, start,
                                                          k), daemon=True) for k, email in enumerate(emails)]
    for thread in threads:
        thread.start()
    start.wait()
    began, peak_rss = time.monotonic(), rss_mb(server_pid)
    while any(thread.is_alive() for thread in threads):
        time.sleep(1)
        peak_rss = max(peak_rss, rss_mb(server_pid))
    elapsed = time.monotonic() - began
    everything = load.all_latencies()
    return {"seconds": round(elapsed, 1), "requests": len(everything) + len(load.failures),
            "requests_per_s": round(len(everything) / elapsed, 1),
            "p50_ms": percentile(everything, 0.5), "p95_ms": percentile(everything, 0.95),
            "p99_ms": percentile(everything, 0.99), "errors": load.errors, "statuses": dict(load.statuses),
            "failures": load.failures[:5], "peak_rss_mb": round(peak_rss, 1),
            "p95_ms_by_kind": {kind: percentile(values, 0.95) for kind, values in sorted(load.latencies.items())},
            "server_p50_ms_by_kind": {kind: percentile(values, 0.5) for kind, values in sorted(load.server.items())}}


def serve(url: str, workdir: Path, web_workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "STUDIO_DATABASE_URL": url, "STUDIO_DATA_DIR": str(workdir), "STUDIO_PORT": str(port),
           "STUDIO_LOG_LEVEL": "warning", "STUDIO_MODE": "dev", "OMP_NUM_THREADS": "1",
           "STUDIO_WEB_WORKERS": str(web_workers)}
    server = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server, f"http://127.0.0.1:{port}"
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--web-workers", type=int, default=1, help="server processes (STUDIO_WEB_WORKERS)")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/filling.py)")
    args = parser.parse_args()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request would drown the figures

    workdir = throwaway_folder("studio-web-load-")
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        print(f"filling {args.tasks} tasks with {args.instances:,} instances", file=sys.stderr)
        fill(url, args.tasks, args.instances, seed=1, media=workdir / "media", thin=args.thin)
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, _env_file=None))
        with Session(app.state.engine, expire_on_commit=False) as session:
            session.execute(text("UPDATE task SET status = 'draft'"))
            session.commit()
            author = make_user(session, Role.author, email="author@bench.org")
            open_work(session, add_big_task(session), author, spot_size=10_000)
            emails = [make_user(session, Role.reviewer, email=f"r{k}@bench.org").email for k in range(args.clients)]
            targets = {"task_ids": list(session.exec(select(Task.id)).all()),
                       "max_instance_id": session.exec(select(Instance.id).order_by(Instance.id.desc())).first()}
        app.state.engine.dispose()
        server, base_url = serve(url, workdir, args.web_workers)
        try:
            baseline = run(base_url, emails, targets, args.baseline_seconds, server.pid, only_health=True)
            print(f"  baseline /healthz: p95 {baseline['p95_ms']} ms, {baseline['requests_per_s']} req/s",
                  file=sys.stderr)
            pages = run(base_url, emails, targets, args.seconds, server.pid, only_health=False)
            print(f"  pages: p50 {pages['p50_ms']} ms, p95 {pages['p95_ms']} ms, p99 {pages['p99_ms']} ms, "
                  f"{pages['requests_per_s']} req/s, errors {pages['errors']}, RSS {pages['peak_rss_mb']} MB",
                  file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)
        figures = {
            "database": make_url(url).get_backend_name(), "records": "thin" if args.thin else "realistic",
            "tasks": args.tasks + 1,
            "instances": args.instances + 10_000, "clients": args.clients, "web_workers": args.web_workers,
            "p50_ms": pages["p50_ms"], "p95_ms": pages["p95_ms"], "p99_ms": pages["p99_ms"],
            "requests": pages["requests"], "requests_per_s": pages["requests_per_s"], "errors": pages["errors"],
            "rss_mb": round(pages["peak_rss_mb"] / args.web_workers, 1),
            "baseline_healthz_p95_ms": baseline["p95_ms"], "baseline_requests_per_s": baseline["requests_per_s"],
            "p95_ratio_to_baseline": round(pages["p95_ms"] / baseline["p95_ms"], 2) if baseline["p95_ms"] else None,
            "p95_ms_by_kind": pages["p95_ms_by_kind"], "server_p50_ms_by_kind": pages["server_p50_ms_by_kind"],
            "statuses": pages["statuses"], "failures": pages["failures"],
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
