"""Export builds under faults: killed mid-build, run twice at once. Nothing partial is ever visible."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import select

from app.exports.validate import validate_version
from app.models import DatasetVersion, Instance, utcnow
from app.schemas.export_spec import ExportSpec
from app.services import versions as version_service
from app.services.tasks import refresh_instance_counts
from tests.review_helpers import approve, make_qc_task, submit_instruction, team

ROOT = Path(__file__).resolve().parent.parent


def _big_approved_task(db, people, name: str, instances: int):
    task = make_qc_task(db, name, instances=2)
    rng, now = random.Random(1), utcnow()
    db.execute(insert(Instance), [{"task_id": task.id, "source_id": f"bulk-{k}", "input_text": f"Question {k}?",
                                   "raw_output": f"answer {k % 7}", "split": "train", "status": "active",
                                   "rkey": rng.getrandbits(31), "created_at": now} for k in range(instances)])
    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    return task


def test_a_build_killed_midway_leaves_nothing_visible_and_a_retry_completes(app, db, settings, database_url):
    people = team(db)
    task = _big_approved_task(db, people, "BIG+killed", 150_000)
    version = version_service.create(db, spec=ExportSpec(task_ids=[task.id], per_task_cap=10**6), name="killed",
                                     actor_id=None, enqueue=False)
    code = ("import sys; from app.core.config import Settings; from app.services.versions import run_build; "
            f"run_build(Settings(), version_id={version.id})")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")},
           "STUDIO_DATABASE_URL": database_url, "STUDIO_DATA_DIR": str(settings.data_dir), "STUDIO_MODE": "test"}
    builder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    exports = settings.export_dir
    deadline = time.monotonic() + 60
    while not any(path.name.startswith(".building-") and (path / "stage1.json").exists()
                  and (path / "stage1.json").stat().st_size > 100_000 for path in exports.glob(".building-*")):
        assert builder.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.02)
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    db.expire_all()
    assert db.get(DatasetVersion, version.id).status == "building"  # never ready
    assert not (exports / str(version.id)).exists()  # and no partial version where one would be looked for
    [abandoned] = exports.glob(".building-*")
    an_hour_ago = time.time() - 3700
    for path in [abandoned, *abandoned.rglob("*")]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    retried = version_service.run_build(settings, version_id=version.id)
    assert not abandoned.exists()  # the killed build's leftovers are swept once clearly abandoned
    assert retried.status == "ready"
    assert list(validate_version(exports / str(version.id))) == []
    assert retried.manifest["files"]["stage1.json"]["records"] == 150_002


def test_two_builds_of_one_version_at_once_give_one_whole_version(app, db, settings):
    people = team(db)
    task = _big_approved_task(db, people, "BIG+twice", 20_000)
    version = version_service.create(db, spec=ExportSpec(task_ids=[task.id], validation_ratio=0.1), name="twice",
                                     actor_id=None, enqueue=False)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(version_service.run_build(settings, version_id=version.id))
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2
    db.expire_all()
    stored = db.exec(select(DatasetVersion).where(DatasetVersion.id == version.id)).one()
    assert stored.status == "ready" and {r.content_hash for r in results} == {stored.content_hash}
    assert list(validate_version(settings.export_dir / str(version.id))) == []
    assert [p.name for p in settings.export_dir.iterdir()] == [str(version.id)]  # no temporary folder left
