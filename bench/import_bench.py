"""Import speed of the unified-format importer against a bare baseline, measured in the same run.

    .venv/bin/python bench/import_bench.py                      # 1.66M instances, SQLite
    .venv/bin/python bench/import_bench.py --instances 300000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Generates the dataset with bench/gen_dataset.py (unless --dataset names one; realistic records, or the old
thin ones with --thin), imports it through the real importer in a child process (so its peak RSS is its
own), then measures the baseline: the same records read with orjson and written into an `instance` table with
the same indexes, each image read, hashed and copied once. On SQLite the rows go in with stdlib
`sqlite3.executemany` in one transaction; on PostgreSQL with one bare psycopg `COPY` into a fresh schema of the
same database. Targets: ratio >= 0.7 on SQLite and >= 0.5 on PostgreSQL, peak RSS < 500 MB at any size.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.scratch import bare_postgres, scratch_database, throwaway_folder

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from pathlib import Path
from app.core.db import make_engine
from bench.peak_memory import peak_mb
from app.ingest.importer import ImportOptions, InstanceImporter
from app.core.migrate import upgrade
from app.core.storage import MediaStore
url, dataset, media = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
upgrade(url)
engine = make_engine(url)
report = InstanceImporter(engine, MediaStore(media), ImportOptions(image_root=dataset.parent)).run(dataset)
print(json.dumps({"imported": report.imported, "rejected": report.rejected_count, "seconds": report.seconds,
                  "peak_rss_mb": round(peak_mb(), 1)}))  # the writer's or its reading process's, the larger
"""

BASELINE_DDL = """
CREATE TABLE instance (id {id} PRIMARY KEY, task_id INTEGER NOT NULL, source_id VARCHAR(200) NOT NULL,
  image_id INTEGER, input_text TEXT, options {json}, raw_output TEXT NOT NULL, human_preferred_output TEXT,
  split VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL, rkey INTEGER NOT NULL, provenance {json},
  created_at {time} NOT NULL, UNIQUE (task_id, source_id));
CREATE INDEX ix_instance_task_id_status_rkey ON instance (task_id, status, rkey);
CREATE INDEX ix_instance_task_id_id ON instance (task_id, id);
CREATE INDEX ix_instance_image_id ON instance (image_id);
"""  # the studio's instance table and indexes, in each database's types
SQLITE_DDL = BASELINE_DDL.format(id="INTEGER", json="JSON", time="DATETIME")
POSTGRES_DDL = BASELINE_DDL.format(id="BIGSERIAL", json="JSONB", time="TIMESTAMP")
COLUMNS = "task_id, source_id, image_id, input_text, options, raw_output, split, status, rkey, created_at"


def baseline(dataset: Path, workdir: Path, database_url: str | None) -> dict:
    """orjson + the database's bare bulk path (sqlite3.executemany, or psycopg COPY) in one transaction, same
    table and indexes, and each image read once, hashed and copied into a content-addressed folder: the floor
    to compare with (a bare script does not check that an image decodes, nor resume, nor report)."""
    if database_url and database_url.startswith("postgresql"):
        with scratch_database(database_url, workdir, prefix="bench_baseline") as url:
            return {"kind": "psycopg COPY", **_timed(dataset, workdir, _PostgresCopy(url))}
    return {"kind": "sqlite3.executemany", **_timed(dataset, workdir, _SqliteInsert(workdir / "baseline.db"))}


def _timed(dataset: Path, workdir: Path, sink) -> dict:
    tasks, images = {}, {}
    media = workdir / "baseline-media"
    started = time.perf_counter()
    count = 0
    with sink:
        batch = []
        with dataset.open("rb") as stream:
            for line in stream:
                if not line.strip():
                    continue
                row = orjson.loads(line)
                task_id = tasks.setdefault(row["task_name"], len(tasks) + 1)
                image_id = images.get(row["img_path"])
                if image_id is None:
                    image_id = images[row["img_path"]] = len(images) + 1
                    _store(dataset.parent / row["img_path"], media)
                options = orjson.dumps(row["options"]).decode() if row["options"] is not None else None
                batch.append((task_id, str(row["instance_id"]), image_id, row["input_text"], options,
                              row["raw_output"], "train", "active", hash(row["instance_id"]) & 0x7FFFFFFF,
                              "2026-01-01 00:00:00"))
                if len(batch) == 50_000:
                    count += sink.insert(batch)
                    batch.clear()
        count += sink.insert(batch)
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": round(seconds, 2), "per_s": round(count / seconds)}


