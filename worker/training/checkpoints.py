"""Checkpoints a run can trust.

The Trainer writes `checkpoint-N` folders in place, and `get_last_checkpoint` takes the highest N even when a
kill left it half-written. Here a checkpoint counts only once every process has finished writing it and the
main process has put a marker in it (`CompleteCheckpoints`, a callback); resuming takes the newest marked
one, and older ones are pruned only after a newer one is marked. A stage's finished model is written to a
temporary folder and renamed into place, so it too exists whole or not at all."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

MARKER = "studio-complete.json"
_NUMBERED = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint folder, complete or not, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir()
             if path.is_dir() and (match := _NUMBERED.match(path.name))]
    return sorted(found)


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / MARKER).is_file()


def complete_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    return [(step, path) for step, path in checkpoints(folder) if is_complete(path)]


def last_complete(folder: Path) -> tuple[int, Path] | None:
    """(step, folder) of the newest complete checkpoint, or None."""
    complete = complete_checkpoints(folder)
    return complete[-1] if complete else None


def remove_incomplete(folder: Path) -> None:
    """Deletes checkpoint folders without a marker (a kill's leftovers)."""
    for _, path in checkpoints(folder):
        if not is_complete(path):
            shutil.rmtree(path, ignore_errors=True)


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class CompleteCheckpoints(TrainerCallback):
    """Marks each checkpoint once every process has written its part, then keeps the newest `keep`."""

    def __init__(self, keep: int):
        self.keep = max(keep, 1)

    def on_save(self, args, state, control, **kwargs):
        _barrier()  # sharded states (FSDP, ZeRO-3) are written by every process
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            temporary = folder / f".{MARKER}.partial"
            temporary.write_text(json.dumps({"step": state.global_step}))
            temporary.replace(folder / MARKER)
            for _, old in complete_checkpoints(Path(args.output_dir))[:-self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        _barrier()
        return control


def load_weights(model, checkpoint: Path) -> None:
    """Loads a full checkpoint's weights into `model` through `from_pretrained`, which maps the saved key names
    back to the model's. The Trainer's own resume loads them non-strictly without that mapping, so a LLaVA
    model (saved under its original `language_model.model.*` names) would resume from the base weights with
    only a log line (transformers issue 43701). Strict here: any key left over is an error."""
    fresh = type(model).from_pretrained(checkpoint, dtype=model.dtype, local_files_only=True)
    model.load_state_dict(fresh.state_dict(), strict=True)
    del fresh


def is_saved(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()
