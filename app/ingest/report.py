"""What an import did: counts, and every rejected record with file, line, field and reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MAX_LISTED_REJECTIONS = 10_000  # beyond this only the count grows: a report must stay readable


@dataclass(frozen=True, slots=True)
class Rejection:
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


@dataclass
class ImportReport:
    source: str
    imported: int = 0
    duplicates: int = 0
    not_sampled: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)
    images_stored: int = 0
    max_per_task: int | None = None
    seed: int | None = None  # of the --max-per-task sample, so that it can be drawn again
    seconds: float = 0.0
    instructions_separated: dict[str, str] = field(default_factory=dict)  # import llava: task -> its instruction
    tasks_given_instructions: list[str] = field(default_factory=list)  # ... stored as the task's `imported` draft

    def reject(self, file: str, line: int, field_name: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(Rejection(file, line, field_name, reason))

    def as_dict(self) -> dict:
        return asdict(self)

    def counts(self) -> dict:
        """Everything but the list of rejections: what the audit log keeps of an import."""
        return {key: value for key, value in self.as_dict().items() if key != "rejected"}

    def summary(self) -> str:
        rate = f", {self.imported / self.seconds:,.0f} instances/s" if self.seconds and self.imported else ""
        parts = [f"imported {self.imported:,}", f"skipped {self.duplicates:,} duplicates",
                 f"rejected {self.rejected_count:,}"]
        if self.not_sampled:
            parts.append(f"left out {self.not_sampled:,} by --max-per-task")
        if self.instructions_separated:
            parts.append(f"took the instruction out of the input for {len(self.instructions_separated):,} tasks")
        return f"{self.source}: " + ", ".join(parts) + f" in {self.seconds:.1f} s{rate}"
