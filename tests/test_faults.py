"""Faults as they happen in production: a worker process killed with SIGKILL in the middle of an import, and
PostgreSQL dropping every connection (what a restart does to them) while the app serves requests.
(An export killed mid-build is in test_export_faults.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from app.ingest import CHUNK_SIZE
from app.models import Instance, Job, JobStatus, Role
from app.schemas.jobs import ImportPayload
from app.services import jobs as job_service
from tests.factories import PASSWORD, alive, csrf_from, make_task, make_user

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 200_000


def worker_process(data_dir: Path, database_url: str, **settings: str) -> subprocess.Popen:
    """`python -m worker` with a 5 s lease and nothing of this process's STUDIO_ settings but `settings` (names as
    STUDIO_ variables: media_url=... is STUDIO_MEDIA_URL)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}, "STUDIO_MODE": "test",
           "STUDIO_DATABASE_URL": database_url, "STUDIO_DATA_DIR": str(data_dir), "STUDIO_JOB_LEASE_S": "5",
           "STUDIO_LOG_LEVEL": "warning", "OMP_NUM_THREADS": "1",
           **{f"STUDIO_{name.upper()}": value for name, value in settings.items()}}
    return subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env)


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert process is None or process.poll() is None, f"the worker exited ({process.returncode}) before {what}"
        time.sleep(0.05)
    return value


def test_a_worker_killed_mid_import_loses_and_duplicates_nothing_and_the_retry_finishes(app, db, settings,
                                                                                       database_url):
    incoming = settings.resolved_import_root
    incoming.mkdir(parents=True, exist_ok=True)
    with (incoming / "big.jsonl").open("w") as out:
        for k in range(RECORDS):
            out.write(json.dumps({"instance_id": f"i{k}", "img_path": None, "options": None, "input_text": f"Q{k}?",
                                  "raw_output": f"a{k % 9}", "dataset_name": "BIG", "task_name": f"t{k % 3}"}) + "\n")
    job = job_service.enqueue(db, ImportPayload(format="unified", file="big.jsonl"), created_by_id=None)

    def instances() -> int:
        db.rollback()  # a fresh snapshot each time
        return db.exec(select(func.count()).select_from(Instance)).one()

    def job_now() -> Job:
        db.rollback()
        db.refresh(job)
        return job

    first = worker_process(settings.data_dir, database_url)
    try:
        wait_for(lambda: instances() >= 10_000, 60, "the first chunks", first)
        helpers = children_of(first.pid)  # the import's reading process
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # A helper outliving the worker would hold copies of its connections open, and with them the locks of
    # its unfinished transaction: the retry below would wait on them forever.
    assert helpers, "the import reads in a process of its own"
    wait_for(lambda: not any(alive(pid) for pid in helpers), 15, "the worker's helpers to end with it")
    kept = instances()
    assert 0 < kept < RECORDS, "the import must be killed part-way for this test to mean anything"
    assert kept % CHUNK_SIZE == 0  # whole chunks only
    assert (job_now().status, job.attempts) == (JobStatus.running, 1)  # its lease will run out: nobody heart-beats

    second = worker_process(settings.data_dir, database_url)
    try:
        wait_for(lambda: job_now().status in (JobStatus.succeeded, JobStatus.failed), 120, "the retry to finish",
                 second)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert (job.status, job.attempts) == (JobStatus.succeeded, 2), job.error
    assert instances() == RECORDS
    distinct = db.exec(select(func.count(func.distinct(Instance.source_id)))).one()
    assert distinct == RECORDS  # nothing twice
    assert (job.result["imported"], job.result["duplicates"]) == (RECORDS - kept, kept)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no server to lose
def test_the_app_recovers_by_itself_when_postgresql_drops_every_connection(app, db, live_server, database_url):
    make_task(db, "SHAPES+shape_qa", instances=3)
    make_user(db, Role.reviewer, email="reader@example.org")
    with httpx2.Client(base_url=live_server, follow_redirects=False, timeout=30) as client:
        csrf = csrf_from(client.get("/login").text)
        assert client.post("/login", data={"email": "reader@example.org", "password": PASSWORD,
                                           "csrf_token": csrf}).status_code == 303
        assert client.get("/tasks").status_code == 200
        outcomes: list[tuple[float, int | str]] = []
        retry_after: list[str | None] = []  # of each 503
        stop = threading.Event()

        def browse() -> None:
            with httpx2.Client(base_url=live_server, cookies=client.cookies, timeout=30) as reader:
                while not stop.is_set():
                    try:
                        response = reader.get("/tasks")
                        outcomes.append((time.monotonic(), response.status_code))
                        if response.status_code == 503:
                            retry_after.append(response.headers.get("Retry-After"))
                    except httpx2.HTTPError as error:  # the server hung up without an answer: a failure here
                        outcomes.append((time.monotonic(), type(error).__name__))

        readers = [threading.Thread(target=browse) for _ in range(4)]
        for reader in readers:
            reader.start()
        time.sleep(0.5)
        cut = time.monotonic()
        killer = create_engine(database_url.split("?")[0])
        with killer.connect() as connection:  # what a restart does to every connection the app holds
            dropped = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = :name"), {"name": make_url(database_url).query["application_name"]}).scalar()
        killer.dispose()
        time.sleep(1.5)
        stop.set()
        for reader in readers:
            reader.join()
    assert dropped >= 1
    statuses = {status for _, status in outcomes}
    assert statuses <= {200, 503}, statuses  # a request caught in the cut is told to retry, never a 500
    assert set(retry_after) <= {"2"}  # and when (test_pages checks a 503 for certain, with nothing listening)
    after = [status for moment, status in outcomes if moment > cut + 0.5]
    assert after and set(after) == {200}  # and then it works again, with nobody restarting anything
