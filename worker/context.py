"""What a running job can do: report progress (which also keeps its lease) and learn it should stop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from app.services.job_queue import heartbeat


class JobCancelled(RuntimeError):
    """Someone asked the job to stop; it stops between two units of work."""


@dataclass
class JobContext:
    engine: Engine
    job_id: int
    owner: str
    lease: timedelta
    every_s: float = 1.0  # at most one heartbeat per second, however often progress is reported
    _last: float = field(default=0.0, init=False)

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        """Records progress and renews the lease; raises JobCancelled when the job was asked to stop."""
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        if heartbeat(self.engine, job_id=self.job_id, owner=self.owner, lease=self.lease, progress=fraction,
                     message=message):
            raise JobCancelled(f"job {self.job_id} was cancelled")
