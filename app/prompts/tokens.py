"""Counting a prompt's tokens for the lint's budget: a local tokenizer when one is configured, else an estimate."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from app.core.failures import AppError

CHARS_PER_TOKEN = 4  # English with a BPE vocabulary; good enough to flag prompts far over the budget


class TokenizerUnavailable(AppError):
    """The configured tokenizer cannot be used: a setup problem, shown to whoever asked for a count."""

    status_code = 500
    code = "tokenizer_unavailable"


def estimate(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


@lru_cache(maxsize=4)
def _load(path: str):
    try:
        from tokenizers import Tokenizer  # optional here; the worker's environment has it
    except ImportError:
        raise TokenizerUnavailable("STUDIO_TOKENIZER_PATH is set but the `tokenizers` package is not installed "
                                   "(pip install tokenizers)") from None
    try:
        return Tokenizer.from_file(path)
    except Exception as error:  # noqa: BLE001 - any unreadable file: say which and why
        raise TokenizerUnavailable(f"cannot load the tokenizer {path}: {error}") from None


def token_counter(tokenizer_path: Path | None) -> tuple[Callable[[str], int], str]:
    """(count function, how it counts): the local tokenizer (a tokenizer.json) when given, else the estimate."""
    if tokenizer_path is None:
        return estimate, "estimated"
    tokenizer = _load(str(tokenizer_path))
    return (lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)), "tokenizer"
