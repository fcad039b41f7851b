"""Iterating in a forked process (an import's reading side): items in order, failures raised again in the
consumer, and no process left behind when the consumer stops early or is killed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.ingest.background import ProducerFailed, iterate_in_background
from app.ingest.record_files import MalformedFile
from tests.factories import alive

ROOT = Path(__file__).resolve().parent.parent


def _numbers_then(error: BaseException | None = None, count: int = 50):
    def produce():
        for k in range(count):
            yield os.getpid(), k
        if error is not None:
            raise error
    return produce


def test_items_come_in_order_from_another_process():
    items = list(iterate_in_background(_numbers_then(None)))
    assert [k for _, k in items] == list(range(50))
    assert {pid for pid, _ in items} != {os.getpid()}
    assert multiprocessing.active_children() == []


def test_a_failure_is_raised_again_as_itself_or_with_its_traceback():
    with pytest.raises(MalformedFile, match="in.json:7: not valid JSON") as raised:
        list(iterate_in_background(_numbers_then(MalformedFile(Path("in.json"), 7, "not valid JSON"))))
    assert raised.value.line == 7

    class Unpicklable(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    with pytest.raises(ProducerFailed, match="Unpicklable: x and y"):
        list(iterate_in_background(_numbers_then(Unpicklable("x", "y"))))
    assert multiprocessing.active_children() == []


def test_stopping_early_stops_the_producer():
    items = iterate_in_background(_numbers_then(None, count=10_000))
    assert next(items)[1] == 0
    items.close()
    assert multiprocessing.active_children() == []


def test_a_producer_whose_consumer_is_killed_stops_too():
    script = ("import sys, time; sys.path.insert(0, '.')\n"
              "from app.ingest.background import iterate_in_background\n"
              "import os\n"
              "def produce():\n"
              "    while True:\n"
              "        yield os.getpid()\n"
              "for pid in iterate_in_background(produce):\n"
              "    print(pid, flush=True)\n"
              "    time.sleep(60)\n")
    consumer = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    producer = int(consumer.stdout.readline())
    consumer.send_signal(signal.SIGKILL)
    consumer.wait()
    deadline = time.monotonic() + 15
    while alive(producer):
        assert time.monotonic() < deadline, "the producer outlived its consumer"
        time.sleep(0.1)
