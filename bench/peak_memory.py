"""The peak memory of a process a bench starts, as the kernel counts it for that program alone.

`ru_maxrss` is the wrong figure for a process started with `subprocess`: Linux keeps the high-water mark across
execve, and Python starts a child with vfork (the child runs in its parent's memory until it execs), so a child's
`ru_maxrss` begins at its parent's peak. The corrections bench, holding 300,000 rows and a web app, read 648 MB for
a build whose own peak was 300 MB, and more for each later build as the bench grew. /proc/self/status's VmHWM
belongs to the program's own address space; the processes it forks (a build's parts) count from their own `fork`,
where sharing the parent's pages is real.

In a script a bench runs:  `from bench.peak_memory import peak_mb`.
Around a module:           `python bench/peak_memory.py OUT.json -m app export ...` writes {"peak_mb": ...} to
                           OUT.json when the module ends."""

from __future__ import annotations

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def own_peak_mb() -> float:
    """This program's peak resident memory in MB (VmHWM; ru_maxrss where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mb() -> float:
    """The largest peak of the processes this one forked and waited for."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def peak_mb() -> float:
    return max(own_peak_mb(), children_peak_mb())


def _run_module() -> None:
    out, flag, module, *arguments = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: python bench/peak_memory.py OUT.json -m MODULE [ARGUMENTS...]")

    def record() -> None:
        Path(out).write_text(json.dumps({"peak_mb": round(peak_mb(), 1), "own_mb": round(own_peak_mb(), 1),
                                         "parts_mb": round(children_peak_mb(), 1)}))

    atexit.register(record)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _run_module()
