"""What an import is asked to do: one schema per format. The browser's form, the worker's job and the CLI all
validate through these and run through `run`, so a request the page accepts is one the job can carry out, and
the command line imports exactly as the browser does.

Paths are relative to the import root when a request comes from the browser (`locate(root)` confines them);
the CLI's user has the file system, and gives paths as they are (`locate(None)`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import Engine

from app.core.failures import Invalid
from app.core.objectstore import ObjectMissing, StorageUnavailable, is_object_url
from app.core.storage import Media, PathOutsideRoot, confined
from app.ingest import IMPORT_FORMATS
from app.ingest.image_sources import ImageSourceInvalid, is_archive
from app.ingest.joins import JoinInvalid, split_on
from app.ingest.object_files import ObjectPath
from app.ingest.record_files import MalformedFile
from app.ingest.tabular import FieldMapping, MappingInvalid
from app.ingest.yaml_lines import EntriesRefused
from app.models.stage2 import ConversationKind

Progress = Callable[[int], None]  # records read so far


@dataclass(frozen=True)
class Located:
    """A request's paths on this machine."""

    file: Path
    image_root: Path | None = None
    others: dict[str, Path] = field(default_factory=dict)  # by field: a joined file, an instruction file


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    format: str
    file: str = Field(min_length=1, max_length=1000, description="The file (a folder for a saved dataset).")
    folder_ok: ClassVar[bool] = False  # may `file` be a folder?
    other_files: ClassVar[tuple[str, ...]] = ()  # fields naming more files to read
    all_or_nothing: ClassVar[bool] = False  # or imported in chunks that each commit whole

    def locate(self, root: Path | str | None) -> Located:
        """The paths, confined to `root` when there is one; Invalid names each field that does not resolve."""
        errors: dict[str, str] = {}
        file = _resolve(root, self.file, "file", errors)
        if file is not None and not (file.is_file() or (self.folder_ok and file.is_dir())):
            errors["file"] = "no such file" + (" under the import root" if root else "")
        image_root = None
        if getattr(self, "image_root", None):
            image_root = _resolve(root, self.image_root, "image_root", errors)
            archive = image_root is not None and image_root.is_file() and is_archive(image_root)
            if image_root is not None and not (image_root.is_dir() or archive):
                errors["image_root"] = "no such folder, .zip or .tar" + (" under the import root" if root else "")
        others = {}
        for name in self.other_files:
            if getattr(self, name):
                others[name] = _resolve(root, getattr(self, name), name, errors)
                if others[name] is not None and not others[name].is_file():
                    errors[name] = "no such file" + (" under the import root" if root else "")
        if errors:
            raise Invalid("Some fields need attention.", fields=errors)
        return Located(file, image_root, others)

    def run(self, *, engine: Engine, media: Media, located: Located, actor_id: int | None,
            on_progress: Progress | None = None):
        """Imports; returns the report (its `summary()` says what happened)."""
        raise NotImplementedError


class InstanceImport(ImportRequest):
    format: Literal["unified"]
    image_root: str | None = Field(None, max_length=1000)
    max_per_task: int | None = Field(None, ge=1, description="A seeded sample of at most this many per task.")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Seed of the per-task sample (none: 0).")
    chunk_size: int | None = Field(None, ge=1, le=1_000_000)

    def source(self, located: Located) -> dict[str, Any]:
        """How records are read and parsed, when not by the format's own parser."""
        return {}

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        return self._import(engine, media, located, actor_id, on_progress, **self.source(located))

    def _import(self, engine, media, located, actor_id, on_progress, **source):
        from app.ingest.importer import ImportOptions, InstanceImporter

        options = ImportOptions(image_root=located.image_root, max_per_task=self.max_per_task, seed=self.seed or 0,
                                **({"chunk_size": self.chunk_size} if self.chunk_size else {}))
        return InstanceImporter(engine, media, options, file_format=self.format, actor_id=actor_id,
                                on_progress=on_progress, **source).run(located.file)


