"""Building a dataset version's files from the database: deterministic, streaming, checked record by record.

Instances are drawn per task with the seed (a window of the stored random key: all of them when the task
has fewer than the cap), flagged and excluded ones never; each is rendered with an approved instruction
version (a seeded choice among several) exactly as the preview renders it, and checked against the
trainer's contract: a record that breaks it is left out and named in the manifest, never shipped.
Everything is written into a fresh folder that only becomes the version when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from app import __version__
from app.exports.card import dataset_card, train_scripts
from app.exports.contract import Violation, check_pair, check_record
from app.exports.files import (
    HashingFile,
    JsonArrayWriter,
    JsonLinesWriter,
    ascii_json,
    jsonl_to_parquet,
    tar_folder,
)
from app.exports.sampling import SPLIT_SALT, choose, draw_conversations, draw_instances, unit
from app.exports.spec import ExportSpec
from app.models import (
    Instruction,
    InstructionStatus,
    InstructionVersion,
    SourceDataset,
    Task,
)
from app.rendering import InstructionSpec, TemplateProblem, renderer_for
from app.services.quality import per_task
from app.storage import MediaStore

VIOLATIONS_KEPT = 200
PROGRESS_EVERY = 5_000
ABANDONED_AFTER_S = 3600
IMAGE_DIR = "images"


class BuildError(ValueError):
    """The spec cannot be built as it stands (e.g. a task without an approved instruction)."""


@dataclass
class Tally:
    per_task: dict[str, Counter] = field(default_factory=dict)
    versions_used: dict[str, Counter] = field(default_factory=dict)  # task -> instruction version -> records
    excluded: int = 0
    violations: list[str] = field(default_factory=list)

    def leave_out(self, problems: list[Violation]) -> None:
        self.excluded += 1
        for problem in problems:
            if len(self.violations) < VIOLATIONS_KEPT:
                self.violations.append(str(problem))


@dataclass(frozen=True)
class TaskPlan:
    task: Task
    dataset: SourceDataset | None
    versions: list[InstructionVersion]


def plan(session: Session, spec: ExportSpec) -> list[TaskPlan]:
    """The tasks and the approved versions each draws from; refuses what cannot be built."""
    plans = []
    for task_id in spec.task_ids:
        task = session.get(Task, task_id)
        if task is None:
            raise BuildError(f"There is no task with id {task_id}.")
        query = (select(InstructionVersion).join(Instruction, Instruction.id == InstructionVersion.instruction_id)
                 .where(Instruction.task_id == task.id, InstructionVersion.status == InstructionStatus.approved)
                 .order_by(InstructionVersion.id))
        wanted = spec.instruction_version_ids.get(task.id)
        if wanted:
            query = query.where(InstructionVersion.id.in_(wanted))
        versions = list(session.exec(query))
        if not versions or (wanted and len(versions) != len(set(wanted))):
            raise BuildError(f"{task.name}: needs an approved instruction version"
                             + (f" (asked for {sorted(set(wanted))})" if wanted else "") + ".")
        dataset = session.get(SourceDataset, task.source_dataset_id) if task.source_dataset_id else None
        plans.append(TaskPlan(task, dataset, versions))
    return sorted(plans, key=lambda item: item.task.name)


class ImageFolder:
    """The version's images: hard links to the media store where it can (same file system), copies otherwise;
    named by content, so an image shared by several tasks is there once."""

    def __init__(self, root: Path, media: MediaStore):
        self.root, self.media, self.names = root, media, set()
        root.mkdir()

    def add(self, sha256: str, image_format: str) -> str:
        name = f"{sha256}.{image_format.lower()}"
        if name not in self.names:
            source, target = self.media.path_for(sha256), self.root / name
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            self.names.add(name)
        return name


def _record(record_id: str, task_name: str, prompt: str, target: str, image: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": record_id}
    if image is not None:  # a text-only record has no image key at all: `"image": null` crashes the loader
        record["image"] = image
    record["task_name"] = task_name
    record["conversations"] = [{"from": "human", "value": prompt}, {"from": "gpt", "value": target}]
    return record


def build(engine: Engine, *, spec: ExportSpec, destination: Path, media: MediaStore,
          count_tokens: Callable[[str], int], on_progress: Callable[[float, str], None] = lambda *_: None,
          name: str = "") -> dict[str, Any]:
    """Builds the version into `destination` (which must not exist yet) and returns its manifest."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(destination.parent, prefix=f".building-{destination.name}-")
    work = Path(tempfile.mkdtemp(prefix=f".building-{destination.name}-", dir=destination.parent))
    try:
        manifest = _build_into(engine, spec, work, media, count_tokens, on_progress, name)
        try:
            work.rename(destination)  # the version appears whole, or not at all
        except OSError:
            if not (destination / "manifest.json").is_file():
                raise
            # Another build of the same spec finished first; builds are deterministic, keep that one.
        return manifest
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _sweep_abandoned(parent: Path, *, prefix: str) -> None:
    """Removes the temporary folders of builds that were killed: none of their files changed for an hour (a
    running build writes all the time, so it is never mistaken for one)."""
    now = time.time()
    for folder in parent.glob(f"{prefix}*"):
        latest = max([folder.stat().st_mtime, *(path.stat().st_mtime for path in folder.iterdir())])
        if now - latest > ABANDONED_AFTER_S:
            shutil.rmtree(folder, ignore_errors=True)


