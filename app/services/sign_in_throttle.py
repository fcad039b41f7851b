"""Slowing down password guessing, per address and per account, shared by every web process (the counts live
in the database) and atomic (an attempt is counted, by a conditional update, before its password is checked).

- **Per address:** at most `max_failures` failed sign-ins within `window_s`; then the address waits for the
  window to end. A right password never clears the count, so wrong guesses cannot be laundered through a
  sign-in to the guesser's own account.
- **Per account:** past `max_failures` failures each further attempt waits longer (1 s, 2 s, 4 s, ... at most
  MAX_ACCOUNT_DELAY_S), whatever address it comes from: a guesser who changes address is still slowed down, and
  the owner is never locked out for longer than that. A right password clears the account's count.

An attempt is *pending* while its password is checked, and counts against the limit meanwhile: of ten parallel
guesses at most the limit are checked. An attempt that finds the limit taken up only by pending ones waits for
them (a moment: a check takes ~0.1 s), so people signing in at once from one address are queued, not refused.
The current-password check on the account page counts the same way. The counts are written in a session of
their own, committed at once, whatever becomes of the caller's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core.failures import TooManyRequests
from app.models import SignInCount, utcnow

MAX_ACCOUNT_DELAY_S = 60
QUEUE_FOR_S = 5.0  # how long an attempt waits for pending ones before it is told to retry
QUEUE_POLL_S = 0.05


@dataclass(frozen=True)
class Limits:
    max_failures: int
    window_s: int

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(settings.login_max_failures, settings.login_failure_window_s)


@dataclass(frozen=True)
class Attempt:
    """An attempt being checked: `failed` or `succeeded` settles it."""

    address_key: str
    account_key: str


def begin(session: Session, *, address: str, email: str, limits: Limits) -> Attempt:
    """Counts the attempt as pending against its address and its account; TooManyRequests (with Retry-After)
    when either must wait."""
    attempt = Attempt(f"address:{address}"[:300], f"account:{email.strip().lower()}"[:300])
    with _own(session) as own:
        wait = _take(own, attempt.address_key, limits, per_account=False)
        if wait:
            raise _refusal("from your address", wait)
        wait = _take(own, attempt.account_key, limits, per_account=True)
        if wait:
            _settle(own, attempt.address_key, failed=False)  # no password was tried
            raise _refusal("for this account", wait)
    return attempt


def failed(session: Session, attempt: Attempt) -> None:
    """A wrong password: a failure for both."""
    with _own(session) as own:
        _settle(own, attempt.address_key, failed=True)
        _settle(own, attempt.account_key, failed=True)


def succeeded(session: Session, attempt: Attempt) -> None:
    """A right password: the address's count stays as it was, the account starts over."""
    with _own(session) as own:
        _settle(own, attempt.address_key, failed=False)
        own.execute(update(SignInCount).where(SignInCount.key == attempt.account_key)
                    .values(failures=0, wait_until=None,
                            pending=case((SignInCount.pending > 0, SignInCount.pending - 1), else_=0)))
        own.commit()


def _own(session: Session) -> Session:
    return Session(session.get_bind(), expire_on_commit=False)


def _refusal(whose: str, wait: int) -> TooManyRequests:
    return TooManyRequests(f"Too many failed sign-ins {whose}; try again in {wait} s.",
                           headers={"Retry-After": str(wait)})


def _take(session: Session, key: str, limits: Limits, *, per_account: bool) -> int:
    """Adds a pending attempt to `key` when it may try now: 0, or the seconds to wait."""
    give_up = time.monotonic() + QUEUE_FOR_S
    while True:
        now = utcnow()
        row = session.get(SignInCount, key, populate_existing=True)
        if row is None:
            try:
                session.add(SignInCount(key=key, failures=0, pending=1, window_start=now))
                session.commit()
                return 0
            except IntegrityError:  # another attempt made the row first
                session.rollback()
                continue
        fresh = row.window_start <= now - timedelta(seconds=limits.window_s)
        failures, pending = (0, 0) if fresh else (row.failures, row.pending)
        wait = _wait(row, failures, now, limits, per_account)
        if wait:
            session.rollback()
            return wait
        if failures + pending >= limits.max_failures and pending:  # the limit is taken up by attempts in flight
            session.rollback()
            if time.monotonic() > give_up:
                return 1
            time.sleep(QUEUE_POLL_S)
            continue
        delay = _delay(failures + 1, limits) if per_account else 0
        taken = session.execute(
            update(SignInCount).where(SignInCount.key == key, SignInCount.failures == row.failures,
                                      SignInCount.pending == row.pending, SignInCount.window_start == row.window_start)
            .values(pending=pending + 1, failures=failures, window_start=now if fresh else row.window_start,
                    wait_until=now + timedelta(seconds=delay) if delay else row.wait_until)).rowcount
        session.commit()
        if taken:
            return 0


def _wait(row: SignInCount, failures: int, now: datetime, limits: Limits, per_account: bool) -> int:
    if per_account:
        if failures >= limits.max_failures and row.wait_until is not None and row.wait_until > now:
            return max(1, ceil((row.wait_until - now).total_seconds()))
        return 0
    if failures < limits.max_failures:
        return 0
    return max(1, ceil((row.window_start + timedelta(seconds=limits.window_s) - now).total_seconds()))


def _delay(failures: int, limits: Limits) -> int:
    """How long an account waits before its next attempt once this one fails: nothing up to the limit, then 1 s,
    doubling, at most MAX_ACCOUNT_DELAY_S."""
    over = failures - limits.max_failures
    return 0 if over <= 0 else min(2 ** (over - 1), MAX_ACCOUNT_DELAY_S)


def _settle(session: Session, key: str, *, failed: bool) -> None:
    session.execute(update(SignInCount).where(SignInCount.key == key, SignInCount.pending > 0)
                    .values(pending=SignInCount.pending - 1, failures=SignInCount.failures + (1 if failed else 0)))
    session.commit()