class LlavaImport(InstanceImport):
    format: Literal["llava"]  # type: ignore[assignment]  # each format's request narrows the one it accepts
    instruction_file: str | None = Field(None, max_length=1000, description=(
        "The tasks' instructions, to cut from the human turns (the `import instructions` list, or a mapping "
        "of task to instruction); without it, each task's shared leading text is recognised."))
    other_files: ClassVar[tuple[str, ...]] = ("instruction_file",)

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        """Finds the instructions first (a pass over the file, unless they are given), imports the rest of
        each human turn as the input, then gives each task its instruction as a draft."""
        from app.ingest import llava_instructions

        given = located.others.get("instruction_file")
        instructions = (llava_instructions.read_instruction_file(given) if given
                        else llava_instructions.shared_instructions(located.file))
        report = self._import(engine, media, located, actor_id, on_progress,
                              parse=llava_instructions.separating(instructions))
        report.instructions_separated = instructions
        report.tasks_given_instructions = llava_instructions.store_imported(engine, instructions, actor_id=actor_id)
        return report


class TableImport(InstanceImport):
    format: Literal["table"]  # type: ignore[assignment]  # each format's request narrows the one it accepts
    dataset: str | None = Field(None, max_length=200, description="dataset_name for every row.")
    task: str | None = Field(None, max_length=200, description="task_name for every row.")
    records: str | None = Field(None, max_length=200, description="The key of a JSON object that holds the records "
                                                                   "(COCO: annotations, VQA: questions).")
    join: str | None = Field(None, max_length=1000, description="A second file, joined to each record on --on.")
    join_records: str | None = Field(None, max_length=200, description="The key holding the joined file's records.")
    other_files: ClassVar[tuple[str, ...]] = ("join",)
    on: str | None = Field(None, max_length=200, validate_default=True,
                           description="The join key: a column of both files, or 'main column=joined column'.")
    image_pattern: str | None = Field(None, max_length=500, description="img_path made from columns, e.g. "
                                                                        "'COCO_train2014_{image_id:012d}.jpg'.")
    # After the fields above: its check needs them (fields are validated in the order they are declared).
    map: list[str] = Field(default_factory=list, description="'source column->field' pairs.")
    folder_ok: ClassVar[bool] = True

    @field_validator("map", mode="before")
    @classmethod
    def _one_pair_a_line(cls, value):
        """A form's textarea: one pair per line."""
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()]
        return value

    @field_validator("on")
    @classmethod
    def _a_key_to_join_on(cls, on: str | None, info: ValidationInfo) -> str | None:
        if bool(on) != bool(info.data.get("join")):
            raise ValueError("a join needs both the file (--join) and the key (--on)")
        if on:
            try:
                split_on(on)
            except JoinInvalid as error:
                raise ValueError(str(error)) from None
        return on

    @field_validator("map")
    @classmethod
    def _fills_every_needed_field(cls, pairs: list[str], info: ValidationInfo) -> list[str]:
        try:
            FieldMapping.parse(pairs, {"dataset_name": info.data.get("dataset"), "task_name": info.data.get("task")},
                               info.data.get("image_pattern"))
        except MappingInvalid as error:
            raise ValueError(str(error)) from None
        return pairs

    def source(self, located: Located):
        from app.ingest.joins import Join
        from app.ingest.tabular import read_rows

        mapping = FieldMapping.parse(self.map, {"dataset_name": self.dataset, "task_name": self.task},
                                     self.image_pattern)
        if "join" not in located.others:
            return {"parse": mapping.parser(), "read": lambda path: read_rows(path, self.records)}
        join = Join(located.others["join"], self.on, self.join_records, keep=mapping.source_columns())
        return {"parse": mapping.parser(), "read": lambda path: join.rows(read_rows, path, self.records)}


class ConversationImport(ImportRequest):
    format: Literal["conversations"]
    image_root: str | None = Field(None, max_length=1000)
    pool: str = Field(min_length=1, max_length=120, description="The stage-2 pool to add to (created if new).")
    kind: ConversationKind | None = Field(None, description="What the file's conversations are (LLaVA-Instruct's "
                                          "three kinds); default: from the file's name, e.g. detail_23k.json.")

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        from app.ingest.conversations import ConversationImporter, PoolOptions

        options = PoolOptions(pool=self.pool, image_root=located.image_root, kind=self.kind)
        return ConversationImporter(engine, media, options, actor_id=actor_id,
                                    on_progress=on_progress).run(located.file)


