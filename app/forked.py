"""What a process the app forks to use another core (an import's reader, an export's parts) does first and
keeps checking: it leaves signals to its parent, and stops when its parent is gone (killed, say), instead of
working on for nobody."""

from __future__ import annotations

import os
import signal


def start_as_helper() -> int:
    """Call first in the forked process; returns the parent's pid for `parent_gone`. The handlers it inherited
    belong to the parent (a worker's SIGTERM handler releases its job); here SIGTERM ends the process, and
    Ctrl-C, which reaches the whole process group, is the parent's to act on."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return os.getppid()


def parent_gone(parent: int) -> bool:
    return os.getppid() != parent
