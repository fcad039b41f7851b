"""Scoring a model on a version's validation split, per task: what the fine-tune job reports before and after.

The answers are matched as previews match them (option accuracy for option tasks, normalised exact match
otherwise); records are read from val.json as the trainer would see them."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from sqlmodel import Session, select

from app.models import Instance
from app.answers import matches
from worker.loading import load
from worker.preview import generate, open_rgb


def evaluate(session: Session, *, model_path: str, device: str, version_folder: Path, limit: int = 200,
             batch_size: int = 8, max_new_tokens: int = 32) -> dict[str, dict[str, int]]:
    """{task: {"matched": m, "total": n}} on up to `limit` validation records."""
    path = version_folder / "val.json"
    records = json.loads(path.read_text(encoding="ascii"))[:limit] if path.is_file() else []
    if not records:
        return {}
    ids = [int(record["id"].rsplit("/", 2)[1]) for record in records]
    options = dict(session.exec(select(Instance.id, Instance.options).where(Instance.id.in_(ids))).all())
    loaded = load(model_path, "float32", device)
    scores: dict[str, dict[str, int]] = defaultdict(lambda: {"matched": 0, "total": 0})
    for has_image in (True, False):
        group = [(record, instance_id) for record, instance_id in zip(records, ids, strict=True)
                 if ("image" in record) == has_image]
        for start in range(0, len(group), batch_size):
            batch = group[start:start + batch_size]
            images = [open_rgb(version_folder / "images" / record["image"]) for record, _ in batch] if has_image \
                else None
            answers, _ = generate(loaded, [record["conversations"][0]["value"] for record, _ in batch], images,
                                  max_new_tokens=max_new_tokens)
            for (record, instance_id), answer in zip(batch, answers, strict=True):
                score = scores[record["task_name"]]
                score["total"] += 1
                score["matched"] += matches(answer, record["conversations"][1]["value"], options.get(instance_id))
    return dict(sorted(scores.items()))
