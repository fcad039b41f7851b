"""Log lines that say what happened and cannot be forged: text that came from a request (a path, a field) is
logged with its control characters escaped, so a NUL, a newline or a terminal escape in a URL neither breaks a
line in two nor reaches the operator's terminal."""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "studio")


def escape(text: str) -> str:
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class EscapeControlCharacters(logging.Filter):
    """On a handler: escapes the message and its string arguments (a traceback, added later, keeps its lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = escape(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(escape(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: escape(value) if isinstance(value, str) else value
                           for key, value in record.args.items()}
        return True


def escape_control_characters() -> None:
    """Adds the filter to every handler the studio's and uvicorn's loggers write through (once each)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, EscapeControlCharacters) for existing in handler.filters):
                handler.addFilter(EscapeControlCharacters())
