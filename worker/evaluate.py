"""Scoring a model on a version's validation split, per task: what the fine-tune job reports before and after.

`val.json` is in task order, so its first records are its first tasks. The evaluation takes a seeded sample of
up to `per_task` records from every task in it instead. Answers are generated in batches (images and text apart,
bf16 on GPUs that have it, fp16 on others) and scored as previews score them (`app/qc/answers.py`): the option the
answer names for option tasks, the normalised text otherwise. Images are padded to a square where training pads
them (LLaVA-1.5)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlmodel import Session

from app.qc.answers import matches
from app.schemas.model_families import family_of_type
from app.services import instances
from worker.training.record_index import RecordIndex, RecordReader


def stratified_sample(index: RecordIndex, *, per_task: int, seed: int) -> list[int]:
    """Record positions: up to `per_task` from every task, drawn with `seed`, in file order."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for position, task in enumerate(index.tasks):
        by_task[task].append(position)
    rng = random.Random(seed)
    chosen = []
    for task in sorted(by_task):
        positions = by_task[task]
        chosen += positions if len(positions) <= per_task else rng.sample(positions, per_task)
    return sorted(chosen)


def inference_dtype(device: str) -> str:
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def _instance_id(record_id: str) -> int | None:
    parts = record_id.rsplit("/", 2)  # <task>/<instance id>/v<instruction version id>
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def evaluate(session: Session, *, model_path: str, device: str, version_folder: Path, per_task: int = 20,
             seed: int = 0, batch_size: int = 8, max_new_tokens: int = 32,
             on_progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, dict[str, int]]:
    """{task: {"matched": m, "total": n}} for every task of the validation split; `on_progress(done, total)`
    after every batch (a job keeps its lease with it)."""
    import torch

    from worker.loading import load_private
    from worker.preview import generate, open_rgb
    from worker.training.encoding import mean_colour, pad_to_square

    index = RecordIndex.build(version_folder / "val.json")
    reader = RecordReader(index)
    records = [reader[position] for position in stratified_sample(index, per_task=per_task, seed=seed)]
    if not records:
        return {}
    ids = {record["id"]: _instance_id(record["id"]) for record in records}
    wanted = [instance_id for instance_id in ids.values() if instance_id is not None]
    options = instances.options_of(session, instance_ids=wanted)
    loaded = load_private(model_path, inference_dtype(device), device)  # freed below: training needs the memory
    background = mean_colour(loaded.processor)
    pads = family_of_type(loaded.model.config.model_type).pads_to_square
    scores: dict[str, dict[str, int]] = {record["task_name"]: {"matched": 0, "total": 0} for record in records}
    done = 0
    try:
        for has_image in (True, False):
            group = [record for record in records if ("image" in record) == has_image]
            for start in range(0, len(group), batch_size):
                batch = group[start:start + batch_size]
                images = [open_rgb(version_folder / "images" / record["image"]) for record in batch] \
                    if has_image else None
                if images and pads:
                    images = [pad_to_square(image, background) for image in images]
                answers, _ = generate(loaded, [record["conversations"][0]["value"] for record in batch], images,
                                      max_new_tokens=max_new_tokens)
                for record, answer in zip(batch, answers, strict=True):
                    score = scores[record["task_name"]]
                    score["total"] += 1
                    score["matched"] += matches(answer, record["conversations"][1]["value"],
                                                options.get(ids[record["id"]]))
                done += len(batch)
                on_progress(done, len(records))
    finally:
        del loaded
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return dict(sorted(scores.items()))


def compare(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], *,
            version_tasks: Iterable[str] = ()) -> dict:
    """Per task: records, matched before and after, and the change in accuracy; the means over tasks; and the
    version's tasks that had no validation record to score (`unscored`), so a mean is never read as covering
    tasks it does not."""
    tasks = {}
    for task, score in before.items():
        total = score["total"]
        matched_after = after.get(task, {}).get("matched", 0)
        tasks[task] = {"total": total, "before": score["matched"], "after": matched_after,
                       "change": round((matched_after - score["matched"]) / total, 4) if total else 0.0}
    count = len(tasks) or 1
    return {"tasks": tasks, "unscored": sorted(set(version_tasks) - set(tasks)),
            "mean_before": round(sum(t["before"] / t["total"] for t in tasks.values() if t["total"]) / count, 4),
            "mean_after": round(sum(t["after"] / t["total"] for t in tasks.values() if t["total"]) / count, 4)}
