"""Many reviewers working one queue at once over real HTTP, as the concurrency test and the review bench use it.

Each reviewer signs in, asks for the next item, decides it, and gets the next one in the same response,
until the time is up or the queue is empty. Everything handed out and every answer is recorded, so the
caller can check that no item went to two reviewers and that every accepted decision is in the database."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx2

from tests.factories import PASSWORD, csrf_from

ITEM = re.compile(r'id="item" data-queue="[a-z]+" data-item-id="(\d+)" data-lock-version="(\d+)"')


@dataclass
class SwarmResult:
    handed: list[tuple[int, str]] = field(default_factory=list)  # (item id, reviewer) for every hand-out
    decided: list[tuple[int, str]] = field(default_factory=list)  # decisions the server accepted
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # as the reviewer waited
    server_ms: list[float] = field(default_factory=list)  # of which the app worked (Server-Timing)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def double_assignments(self) -> int:
        holders: dict[int, set[str]] = {}
        for item_id, who in self.handed:
            holders.setdefault(item_id, set()).add(who)
        return sum(1 for people in holders.values() if len(people) > 1)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


def _reviewer(base_url: str, email: str, queue: str, verdict: dict, seconds: float, result: SwarmResult,
              lock: threading.Lock, start: threading.Barrier) -> None:
    with httpx2.Client(base_url=base_url, follow_redirects=False, timeout=60) as client:
        token = csrf_from(client.get("/login").text)
        signed_in = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        if signed_in.status_code != 303:
            with lock:
                result.problems.append(f"{email} could not sign in: {signed_in.status_code}")
            start.abort()
            return
        csrf = csrf_from(client.get("/account").text)
        headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
        try:
            start.wait()  # everybody signed in (password hashing is slow on purpose): now the clock runs
        except threading.BrokenBarrierError:
            return  # someone could not sign in: the run is void
        deadline = time.monotonic() + seconds
        url, data = f"/review/{queue}/next", {}
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = client.post(url, data=data, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            found = ITEM.search(response.text)
            with lock:
                result.statuses[response.status_code] += 1
                result.latencies_ms.append(elapsed)
                if "server-timing" in response.headers:
                    result.server_ms.append(float(response.headers["server-timing"].split("dur=")[1]))
                if response.status_code == 200 and data:
                    result.decided.append((int(url.rsplit("/", 1)[1]), email))
                if found:
                    result.handed.append((int(found.group(1)), email))
                elif response.status_code != 200:
                    result.problems.append(f"{email}: {response.status_code} {response.text[:200]}")
            if response.status_code >= 500 or not found:
                if 'id="queue-empty"' in response.text:
                    return
                url, data = f"/review/{queue}/next", {}  # after a refusal, ask the queue again
                continue
            url = f"/review/{queue}/{found.group(1)}"
            data = {**verdict, "lock_version": found.group(2)}


def run_swarm(base_url: str, emails: list[str], *, queue: str = "spot", seconds: float = 30.0,
              verdict: dict | None = None) -> SwarmResult:
    result, lock = SwarmResult(), threading.Lock()
    start = threading.Barrier(len(emails) + 1)
    threads = [threading.Thread(target=_reviewer, args=(base_url, email, queue, verdict or {"verdict": "correct"},
                                                        seconds, result, lock, start)) for email in emails]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # someone could not sign in: recorded in problems
        start.wait(timeout=120)
    started = time.monotonic()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result
