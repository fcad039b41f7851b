"""What a process the app forks to use another core (an import's reader, an export's parts) does first.

A forked process holds copies of its parent's sockets, database connections included: if it outlived a
parent that was killed, PostgreSQL would never see that parent's connections close, and the rows its open
transaction had locked would stay locked. So on Linux the kernel kills the helper the moment its parent
dies (PR_SET_PDEATHSIG); elsewhere the helper checks on its parent whenever it waits (`parent_gone`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def start_as_helper(parent: int) -> None:
    """Call first in the forked process, with the pid of the process that forked it. The signal handlers it
    inherited belong to the parent (a worker's SIGTERM handler releases its job): here SIGTERM ends the
    process, and Ctrl-C, which reaches the whole process group, is the parent's to act on."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_gone(parent):  # it died before the line above took effect
        os._exit(1)


def parent_gone(parent: int) -> bool:
    return os.getppid() != parent


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says, else all of them): how
    many helpers to fork."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
