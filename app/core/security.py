"""Secrets: password hashing, API, session and CSRF tokens. No I/O."""

from __future__ import annotations

import hashlib
import secrets
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


def new_session_token() -> str:
    """A sign-in's token, carried by its (signed) cookie; the server keeps its sha256."""
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return secrets.compare_digest(expected, given)