def _store(image: Path, media: Path) -> None:
    data = image.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    target = media / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


class _SqliteInsert:
    def __init__(self, path: Path):
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.executescript(SQLITE_DDL)

    def __enter__(self):
        self.connection.execute("BEGIN")
        return self

    def insert(self, batch: list) -> int:
        self.connection.executemany(f"INSERT INTO instance ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        return len(batch)

    def __exit__(self, *failure) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()


class _PostgresCopy:
    def __init__(self, url: str):
        self.connection = bare_postgres(url)
        self.connection.execute(POSTGRES_DDL)
        self.connection.commit()

    def __enter__(self):
        return self

    def insert(self, batch: list) -> int:
        with self.connection.cursor().copy(f"COPY instance ({COLUMNS}) FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
        return len(batch)

    def __exit__(self, *failure) -> None:
        self.connection.commit()
        self.connection.close()


def browse_p95(url: str, workdir: Path, repeat: int = 40) -> dict:
    """Server time of the instance browser on the biggest task: first page, a deep page, a text search."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select
    from sqlmodel import Session
    from task_pages import measure

    from app.core.config import Settings
    from app.main import create_app
    from app.models import Instance, Role, Task
    from app.schemas import UserCreate
    from app.services import users as user_service

    app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning", _env_file=None))
    with Session(app.state.engine, expire_on_commit=False) as session:
        task = session.exec(select(Task).order_by(Task.instance_count.desc()).limit(1)).scalars().one()
        deep = session.exec(select(func.max(Instance.id)).where(Instance.task_id == task.id)).scalars().one() - 60
        user, _ = user_service.create_user(session, data=UserCreate(email="b@example.org", display_name="b",
                                                                    roles=[Role.reviewer], password="bench password"),
                                           actor_id=None)
        _, token = user_service.create_token(session, user_id=user.id, name="bench", actor_id=None)
    client, auth = TestClient(app), {"Authorization": f"Bearer {token}"}
    timings = [measure(client, path, repeat, auth) for path in (
        f"/tasks/{task.id}/instances", f"/tasks/{task.id}/instances?after={deep}",
        f"/tasks/{task.id}/instances?q=colour+object+3")]
    app.state.engine.dispose()
    return {"task_instances": task.instance_count, "p50_ms": max(t["p50_ms"] for t in timings),
            "p95_ms": max(t["p95_ms"] for t in timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--dataset", type=Path, help="an existing instances.jsonl (its images beside it)")
    parser.add_argument("--database-url", help="import into this database instead of a fresh SQLite file")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/gen_dataset.py --thin)")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-import-bench-")
    dataset = args.dataset
    if dataset is None:
        print(f"generating {args.instances:,} instances in {workdir}", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_dataset.py"), str(workdir / "data"),
                        "--tasks", str(args.tasks), "--instances", str(args.instances),
                        *(["--thin"] if args.thin else [])], check=True,
                       stdout=subprocess.DEVNULL)
        dataset = workdir / "data" / "instances.jsonl"

    with scratch_database(args.database_url, workdir) as url:
        print("importing through the studio's importer", file=sys.stderr)
        os.sync()  # neither side pays for writes still in flight from before (an earlier run's files, a cleanup)
        child = subprocess.run([sys.executable, "-c", CHILD, url, str(dataset), str(workdir / "media")],
                               cwd=ROOT, check=True, capture_output=True, text=True)
        studio = json.loads(child.stdout.strip().splitlines()[-1])
        print("browsing the imported instances", file=sys.stderr)
        browse = browse_p95(url, workdir)
        print("baseline: orjson + the database's bare bulk path", file=sys.stderr)
        os.sync()
        floor = baseline(dataset, workdir, args.database_url)
    per_s = round(studio["imported"] / studio["seconds"])
    figures = {
        "database": url.split(":")[0].split("+")[0], "records": "thin" if args.thin else "realistic",
        "instances": studio["imported"], "instances_per_s": per_s, "baseline": floor["kind"],
        "baseline_per_s": floor["per_s"], "ratio": round(per_s / floor["per_s"], 2),
        "peak_rss_mb": studio["peak_rss_mb"], "import_seconds": studio["seconds"],
        "baseline_seconds": floor["seconds"], "browse_p95_ms": browse["p95_ms"], "browse": browse,
    }
    print(f"  studio {per_s:,}/s, baseline {floor['per_s']:,}/s, ratio {figures['ratio']}, "
          f"peak RSS {studio['peak_rss_mb']} MB", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