class MetadataImport(ImportRequest):
    format: Literal["metadata"]
    all_or_nothing: ClassVar[bool] = True

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        from sqlmodel import Session

        from app.ingest.metadata import apply_metadata

        with Session(engine) as session:
            return apply_metadata(session, path=located.file, actor_id=actor_id)


class InstructionImport(ImportRequest):
    format: Literal["instructions"]
    submit: bool = Field(False, description="Submit each instruction for review (unless that version is there).")
    all_or_nothing: ClassVar[bool] = True

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        from sqlmodel import Session

        from app.ingest.instructions import import_instructions

        with Session(engine) as session:
            return import_instructions(session, path=located.file, actor_id=actor_id, submit=self.submit)


class CorrectionsImport(ImportRequest):
    format: Literal["corrections"]
    all_or_nothing: ClassVar[bool] = True

    def run(self, *, engine, media, located, actor_id, on_progress=None):
        from sqlmodel import Session

        from app.ingest.corrections import import_corrections

        with Session(engine) as session:
            return import_corrections(session, path=located.file, actor_id=actor_id)


REQUESTS: dict[str, type[ImportRequest]] = {"unified": InstanceImport, "llava": LlavaImport, "table": TableImport,
                                            "conversations": ConversationImport, "metadata": MetadataImport,
                                            "instructions": InstructionImport, "corrections": CorrectionsImport}
assert set(REQUESTS) == set(IMPORT_FORMATS)
WITH_IMAGES = frozenset(name for name, model in REQUESTS.items() if "image_root" in model.model_fields)
SAMPLED = frozenset(name for name, model in REQUESTS.items() if "max_per_task" in model.model_fields)


def request_model(file_format: str) -> type[ImportRequest]:
    if file_format not in REQUESTS:
        raise Invalid("Choose a format.", fields={"format": f"one of {', '.join(REQUESTS)}"})
    return REQUESTS[file_format]


def failure(error: Exception, wanted: ImportRequest | None = None) -> str | None:
    """What to tell the user of an import that stopped on its input, or None for any other error."""
    if isinstance(error, MalformedFile):
        chunked = error.line > 1 and not (wanted and wanted.all_or_nothing)
        after = " (whole chunks before it were imported; fix the file and import again)" if chunked else ""
        return f"{error.path.name}:{error.line}: {error.message}{after}"
    if isinstance(error, EntriesRefused):
        return "nothing was imported:\n" + "\n".join(f"  {problem}" for problem in error.problems)
    if isinstance(error, Invalid) and error.fields:
        return "; ".join(f"{name.replace('_', '-')}: {problem}" for name, problem in error.fields.items())
    if isinstance(error, ImageSourceInvalid | Invalid | MappingInvalid | JoinInvalid):
        return getattr(error, "message", None) or str(error)
    if isinstance(error, ObjectMissing | StorageUnavailable):  # the file or its store, on object storage
        return str(error)
    return None


def _resolve(root: Path | str | None, relative: str, field: str, errors: dict[str, str]
             ) -> Path | ObjectPath | None:
    if "\x00" in relative:
        errors[field] = "cannot contain a NUL character"
        return None
    if isinstance(root, str):  # an s3://bucket/prefix root: a key under the prefix, never beside or above it
        key = confined_key(relative)
        if key is None:
            errors[field] = "must be under the import root (a relative path, without ..)"
            return None
        try:
            return ObjectPath(f"{root.rstrip('/')}/{key}") if key else ObjectPath(root)
        except ValueError as error:
            errors[field] = str(error)
            return None
    if root is None:  # the command line's own paths, or files on object storage
        if is_object_url(relative):
            try:
                return ObjectPath(relative)
            except ValueError as error:
                errors[field] = str(error)
                return None
        return Path(relative)
    try:
        return confined(root, relative)
    except PathOutsideRoot:
        errors[field] = "must be under the import root"
        return None


def confined_key(relative: str) -> str | None:
    """`relative` as a key under an object-storage root ("" for the root itself), or None when it would leave it:
    an absolute path, a URL, or `..` anywhere (S3 keys are literal: `a/../b` is not `b`, and a prefix check on it
    would be fooled by a server that does normalise)."""
    text = relative.strip()
    if "://" in text or text.startswith(("/", "\\")):
        return None
    parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)
