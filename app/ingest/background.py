"""An iterator run in a forked process, so that reading a file and writing the database use two cores.

The producer gets the CPU-bound half (parsing, validating, hashing keys) and hands over plain, cheaply
pickled items through a bounded queue (memory stays bounded: it waits while the consumer is behind). An
exception in the producer is raised again in the consumer, as itself when it survives pickling, else as
ProducerFailed with its traceback. Where `fork` is missing it runs in-line."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import traceback
from collections.abc import Callable, Iterator
from typing import TypeVar

from app.core.forked import parent_gone, start_as_helper

T = TypeVar("T")
AHEAD = 2  # items the producer may run ahead (an import chunk is ~20,000 rows)


class ProducerFailed(RuntimeError):
    """The producing process failed in a way that cannot be raised again as itself."""


def iterate_in_background(produce: Callable[[], Iterator[T]]) -> Iterator[T]:
    """The items of `produce()`, made in a forked process. Closing the iterator early stops that process."""
    if "fork" not in multiprocessing.get_all_start_methods():
        yield from produce()
        return
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=AHEAD)
    # Not a daemon, so that it may start processes of its own (an import's image checkers); it is ended below
    # however this ends, and by the kernel if this process dies (app/core/forked.py).
    producer = context.Process(target=_produce, args=(produce, channel, os.getpid()), name="import-reader")
    producer.start()
    try:
        while True:
            try:
                kind, value = channel.get(timeout=1.0)
            except queue.Empty:
                if producer.exitcode is None:
                    continue
                # It ended. What it sent last may still be on its way through the pipe (its exit does not wait for
                # this side to read): read once more before saying it ended early.
                try:
                    kind, value = channel.get(timeout=1.0)
                except queue.Empty:
                    raise ProducerFailed(f"the reading process ended early (exit code {producer.exitcode})") from None
            if kind == "item":
                yield value
            elif kind == "end":
                return
            elif kind == "error":
                raise value
            else:
                raise ProducerFailed(value)
    finally:
        if producer.is_alive():
            producer.terminate()
        producer.join()
        channel.close()
        channel.join_thread()


def _produce(produce: Callable[[], Iterator[T]], channel, parent: int) -> None:
    start_as_helper(parent)

    def send(message: tuple) -> None:
        while True:
            try:
                channel.put(message, timeout=1.0)
                return
            except queue.Full:
                if parent_gone(parent):
                    channel.cancel_join_thread()  # nobody will read what is still queued: do not wait for it
                    os._exit(1)

    try:
        for item in produce():
            send(("item", item))
        send(("end", None))
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the consumer
        try:
            error.add_note("in the reading process:\n" + traceback.format_exc())
            pickle.loads(pickle.dumps(error))  # an exception whose constructor pickle cannot call again stays here
            send(("error", error))
        except Exception:  # noqa: BLE001
            send(("failed", traceback.format_exc()))
