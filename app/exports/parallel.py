"""A build's stage-1 records over several processes, stitched into the version's files.

The tasks (in name order) are cut into contiguous runs of about equal size; each run is written by a forked
process into its own part folder (app/exports/task_records.py); the parts are then joined in order into
stage1.json, stage1.jsonl, val.json and stage1.parquet, hashing as they are written. Every record depends
only on the spec and its instance, and the stitching on the parts' order, so the files are the same bytes
whatever the number of processes (a test compares one with two)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import shutil
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from app.core.db import make_engine
from app.core.forked import available_cores, parent_gone, start_as_helper
from app.core.storage import Media
from app.exports.files import HashingFile, JsonArrayWriter, arrow_to_parquet
from app.exports.task_records import Tally, TaskPlan, write_part
from app.schemas.export_spec import ExportSpec

PARALLEL_FROM = 100_000  # expected records: below this, forking costs more than it saves


class PartFailed(RuntimeError):
    """A process building part of the records failed; the message carries its traceback."""


def processes_for(plans: list[TaskPlan], cap: int, wanted: int | None = None) -> int:
    """How many processes to build with: `wanted` if given, else one per available core on big builds."""
    if wanted is None:
        if sum(min(plan.expected, cap) for plan in plans) < PARALLEL_FROM:
            return 1
        wanted = available_cores()
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # a spawned process would import the app again, which costs more than a build part
    return max(1, min(wanted, len(plans)))


def split(plans: list[TaskPlan], cap: int, parts: int) -> list[list[TaskPlan]]:
    """Contiguous runs of tasks with about the same number of records each: a task goes to the run its middle
    record falls in."""
    sizes = [min(plan.expected, cap) for plan in plans]
    runs: list[list[TaskPlan]] = [[] for _ in range(parts)]
    total, filled = max(sum(sizes), 1), 0
    for plan, size in zip(plans, sizes, strict=True):
        runs[min(parts - 1, int((filled + size / 2) * parts / total))].append(plan)
        filled += size
    return [run for run in runs if run]


def build_records(engine: Engine, plans: list[TaskPlan], spec: ExportSpec, media: Media | None,
                  count_tokens: Callable[[str], int], work: Path, images_root: Path,
                  on_progress: Callable[[float, str], None], processes: int | None = None,
                  ) -> tuple[Tally, dict[str, dict[str, Any]]]:
    """Writes stage1.json, val.json, stage1.jsonl and stage1.parquet into `work`; returns the tally and the
    files' entries for the manifest. Progress runs to 0.9; stitching is the rest."""
    import pyarrow  # noqa: F401 - the parts write Arrow: imported once here, not in every forked process

    runs = split(plans, spec.per_task_cap, processes_for(plans, spec.per_task_cap, processes))
    expected = max(sum(min(plan.expected, spec.per_task_cap) for plan in plans), 1)
    folders = [work / ".parts" / str(k) for k in range(len(runs))]
    for folder in folders:
        folder.mkdir(parents=True)
    done = 0

    def progress(records: int, message: str) -> None:
        nonlocal done
        done += records
        on_progress(0.9 * min(done / expected, 1.0), message)

    if len(runs) == 1:
        tally = write_part(engine, runs[0], spec, media, count_tokens, folders[0], images_root, progress)
    else:
        tally = Tally()
        for part in _run_forked(engine, runs, spec, media, count_tokens, folders, images_root, progress):
            tally.merge(part)
    on_progress(0.9, "writing stage1.json, stage1.jsonl, val.json and stage1.parquet")
    files = _stitch(work, folders, tally)
    shutil.rmtree(work / ".parts")
    return tally, files


