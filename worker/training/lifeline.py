"""A training process started by a job ends when that job's worker does.

The launcher's tree (accelerate -> torchrun -> one process per GPU) is not the worker's to kill once the worker
itself is gone: a SIGKILLed worker would leave it training, and the retried job would start a second run in the
same folder. Each training process therefore watches the worker's pid (STUDIO_LIFELINE_PID) and exits when it
disappears."""

from __future__ import annotations

import os
import threading
import time

VARIABLE = "STUDIO_LIFELINE_PID"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hold(every_s: float = 2.0) -> None:
    """Starts the watch when the variable is set (a job's run); does nothing for a run started by hand."""
    pid = int(os.environ.get(VARIABLE) or 0)
    if not pid:
        return

    def watch() -> None:
        while _alive(pid):
            time.sleep(every_s)
        os._exit(3)  # nothing to clean up: the checkpoints on disk are the state

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