def _build_into(engine: Engine, spec: ExportSpec, work: Path, media: MediaStore,
                count_tokens: Callable[[str], int], on_progress, name: str) -> dict[str, Any]:
    images = ImageFolder(work / IMAGE_DIR, media)
    train, val = JsonArrayWriter(work / "stage1.json"), JsonArrayWriter(work / "val.json")
    lines = JsonLinesWriter(work / "stage1.jsonl")
    tally = Tally()
    rules = (count_tokens, spec.max_tokens, spec.image_tokens)
    with Session(engine) as session:
        plans = plan(session, spec)
        for done, item in enumerate(plans):
            choices = [(version.id, renderer_for(InstructionSpec(
                text=version.text, input_template=version.input_template, output_template=version.output_template,
                options_style=version.options_style, image_placement=version.image_placement)))
                for version in item.versions]
            task_name, trained, validated = item.task.name, 0, 0
            used = tally.versions_used.setdefault(task_name, Counter())
            splitting = spec.validation_ratio > 0
            for instance_id, input_text, options, raw, preferred, sha256, image_format in draw_instances(
                    session, task_id=item.task.id, seed=spec.seed, cap=spec.per_task_cap):
                version_id, renderer = choose(choices, spec.seed, instance_id)
                record_id = f"{task_name}/{instance_id}/v{version_id}"  # task, instance and instruction version
                try:
                    rendered = renderer(input_text, options, raw, preferred, sha256 is not None)
                except TemplateProblem as problem:
                    tally.leave_out([Violation(record_id, "render", str(problem))])
                    continue
                problems = check_pair(record_id, rendered.prompt, rendered.target, sha256 is not None, *rules)
                if problems:
                    tally.leave_out(problems)
                    continue
                image = images.add(sha256, image_format) if sha256 else None
                data = ascii_json(_record(record_id, task_name, rendered.prompt, rendered.target, image))
                if splitting and unit(spec.seed ^ SPLIT_SALT, instance_id) < spec.validation_ratio:
                    val.add_encoded(data)
                    validated += 1
                else:
                    train.add_encoded(data)
                    lines.add_encoded(data)
                    trained += 1
                used[version_id] += 1
                if (trained + validated) % PROGRESS_EVERY == 0:  # also keeps a job's lease alive on a big task
                    on_progress(done / (len(plans) + 1), f"{task_name}: {trained + validated:,} records")
            tally.per_task[task_name] = Counter({"train": trained, "validation": validated})
            on_progress((done + 1) / (len(plans) + 1), f"{done + 1} of {len(plans)} tasks")
        files = {"stage1.json": train.close(), "val.json": val.close(), "stage1.jsonl": lines.close()}
        on_progress(len(plans) / (len(plans) + 1), "writing stage1.parquet")
        files["stage1.parquet"] = jsonl_to_parquet(work / "stage1.jsonl", work / "stage1.parquet")
        stage2 = _stage2(session, spec, work, images, rules, tally) if spec.conversation_pool_id else None
        if stage2 is not None:
            files["stage2.json"] = stage2
        if spec.images_as_tar:
            on_progress(0.98, "packing the images")
            files["images.tar"] = tar_folder(images.root, work / "images.tar")
            shutil.rmtree(images.root)
        on_progress(0.99, "writing the manifest and the dataset card")
        # What review measured, for the card: only the version's tasks.
        quality = {row.task.id: row for row in per_task(session, task_ids=[item.task.id for item in plans])}
    card = dataset_card(name=name, spec=spec, plans=plans, tally=tally, quality=quality)
    for filename, text in {"README.md": card, **train_scripts(spec, stage2 is not None)}.items():
        writer = HashingFile(work / filename)
        writer.write(text.encode("utf-8"))
        files[filename] = writer.close()
    for script in ("train_stage1.sh", "train_stage2.sh"):
        (work / script).chmod(0o755)
    manifest = {
        "name": name, "software": f"flan-studio {__version__}", "spec": spec.model_dump(mode="json"),
        "spec_sha256": spec.digest(), "files": dict(sorted(files.items())), "images": len(images.names),
        "counts": {task: dict(counts) for task, counts in sorted(tally.per_task.items())},
        "instruction_versions": {task: {str(version_id): count for version_id, count in sorted(used.items())}
                                 for task, used in sorted(tally.versions_used.items())},
        "excluded": {"records": tally.excluded, "reasons": tally.violations},
    }
    (work / "manifest.json").write_bytes(ascii_json(manifest) + b"\n")
    return manifest


def _stage2(session: Session, spec: ExportSpec, work: Path, images: ImageFolder, rules: tuple,
            tally: Tally) -> dict[str, Any]:
    """The seeded conversation sample; every record gets a new unique id (LLaVA-Instruct's repeat)."""
    writer = JsonArrayWriter(work / "stage2.json")
    for row in draw_conversations(session, pool_id=spec.conversation_pool_id, seed=spec.seed,
                                  size=spec.stage2_size):
        record: dict[str, Any] = {"id": f"stage2/{row.pool_id}/{row.position}"}
        if row.sha256:
            record["image"] = images.add(row.sha256, row.format)
        record["conversations"] = row.conversations
        problems = check_record(record, count_tokens=rules[0], max_tokens=rules[1], image_tokens=rules[2])
        if problems:
            tally.leave_out(problems)
            continue
        writer.add(record)
    return writer.close()
