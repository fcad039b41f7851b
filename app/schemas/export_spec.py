"""What a dataset version is made of: its spec, canonical so that equal specs hash (and build) the same."""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator

from app.models.types import MAX_DB_INT, RowIdValue

# What the new-version page suggests (the API's default is none): enough validation records for a fine-tune to be
# scored before and after.
SUGGESTED_VALIDATION_RATIO = 0.02
LAYOUTS = ["llava", "hf", "llamafactory", "swift"]  # in the order they are written


class ExportSpec(BaseModel):
    """Everything that decides a version's content. Building the same spec twice gives the same bytes."""

    task_ids: list[RowIdValue] = Field(min_length=1,
                                       description="Tasks to include (each needs an approved instruction).")
    instruction_version_ids: dict[RowIdValue, list[RowIdValue]] = Field(
        default_factory=dict, description="Per task, the approved versions to draw from (default: all approved); "
        "with several, each instance gets one by a seeded choice.")
    per_task_cap: int = Field(10_000, ge=1, le=10_000_000, description="Instances per task (all if fewer).")
    seed: int = Field(0, ge=0, le=MAX_DB_INT)
    validation_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Share of instances in val.json.")
    conversation_pool_id: RowIdValue | None = Field(None,
                                                    description="Stage 2's conversation pool (none: no stage 2).")
    stage2_size: int = Field(1_000, ge=0, le=1_000_000, description="Conversations drawn for stage 2.")
    stage2_unreviewed: bool = Field(
        False, description="Draw stage 2 from every conversation of the pool, read or not (the card says so). "
        "Otherwise only from conversations review passed: every answer judged correct, or the wrong ones fixed by "
        "an accepted revision.")
    stage2_by_kind: bool = Field(
        False, description="Draw stage 2 within each kind of conversation (LLaVA-Instruct's three: conversation, "
        "detail, complex_reasoning), each in proportion to its share of what may be drawn; otherwise at random "
        "from all of them.")
    as_of: AwareDatetime | None = Field(
        None, description="The data as it was at this moment: fixes accepted and reviews decided later are left "
        "out, so that building the spec again gives the same bytes. A new version pins the moment it is made. "
        "(It replaces revisions_through, which specs from before it keep: a fix proposed before a version but "
        "accepted after it has a lower id than the version's pin.)")
    max_tokens: int = Field(2048, ge=64, le=1_000_000,
                            description="The trainer's max length; records longer are left out.")
    image_tokens: int = Field(576, ge=0, le=1_000_000,
                              description="Tokens an image takes in the trainer (LLaVA-1.5: 576), where no "
                              "model_family says how to count them.")
    model_family: Literal["llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3"] | None = Field(
        None, description="The model family the version is for: each image's tokens are counted from its size as "
        "that family's released processor counts them (LLaVA-1.5: 576; LLaVA-NeXT: its grid of 336-px crops; "
        "Qwen2-VL and 2.5-VL: one per 28-px square, up to 1,280; Idefics3: 169 per 364-px tile and the whole "
        "image), and a record that would not fit max_tokens is left out, saying so.")
    images_as_tar: bool = Field(False, description="Ship the images as one images.tar instead of a folder.")
    layouts: list[Literal["llava", "hf", "llamafactory", "swift"]] = Field(
        default_factory=lambda: ["llava"], description="The file layouts to write: llava (at the version's root: "
        "stage1/stage2/val JSON, JSONL, Parquet and images/, which the studio's own fine-tune reads; always "
        "written), hf (hf/: Hugging Face datasets Parquet shards with the images inside and TRL's messages), "
        "llamafactory (llamafactory/: ShareGPT JSONL and dataset_info.json), swift (swift/: ms-swift's JSONL).")
    revisions_through: RowIdValue | None = Field(
        None, description="Instances as they were once the fixes up to this revision were accepted (later fixes are "
        "left out). Specs from before as_of have it; a new version pins both.")

    @field_validator("task_ids")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("layouts")
    @classmethod
    def _with_llava(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("images_as_tar") and {"llamafactory", "swift"} & set(value):
            raise ValueError("the llamafactory and swift layouts name image files in images/: build them without "
                             "images.tar")
        return sorted(set(value) | {"llava"}, key=LAYOUTS.index)

    def canonical(self) -> bytes:
        data = self.model_dump(mode="json")
        if data["layouts"] == ["llava"]:  # specs from before layouts existed keep their digest
            del data["layouts"]
        if data["revisions_through"] is None:  # specs from before fixes existed keep their digest
            del data["revisions_through"]
        # Specs from before stage 2 was reviewed drew from every conversation (their stored specs say
        # stage2_unreviewed, migration 0016), and keep their digest; a spec without a pool has no stage 2 to draw.
        if data["stage2_unreviewed"] or data["conversation_pool_id"] is None:
            del data["stage2_unreviewed"]
        if data["as_of"] is None:
            del data["as_of"]
        if not data["stage2_by_kind"]:  # specs from before stratified draws keep their digest
            del data["stage2_by_kind"]
        if data["model_family"] is None:  # specs from before model families keep their digest
            del data["model_family"]
        data["instruction_version_ids"] = {str(task): sorted(set(ids)) for task, ids in
                                           sorted(self.instruction_version_ids.items())}
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()
