"""The `llamafactory` and `swift` layouts: a version's records as the role/content `messages` both trainers read,
with `<image>` in the text where the picture goes and `images` naming the version's own image files.

    llamafactory/stage1.jsonl, stage2.jsonl, validation.jsonl, dataset_info.json
        LLaMA-Factory's ShareGPT format; `--dataset_dir llamafactory --dataset flan_stage1` (then flan_stage2).
        Image paths are relative to that folder (LLaMA-Factory's media_dir defaults to the dataset_dir).
    swift/stage1.jsonl, stage2.jsonl, validation.jsonl
        ms-swift's standard format; image paths relative to the swift/ folder (run `swift sft` from it).

Both are written from the `llava` layout's files once they are built, a line at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.exports import llava_records
from app.exports.files import HashingFile, ascii_json

DATASET_NAMES = {"stage1": "flan_stage1", "stage2": "flan_stage2", "validation": "flan_validation"}


def record(source: dict[str, Any]) -> dict[str, Any]:
    """A llava record as role/content messages with its images (relative to the layout's folder)."""
    turns = source["conversations"]
    return {"messages": [{"role": llava_records.role(turn), "content": turn["value"]} for turn in turns],
            "images": [f"../images/{source['image']}"] if source.get("image") else []}


def write(work: Path, layout: str) -> dict[str, dict[str, Any]]:
    """Writes `work/<layout>` from the llava files in `work`; the manifest's entries of its files."""
    folder = work / layout
    folder.mkdir()
    files: dict[str, dict[str, Any]] = {}
    for split, records in llava_records.splits(work).items():
        out = HashingFile(folder / f"{split}.jsonl")
        count = 0
        for item in records:
            out.write(ascii_json(record(item)) + b"\n")
            count += 1
        files[f"{layout}/{split}.jsonl"] = {**out.close(), "records": count}
    if layout == "llamafactory":
        info = HashingFile(folder / "dataset_info.json")
        info.write(orjson.dumps(dataset_info([name.split("/")[1] for name in files]), option=orjson.OPT_INDENT_2))
        files[f"{layout}/dataset_info.json"] = info.close()
    return files


def dataset_info(file_names: list[str]) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json: an entry per split, in its ShareGPT format with our role names."""
    return {DATASET_NAMES[name.removesuffix(".jsonl")]: {
        "file_name": name, "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}} for name in file_names}

