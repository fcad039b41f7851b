"""Secrets: password hashing, API tokens, CSRF tokens and the login throttle. No I/O but the clock."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that both answers take the same time. Made on first use:
    a hash costs ~0.1 s, which every CLI command and worker would otherwise pay at import."""
    return _hasher.hash(secrets.token_urlsafe(16))

TOKEN_PREFIX = "fst_"
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def new_api_token() -> tuple[str, str, str]:
    """(token shown once, its sha256 kept at rest, a short prefix to recognise it by)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_api_token(token), token[: len(TOKEN_PREFIX) + 6]


def hash_api_token(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough, unlike for passwords.
    return hashlib.sha256(token.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and secrets.compare_digest(expected, given)


class LoginThrottle:
    """Counts failed logins per client address; past `max_failures` in `window_s` it says how long to wait.

    In memory, per web process: several processes each allow `max_failures`, which still slows a guesser
    down by orders of magnitude without a table written on every failed login."""

    def __init__(self, max_failures: int, window_s: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds this address must wait before trying again; 0 when it may try now."""
        with self._lock:
            failures = self._recent(address)
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window_s - self._clock()) + 1)

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self._clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures[address]
        cutoff = self._clock() - self.window_s
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures
