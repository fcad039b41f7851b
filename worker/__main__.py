"""`python -m worker`: claim a job, run it, record the result; repeat. SIGTERM/SIGINT finish the job in hand.

    python -m worker            # runs until stopped
    python -m worker --once     # runs at most one job, then exits (scripts, tests)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
import traceback
from datetime import timedelta

from app.core.config import Settings
from app.core.db import make_engine
from app.models import JobKind, JobStatus
from app.schemas import jobs as job_payloads
from app.services.job_queue import LeaseLost, claim, finish, requeue_expired
from worker.context import JobCancelled, JobContext
from worker.tiny_model import FAMILIES as TINY_FAMILIES

log = logging.getLogger("studio.worker")


def _run_import(settings, context, payload):
    from worker.ingest import run_import  # imported when needed: each kind loads only what it uses

    return run_import(settings, context, payload)


def _run_lint(settings, context, payload):
    from worker.lint import run_lint

    return run_lint(settings, context, payload)


def _run_export(settings, context, payload):
    from worker.export import run_export

    return run_export(settings, context, payload)


def _run_preview(settings, context, payload):
    from worker.preview import run_preview  # torch and transformers: only when a preview runs

    return run_preview(settings, context, payload)


def _run_finetune(settings, context, payload):
    from worker.finetune_job import run_finetune

    return run_finetune(settings, context, payload)


def _run_score(settings, context, payload):
    from worker.score import run_score

    return run_score(settings, context, payload)


def _run_bulk_fix(settings, context, payload):
    from worker.bulk_fix import run_bulk_fix

    return run_bulk_fix(settings, context, payload)


def _run_score_pool(settings, context, payload):
    from worker.score_pool import run_score_pool

    return run_score_pool(settings, context, payload)


def _run_synthesize(settings, context, payload):
    from worker.synthesize import run_synthesize

    return run_synthesize(settings, context, payload)


HANDLERS = {JobKind.import_: _run_import, JobKind.lint: _run_lint, JobKind.export: _run_export,
            JobKind.preview: _run_preview, JobKind.finetune: _run_finetune, JobKind.score: _run_score,
            JobKind.bulk_fix: _run_bulk_fix, JobKind.synthesize: _run_synthesize, JobKind.score_pool: _run_score_pool}


class Worker:
    def __init__(self, settings: Settings, *, poll_s: float | None = None):
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.lease = timedelta(seconds=settings.job_lease_s)
        self.poll_s = poll_s or settings.worker_poll_s
        self.stopping = False
        self._next_sweep = 0.0  # expired leases are looked for now and then, not on every poll

    def run_once(self) -> bool:
        """Runs one job if one is waiting; False when there was none."""
        if time.monotonic() >= self._next_sweep:  # a write: on every 0.25 s poll it would contend with the web
            requeue_expired(self.engine)
            self._next_sweep = time.monotonic() + min(5.0, self.settings.job_lease_s / 4)
        job = claim(self.engine, owner=self.owner, kinds=list(HANDLERS), lease=self.lease)
        if job is None:
            return False
        log.info("job %s (%s) attempt %s", job.id, job.kind, job.attempts)
        context = JobContext(self.engine, job.id, self.owner, self.lease)
        try:
            result = HANDLERS[JobKind(job.kind)](self.settings, context, job_payloads.read(job.kind, job.payload))
        except JobCancelled:
            finish(self.engine, job_id=job.id, owner=self.owner, status=JobStatus.cancelled)
        except LeaseLost:
            log.warning("job %s: lease lost; another worker has it now", job.id)
        except Exception as error:  # noqa: BLE001 - recorded on the job, shown on its page
            log.error("job %s failed: %s", job.id, traceback.format_exc())
            finish(self.engine, job_id=job.id, owner=self.owner, status=JobStatus.failed, error=str(error))
        else:
            finish(self.engine, job_id=job.id, owner=self.owner, status=JobStatus.succeeded, result=result)
        return True

    def run_forever(self, *, handle_signals: bool = True) -> None:
        """Runs jobs until stopped (SIGTERM/SIGINT: the job in hand is finished first)."""
        if handle_signals:  # only the main thread may; a worker in a thread is stopped by `stopping`
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._stop)
        log.info("worker %s waiting for jobs (%s)", self.owner, ", ".join(HANDLERS))
        while not self.stopping:
            if not self.run_once():
                time.sleep(self.poll_s)
        self.engine.dispose()

    def _stop(self, signum, _frame) -> None:
        log.info("signal %s: finishing the job in hand, then stopping", signum)
        self.stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    commands = parser.add_subparsers(dest="command")
    tiny = commands.add_parser("tiny-model", help="build a tiny random model (LLaVA by default) for tests and the demo")
    tiny.add_argument("out", help="folder to write it to")
    tiny.add_argument("--family", default="llava", choices=TINY_FAMILIES, help="its architecture (default: llava)")
    args = parser.parse_args()
    if args.command == "tiny-model":
        from worker.tiny_model import build_tiny_model

        print(f"tiny model written to {build_tiny_model(args.out, family=args.family)}")
        return
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = Worker(settings)
    if args.once:
        worker.run_once()
    else:
        worker.run_forever()


if __name__ == "__main__":
    main()
