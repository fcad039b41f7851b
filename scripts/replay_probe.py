"""Replays the QC-integrity probe's reproductions (issue 28) against a running studio and says, for each, whether
the studio refused it. Run it against a fresh demo, never a studio people use: it signs in wrongly on purpose,
opens checks and cancels jobs.

    make run &                                              # a fresh demo on http://127.0.0.1:8000
    .venv/bin/python scripts/replay_probe.py --url http://127.0.0.1:8000 --credentials data/demo-credentials.txt

It prints one line per reproduction and, last, one JSON object: {"refused": n, "held": n, "failures": [...]}.
Exit status 1 when a reproduction was not refused."""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(url: str, email: str, password: str) -> tuple[httpx2.Client, str]:
    client = httpx2.Client(base_url=url, follow_redirects=False, timeout=60)
    token = CSRF.search(client.get("/login").text).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    if response.status_code != 303:
        raise SystemExit(f"{email} could not sign in ({response.status_code}): is this a fresh demo?")
    return client, CSRF.search(client.get("/account").text).group(1)


class Probe:
    def __init__(self, url: str, accounts: dict[str, str]):
        self.url, self.accounts, self.results = url, accounts, []

    def check(self, name: str, refused: bool, detail: str = "") -> None:
        self.results.append((name, refused))
        print(f"{'refused' if refused else 'HELD   '}  {name}{f' ({detail})' if detail else ''}")

    def as_(self, who: str) -> tuple[httpx2.Client, str]:
        email = f"{who}@studio.local"
        return signed_in(self.url, email, self.accounts[email])

    def token(self, client: httpx2.Client, csrf: str) -> dict[str, str]:
        made = client.post("/api/v1/me/tokens", json={"name": "probe"}, headers={"X-CSRF-Token": csrf}).json()
        return {"Authorization": f"Bearer {made['token']}"}


