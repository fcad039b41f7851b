"""How fast the studio's main pages answer at Vision-Flan scale (187 tasks, 1.66M instances).

    .venv/bin/python bench/task_pages.py                       # SQLite file in a temp dir
    .venv/bin/python bench/task_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Builds the database through the real migration, fills it with Core bulk inserts (bench/filling.py;
realistic records, or the old thin ones with --thin), then requests each page
through the real app (in-process ASGI client, real database) and prints p50/p95 per page. The baseline,
measured in the same run, is /healthz: the framework, session and database round trip with no work, so
`over_floor_ms` is what each page itself costs. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.core.config import Settings
from app.core.migrate import alembic_config
from app.main import create_app
from app.models import Role
from app.schemas import UserCreate
from app.services import users as user_service
from bench.filling import fill
from tests.scratch import scratch_database, throwaway_folder


def measure(client: TestClient, path: str, repeat: int, headers: dict | None = None) -> dict[str, float]:
    client.get(path, headers=headers)  # warm caches and templates
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--repeat", type=int, default=60, help="requests per page")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/filling.py)")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-bench-")
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        print(f"filling {args.tasks} tasks with {args.instances:,} instances", file=sys.stderr)
        fill(url, args.tasks, args.instances, seed=1, media=workdir / "media", thin=args.thin)
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning",
                                  _env_file=None))
        with Session(app.state.engine) as session:
            user_service.create_user(session, data=UserCreate(email="bench@example.org", display_name="bench",
                                                              roles=[Role.reviewer], password="bench password"),
                                     actor_id=None)
            _, token = user_service.create_token(session, user_id=1, name="bench", actor_id=None)
        client = TestClient(app)
        auth = {"Authorization": f"Bearer {token}"}
        floor = measure(client, "/healthz", args.repeat)
        pages = {
            "dashboard": "/",
            "tasks_first_page": "/tasks",
            "tasks_last_page": "/tasks?after=DATASET091%2Btask_182",
            "tasks_search": "/tasks?q=task_1&category=OCR",
            "tasks_fragment": "/tasks?status=accepted",
            "api_tasks": "/api/v1/tasks?limit=50",
            "task_detail": "/tasks/94",
        }
        figures = {"database": make_url(url).get_backend_name(), "records": "thin" if args.thin else "realistic",
                   "tasks": args.tasks,
                   "instances": args.instances, "baseline_healthz": floor}
        for name, path in pages.items():
            headers = dict(auth)
            if name == "tasks_fragment":
                headers["HX-Request"] = "true"
            result = measure(client, path, args.repeat, headers)
            result["over_floor_p50_ms"] = round(result["p50_ms"] - floor["p50_ms"], 2)
            figures[name] = result
            print(f"  {name:<18} p50 {result['p50_ms']:>8.2f} ms  p95 {result['p95_ms']:>8.2f} ms  "
                  f"(floor p50 {floor['p50_ms']:.2f} ms)", file=sys.stderr)
        app.state.engine.dispose()
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