def _run_forked(engine, runs, spec, media, count_tokens, folders, images_root, progress) -> list[Tally]:
    """Runs each part in a forked process; their tallies in order. Stops them all if one fails or the
    caller's progress callback raises (a cancelled job)."""
    context = multiprocessing.get_context("fork")
    messages = context.Queue()
    url = engine.url.render_as_string(hide_password=False)
    workers = [context.Process(target=_part_main, daemon=True, name=f"export-part-{k}",
                               args=(k, url, run, spec, media, count_tokens, folders[k], images_root, messages,
                                     os.getpid()))
               for k, run in enumerate(runs)]
    for worker in workers:
        worker.start()
    tallies: dict[int, Tally] = {}
    try:
        while len(tallies) < len(workers):
            try:
                kind, k, *details = messages.get(timeout=1.0)
            except queue.Empty:
                for k, worker in enumerate(workers):
                    if k not in tallies and worker.exitcode not in (None, 0):
                        raise PartFailed(f"part {k} of the build ended with exit code {worker.exitcode}") from None
                continue
            if kind == "progress":
                progress(*details)
            elif kind == "done":
                tallies[k] = details[0]
            else:
                raise PartFailed(f"part {k} of the build failed:\n{details[0]}")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
        messages.close()
    return [tallies[k] for k in range(len(workers))]


def _part_main(k, url, run, spec, media, count_tokens, folder, images_root, messages, parent: int) -> None:
    """A forked process: its own engine (never the parent's connections), the part, its tally back."""
    start_as_helper(parent)
    # The records loop makes no reference cycles, and the process ends with its part: the collector's passes over
    # each batch's rows are 3% of a build, for nothing.
    gc.disable()

    def report(records: int, message: str) -> None:
        if parent_gone(parent):  # killed mid-build (where the kernel does not stop us): the folder is swept later
            os._exit(1)
        messages.put(("progress", k, records, message))

    try:
        _skip_pandas_probe()
        engine = make_engine(url)
        tally = write_part(engine, run, spec, media, count_tokens, folder, images_root, report, first=k == 0)
        engine.dispose()
        messages.put(("done", k, tally))
    except BaseException:  # noqa: BLE001 - whatever it was, the parent reports it with the traceback
        messages.put(("failed", k, traceback.format_exc()))


def _skip_pandas_probe() -> None:
    """pyarrow's first `pa.array` of a list imports pandas, where it is installed, only to ask whether the list is
    a pandas object: 0.3 s of every part, for nothing (parts hand it lists of str). In this process (a part, which
    ends with its records) let that import fail once, so pyarrow takes pandas as missing."""
    if "pandas" in sys.modules:  # imported before the fork: nothing to save
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.array([""])
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import finder for which pandas is not there."""

    @staticmethod
    def find_spec(name: str, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is skipped in export parts", name=name)
        return


def _stitch(work: Path, folders: list[Path], tally: Tally) -> dict[str, dict[str, Any]]:
    """The parts joined in order, the four files written side by side (hashing, writing and compressing let go of
    the GIL). The first part's files are renamed into place and the others appended to them: half the copying."""
    trained = sum(counts["train"] for counts in tally.per_task.values())
    validated = sum(counts["validation"] for counts in tally.per_task.values())
    with ThreadPoolExecutor(4) as pool:
        jobs = {
            "stage1.parquet": pool.submit(arrow_to_parquet, [f / "train.arrow" for f in folders],
                                          work / "stage1.parquet"),
            "stage1.json": pool.submit(_join, work / "stage1.json", [f / "train.body" for f in folders], trained,
                                       JsonArrayWriter),
            "stage1.jsonl": pool.submit(_join, work / "stage1.jsonl", [f / "train.jsonl" for f in folders], trained,
                                        HashingFile),
            "val.json": pool.submit(_join, work / "val.json", [f / "val.body" for f in folders], validated,
                                    JsonArrayWriter),
        }
        return {name: job.result() for name, job in jobs.items()}


def _join(target: Path, parts: list[Path], records: int, writer: type[HashingFile | JsonArrayWriter]
          ) -> dict[str, Any]:
    """The first part's file renamed into place (it begins the target's content), the others appended in order."""
    parts[0].rename(target)
    out = writer(target, resume=True)
    for part in parts[1:]:
        out.append_part(part)
    return {**out.close(), "records": records}