def run(probe: Probe) -> None:
    admin, admin_csrf = probe.as_("admin")
    admin_api = probe.token(admin, admin_csrf)
    reviewer, reviewer_csrf = probe.as_("reviewer2")
    reviewer_api = probe.token(reviewer, reviewer_csrf)
    tasks = {task["name"]: task for task in admin.get("/api/v1/tasks?limit=50", headers=admin_api).json()["items"]}
    shapes = tasks["SHAPES+shape_classification"]

    # Checks cannot be weakened by the people they judge.
    weak = reviewer.post(f"/api/v1/tasks/{shapes['id']}/spot-checks", headers=reviewer_api,
                         json={"size": 1, "max_error_rate": 0.99})
    probe.check("a reviewer's spot check of size 1 at 99% max error", weak.status_code == 403, str(weak.status_code))
    weak = reviewer.post(f"/api/v1/tasks/{shapes['id']}/solve-tests", headers=reviewer_api,
                         json={"size": 1, "pass_threshold": 1})
    probe.check("a reviewer's solve test of size 1, threshold 1", weak.status_code == 403, str(weak.status_code))

    # One person, one vote: four simultaneous claims from one verifier.
    start = threading.Barrier(4)

    def claim(_):
        start.wait()
        return admin.post("/api/v1/review/verify/next", headers=admin_api)

    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(claim, range(4)))
    slots = {response.json()["id"] for response in claims if response.status_code == 200}
    probe.check("four simultaneous verify/next from one reviewer", len(slots) <= 1, f"slots {sorted(slots)}")

    # Blind tests stay blind: an admin opens a solve test (with a reason); a reviewer reads an item's instance.
    counting = tasks["SHAPES+shape_counting"]
    admin.post(f"/api/v1/tasks/{counting['id']}/solve-tests", headers=admin_api,
               json={"size": 5, "pass_threshold": 5, "reason": "replaying the probe"})
    item = reviewer.post("/api/v1/review/solve/next", headers=reviewer_api)
    if item.status_code == 200:
        page = reviewer.get(f"/instances/{item.json()['instance_id']}").text
        probe.check("a solver reads the target on /instances/{id}", 'id="raw-output"' not in page)
    else:
        probe.check("a solver reads the target on /instances/{id}", False, f"no solve item: {item.status_code}")

    # Template amplification, through the editor preview.
    author, author_csrf = probe.as_("author")
    instruction = admin.post(f"/api/v1/tasks/{counting['id']}/instructions", headers=admin_api,
                             json={"label": "probe"}).json()
    for template in ("{{ 'a'|center(200000000)|length }}", "{{ ('a'*30000)|replace('a', 'bbbb')|length }}",
                     "{{ '%200000000s'|format('a')|length }}"):
        preview = admin.post(f"/instructions/{instruction['id']}/preview",
                             headers={"HX-Request": "true", "X-CSRF-Token": admin_csrf},
                             data={"text": template, "lock_version": str(instruction["lock_version"])})
        probe.check(f"preview of {template}", "not allowed" in preview.text, f"{preview.status_code}")

    # Jobs: an author cancels someone else's job.
    job = reviewer.post(f"/api/v1/tasks/{shapes['id']}/scores", headers=reviewer_api,
                        json={"model_id": 1}).json().get("job_id")
    if job:
        cancel = author.post(f"/jobs/{job}/cancel", headers={"X-CSRF-Token": author_csrf})
        probe.check("an author cancels a reviewer's job", cancel.status_code == 403, str(cancel.status_code))
        own = reviewer.post(f"/jobs/{job}/cancel", headers={"X-CSRF-Token": reviewer_csrf})
        probe.check("a reviewer cancels their own job (allowed)", own.status_code == 200, str(own.status_code))

    # Sessions and tokens.
    minted = reviewer.post("/api/v1/me/tokens", headers=reviewer_api, json={"name": "child"})
    probe.check("a token mints a token", minted.status_code == 403, str(minted.status_code))
    copy = httpx2.Client(base_url=probe.url, cookies=dict(author.cookies), follow_redirects=False)
    author.post("/logout", data={"csrf_token": author_csrf})
    probe.check("a cookie copied before sign-out", copy.get("/").status_code == 303)

    # Sizes, NUL bytes, redirects.
    notes = admin.post("/api/v1/datasets", headers=admin_api, json={"name": "PROBE", "notes": "n" * 20_000_000})
    probe.check("20 MB of dataset notes", notes.status_code in (413, 422), str(notes.status_code))
    nul = admin.get("/api/v1/versions/1/files/%00", headers=admin_api)
    probe.check("a NUL in a version file's path", nul.status_code == 404, str(nul.status_code))
    login = httpx2.Client(base_url=probe.url, follow_redirects=False)
    token = CSRF.search(login.get("/login").text).group(1)
    email = "reviewer@studio.local"
    moved = login.post("/login", headers={"HX-Request": "true"},
                       data={"email": email, "password": probe.accounts[email], "csrf_token": token,
                             "next": "/\\evil.com"})
    target = moved.headers.get("HX-Redirect") or moved.headers.get("location")
    probe.check("next=/\\evil.com", target == "/", str(target))

    # The login throttle, last: it leaves this address waiting.
    victim = "author@studio.local"
    statuses = []
    for _ in range(3):
        for _ in range(4):
            statuses.append(_login(probe.url, victim, "a wrong guess").status_code)
        statuses.append(_login(probe.url, "reviewer@studio.local", probe.accounts["reviewer@studio.local"]).status_code)
    probe.check("4 wrong guesses and 1 good sign-in, repeated", 429 in statuses, str(statuses))
    # From 127.0.0.1 (the default trusted proxy) a forwarded address is believed: the account's own growing delay
    # is what stops a guesser who changes it, at one guess per delay.
    spoofed = [_login(probe.url, victim, "guess", {"X-Forwarded-For": f"10.9.0.{k}"}).status_code for k in range(4)]
    probe.check("a new X-Forwarded-For per guess", spoofed.count(401) <= 1 and 429 in spoofed, str(spoofed))


def _login(url: str, email: str, password: str, headers: dict | None = None):
    with httpx2.Client(base_url=url, follow_redirects=False, timeout=60) as client:
        token = CSRF.search(client.get("/login").text).group(1)
        return client.post("/login", headers=headers or {},
                           data={"email": email, "password": password, "csrf_token": token})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--credentials", type=Path, default=Path("data/demo-credentials.txt"))
    args = parser.parse_args()
    accounts = dict(line.split("\t") for line in args.credentials.read_text().splitlines()
                    if line and not line.startswith("#"))
    probe = Probe(args.url, accounts)
    run(probe)
    failures = [name for name, refused in probe.results if not refused]
    print(json.dumps({"refused": len(probe.results) - len(failures), "held": len(failures), "failures": failures}))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
