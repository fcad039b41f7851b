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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from app import __version__
from app.core.storage import Media
from app.exports import chat_layouts, hf_layout
from app.exports.card import ReviewFigures, Stage2Drawn, dataset_card, onevision_data, train_scripts
from app.exports.contract import check_record
from app.exports.files import HashingFile, JsonArrayWriter, ascii_json, images_digest, tar_folder
from app.exports.image_tokens import counter_for
from app.exports.parallel import build_records
from app.exports.sampling import draw_conversations
from app.exports.task_records import IMAGE_DIR, IMAGE_LIST, ImageFolder, Tally, TaskPlan, referenced_names
from app.models import Image, Instruction, InstructionStatus, InstructionVersion, SourceDataset, Task
from app.schemas.export_spec import ExportSpec
from app.schemas.manifest import Excluded, Manifest

ABANDONED_AFTER_S = 3600


class BuildError(ValueError):
    """The spec cannot be built as it stands (e.g. a task without an approved instruction)."""


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


def build(engine: Engine, *, spec: ExportSpec, destination: Path, media: Media | None,
          count_tokens: Callable[[str], int], on_progress: Callable[[float, str], None] = lambda *_: None,
          name: str = "", processes: int | None = None, qc_override: str | None = None,
          review: ReviewFigures | None = None, image_source: Media | None = None) -> dict[str, Any]:
    """Builds the version into `destination` (which must not exist yet) and returns its manifest. `processes`
    writes the records with that many processes (default: one per core on big builds; the bytes are the same).
    Without a media store (`media=None`, a version for object storage) the images are not copied: `images.tsv`
    names them (and their sizes) in the media bucket, and `versions.pull` fetches them from there. `review`: what
    review measured on the tasks, for the card (none: the card says nothing of review). `image_source`: where the
    hf layout reads the images' bytes when `media` is None (the media bucket a version on object storage names)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(destination.parent, prefix=f".building-{destination.name}-")
    work = Path(tempfile.mkdtemp(prefix=f".building-{destination.name}-", dir=destination.parent))
    try:
        manifest = _build_into(engine, spec, work, media, count_tokens, on_progress, name, processes, qc_override,
                               review or ReviewFigures(), image_source)
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


def _build_into(engine: Engine, spec: ExportSpec, work: Path, media: Media | None,
                count_tokens: Callable[[str], int], on_progress, name: str, processes: int | None,
                qc_override: str | None, review: ReviewFigures, image_source: Media | None) -> dict[str, Any]:
    with Session(engine) as session:
        plans = plan(session, spec)
        tally, files = build_records(engine, plans, spec, media, count_tokens, work, work / IMAGE_DIR,
                                     on_progress, processes)
        images = ImageFolder(work / IMAGE_DIR, media)
        rules = (count_tokens, spec.max_tokens, spec.image_tokens, counter_for(spec.model_family))
        stage2, drawn = _stage2(session, spec, work, images, rules, tally) if spec.conversation_pool_id \
            else (None, None)
        images.close()
        if stage2 is not None:
            files["stage2.json"] = stage2
        if media is None:
            image_sizes = _referenced_sizes(session, referenced_names(images.root))
            shutil.rmtree(images.root)
            files[IMAGE_LIST] = _image_list(work / IMAGE_LIST, image_sizes)
        else:
            image_sizes = [(entry.name, entry.stat().st_size) for entry in os.scandir(images.root) if entry.is_file()]
        card = dataset_card(name=name, spec=spec, plans=plans, tally=tally, review=review, qc_override=qc_override,
                            stage2=drawn)
        if "hf" in spec.layouts:
            on_progress(0.95, "writing the hf layout (Parquet with the images inside)")
            from_folder = images.root.is_dir()
            files.update(hf_layout.write(work, images=_image_reader(images.root, media or image_source), card=card,
                                         readers=1 if from_folder else hf_layout.BUCKET_READERS))
        for layout in ("llamafactory", "swift"):
            if layout in spec.layouts:
                files.update(chat_layouts.write(work, layout))
        if spec.images_as_tar and media is not None:
            on_progress(0.98, "packing the images")
            files["images.tar"] = tar_folder(images.root, work / "images.tar")
            shutil.rmtree(images.root)
        on_progress(0.99, "writing the manifest and the dataset card")
    trainer_files = {**train_scripts(spec, stage2 is not None), **onevision_data(stage2 is not None)}
    for filename, text in {"README.md": card, **trainer_files}.items():
        writer = HashingFile(work / filename)
        writer.write(text.encode("utf-8"))
        files[filename] = writer.close()
    for script in ("train_stage1.sh", "train_stage2.sh"):
        (work / script).chmod(0o755)
    manifest = Manifest(
        name=name, software=f"flan-studio {__version__}", spec=spec.model_dump(mode="json"),
        spec_sha256=spec.digest(), files=dict(sorted(files.items())), images=len(image_sizes),
        images_digest=images_digest(image_sizes),
        counts={task: dict(counts) for task, counts in sorted(tally.per_task.items())},
        instruction_versions={task: {str(version_id): count for version_id, count in sorted(used.items())}
                              for task, used in sorted(tally.versions_used.items())},
        excluded=Excluded(records=tally.excluded, reasons=tally.violations),
    ).stored()
    (work / "manifest.json").write_bytes(ascii_json(manifest) + b"\n")
    return manifest


def _image_reader(folder: Path, source: Media | None) -> hf_layout.ImageReader:
    """An image's bytes by its name: from the version's images folder, or (a version whose images are not copied)
    from the media store they are named in."""
    if folder.is_dir():
        return lambda name: (folder / name).read_bytes()
    if source is None:
        raise BuildError("The hf layout holds the images' bytes, and this build has neither the images nor the "
                         "media store to read them from.")
    return lambda name: source.read(name.split(".", 1)[0])


def _referenced_sizes(session: Session, names: set[str]) -> list[tuple[str, int]]:
    """(name, bytes) of each image a version names by reference, sizes from the image rows."""
    by_digest = {name.split(".", 1)[0]: name for name in names}
    digests, sizes = sorted(by_digest), []
    for start in range(0, len(digests), 5000):
        chunk = digests[start:start + 5000]
        sizes += [(by_digest[sha256], size) for sha256, size in
                  session.exec(select(Image.sha256, Image.bytes).where(Image.sha256.in_(chunk)))]
    return sizes


def _image_list(path: Path, sizes: list[tuple[str, int]]) -> dict[str, Any]:
    """`images.tsv`: a line `name<TAB>bytes` per image, sorted by name."""
    writer = HashingFile(path)
    writer.write("".join(f"{name}\t{size}\n" for name, size in sorted(sizes)).encode("ascii"))
    return {**writer.close(), "images": len(sizes)}


def _stage2(session: Session, spec: ExportSpec, work: Path, images: ImageFolder, rules: tuple,
            tally: Tally) -> tuple[dict[str, Any], Stage2Drawn]:
    """The seeded conversation sample; every record gets a new unique id (LLaVA-Instruct's repeat). Also what the
    card says of it (kinds, and who wrote the synthesized ones)."""
    writer, drawn = JsonArrayWriter(work / "stage2.json"), Stage2Drawn()
    for row in draw_conversations(session, pool_id=spec.conversation_pool_id, seed=spec.seed,
                                  size=spec.stage2_size, reviewed_only=not spec.stage2_unreviewed,
                                  as_of=spec.as_of, by_kind=spec.stage2_by_kind):
        record: dict[str, Any] = {"id": f"stage2/{row.pool_id}/{row.position}"}
        if row.sha256:
            record["image"] = images.add(row.sha256, row.format)
        record["conversations"] = row.conversations
        count, max_tokens, image_tokens, tokens_of_image = rules
        if tokens_of_image and row.sha256:
            image_tokens = tokens_of_image(row.width, row.height)
        problems = check_record(record, count_tokens=count, max_tokens=max_tokens, image_tokens=image_tokens)
        if problems:
            tally.leave_out(problems)
            continue
        writer.add(record)
        drawn.add(row.kind, row.origin)
    return {**writer.close(), "records": writer.count}, drawn
