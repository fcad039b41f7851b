"""Progress as JSON lines: what a run plans, each logged step (loss, learning rate, throughput), each stage's
start and end. The main process appends them to a file that the fine-tune job follows to fill the job page;
a person running the script reads the Trainer's own bar and log lines instead."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class EventLog:
    """Appends one JSON object a line, flushed at once; a no-op on every process but the main one."""

    def __init__(self, path: Path | None, *, main_process: bool):
        self.path = path if main_process else None

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n")


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole lines written since `offset`, and the offset after them (a line still being written waits)."""
    if not path.is_file():
        return [], offset
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read()
    complete = data[:data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()], offset + len(complete)


class StepReporter(TrainerCallback):
    """One `step` event per logged step: loss, learning rate, samples/s and tokens/s since the last one."""

    def __init__(self, events: EventLog, *, stage: str, global_batch: int):
        self.events, self.stage, self.global_batch = events, stage, global_batch
        self._since: tuple[float, int, int] | None = None  # time, step, tokens seen

    def on_train_begin(self, args, state, control, **kwargs):
        self._since = (time.perf_counter(), state.global_step, state.num_input_tokens_seen or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs or self._since is None:
            return
        now, tokens = time.perf_counter(), state.num_input_tokens_seen or 0
        started, step, seen = self._since
        seconds = max(now - started, 1e-9)
        self._since = (now, state.global_step, tokens)
        self.events.write("step", stage=self.stage, step=state.global_step, max_steps=state.max_steps,
                          loss=float(logs["loss"]), lr=float(logs.get("learning_rate", 0.0)),
                          samples_per_s=round(self.global_batch * (state.global_step - step) / seconds, 3),
                          tokens_per_s=round((tokens - seen) / seconds, 1))
