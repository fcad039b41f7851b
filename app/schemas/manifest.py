"""A dataset version's manifest: what its build wrote (`manifest.json`, and the version row's copy), as a model.

The build makes one and writes it (`stored()`, the same keys in the same order as the files of versions already
published); whoever reads a version's manifest parses it once with `Manifest.read` and asks it, rather than
walking the dict. Manifests of versions built before a field existed still read: later fields have defaults, and
keys this studio does not know are kept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    bytes: int
    sha256: str
    records: int | None = Field(None, description="JSON record files: how many records.")
    images: int | None = Field(None, description="images.tsv: how many images it names.")


class Excluded(BaseModel):
    model_config = ConfigDict(frozen=True)

    records: int = 0
    reasons: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = ""
    software: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    spec_sha256: str = ""
    files: dict[str, FileEntry] = Field(default_factory=dict)
    images: int = 0
    images_digest: str = ""
    counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="Per task, records per split.")
    instruction_versions: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per task, records per instruction version id (a string, as in JSON).")
    excluded: Excluded = Field(default_factory=Excluded)

    @classmethod
    def read(cls, stored: dict[str, Any] | None) -> Manifest | None:
        """A version's manifest, or None while it has none (building, or failed)."""
        return cls.model_validate(stored) if stored else None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def tasks(self) -> list[str]:
        return list(self.counts)

    def records_in(self, name: str) -> int:
        entry = self.files.get(name)
        return entry.records or 0 if entry else 0

    def content_lines(self) -> str:
        """`<name> <sha256>` per file: what the version's content hash is taken over."""
        return "".join(f"{name} {entry.sha256}\n" for name, entry in self.files.items())
