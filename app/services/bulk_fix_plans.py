"""Working out a bulk fix before anything is written: which instances its query picks, what its change does to
each, which of them ready versions hold out for validation, and which the change would break (refused, with the
rule in words). The preview and the proposal both come from here, so the proposal stores what was previewed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from app.core.failures import Invalid
from app.core.validation_words import in_words
from app.exports.sampling import SPLIT_SALT, unit
from app.models import DatasetVersion, Instance, InstanceStatus, VersionStatus
from app.schemas.bulk_fixes import BulkQuery, ExcludeChange, ReplaceChange
from app.schemas.export_spec import ExportSpec
from app.schemas.revisions import InstanceFixIn
from app.services import scores as score_service
from app.services.blinding import Blindfold
from app.services.instance_revisions import INSTANCES
from app.services.instances import InstanceFilters, filtered
from app.services.tasks import get_task

BATCH = 5_000
REPLACED = ("raw_output", "human_preferred_output")  # the targets a replace looks in, beside the options
FIELD_WORDS = {"raw_output": "target", "human_preferred_output": "preferred output", "options": "options"}


@dataclass(frozen=True)
class PlannedItem:
    instance_id: int
    task_id: int
    changes: dict[str, dict[str, Any]]
    base_lock_version: int
    validation: bool
    refusal: str | None


@dataclass
class Tally:
    """How a fix's items divide, counted as they stream by (a fix may hold hundreds of thousands)."""

    change_count: int = 0
    validation_count: int = 0  # held out for validation by ready versions, left alone
    refused_count: int = 0
    hidden_count: int = 0  # matched, but their targets are hidden from whoever asked: left out

    def add(self, item: PlannedItem, *, include_validation: bool) -> str:
        """Counts the item; which kind it is: "change", "validation" or "refused"."""
        if item.refusal:
            self.refused_count += 1
            return "refused"
        if item.validation and not include_validation:
            self.validation_count += 1
            return "validation"
        self.change_count += 1
        return "change"

    def counts(self) -> dict[str, int]:
        return dict(vars(self))


def planned(session: Session, *, query: BulkQuery, change: ReplaceChange | ExcludeChange, blindfold: Blindfold,
            tally: Tally) -> Iterator[PlannedItem]:
    """Every instance the query picks that the change would change, in (task, id) order; those hidden from the
    viewer are counted in `tally` and left out."""
    holdouts = _validation_holdouts(session)
    for task_id in dict.fromkeys(query.task_ids):
        get_task(session, task_id=task_id)  # NotFound names it
        suspects = _suspects(session, task_id) if query.suspects_only else None
        for row in _rows(session, task_id, query, blindfold):
            instance_id = row[0]
            if suspects is not None and instance_id not in suspects:
                continue
            changes = _changes(change, row)
            if not changes:
                continue
            if blindfold.hides(instance_id):
                tally.hidden_count += 1
                continue
            validation = any(task_id in tasks and unit(seed, instance_id) < ratio for seed, ratio, tasks in holdouts)
            yield PlannedItem(instance_id, task_id, changes, row[-1], validation, refusal(row, changes))


def _rows(session: Session, task_id: int, query: BulkQuery, blindfold: Blindfold) -> Iterator[tuple]:
    filters = InstanceFilters(split=query.split, status=query.status, q=query.q)
    columns = select(Instance.id, Instance.options, Instance.raw_output, Instance.human_preferred_output,
                     Instance.status, Instance.lock_version)
    after = 0
    while rows := session.exec(filtered(columns, task_id, filters, after, blindfold)
                               .order_by(Instance.id).limit(BATCH)).all():
        yield from rows
        after = rows[-1][0]


def _suspects(session: Session, task_id: int) -> set[int]:
    """The suspects of the task's chosen scores; none before a model has looked."""
    scores = score_service.chosen_set(session, task_id=task_id)
    if scores is None:
        return set()
    return {doubt.instance_id for doubt in score_service.ranking(session, task_id=task_id, scores=scores)
            if doubt.suspect}


def _changes(change: ReplaceChange | ExcludeChange, row: tuple) -> dict[str, dict[str, Any]]:
    _, options, raw_output, preferred, status, _ = row
    if isinstance(change, ExcludeChange):
        return {} if status == InstanceStatus.excluded else \
            {"status": {"before": status, "after": InstanceStatus.excluded.value}}
    find, new = change.find, change.replace_with

    def replaced(value: str) -> str:
        if change.whole_value:
            return new if value == find else value
        return value.replace(find, new)

    changes: dict[str, dict[str, Any]] = {}
    for name, value in zip(REPLACED, (raw_output, preferred), strict=True):
        if value is not None and replaced(value) != value:
            changes[name] = {"before": value, "after": replaced(value)}
    if options:
        after = [replaced(option) for option in options]
        if after != options:
            changes["options"] = {"before": options, "after": after}
    return changes


def refusal(row: tuple, changes: dict[str, dict[str, Any]]) -> str | None:
    """Why the change cannot be made to this instance (the limits a fix by hand keeps), or None."""
    values = {name: change["after"] for name, change in changes.items() if name != "status"}
    if not values:
        return None
    try:
        InstanceFixIn.model_validate({"lock_version": 0, "reason": "bulk fix", **values})
    except ValidationError as error:
        problem = error.errors()[0]
        name, *at = problem["loc"]
        where = f"option {int(at[0]) + 1}" if name == "options" and at else FIELD_WORDS.get(str(name), str(name))
        return f"{where}: {in_words(problem)}"
    _, options, raw_output, _, _, _ = row
    after = {"options": values.get("options", options), "raw_output": values.get("raw_output", raw_output)}
    try:
        INSTANCES.check(None, None, after)  # the rule reads only the values
    except Invalid as problem:
        return problem.message
    return None


def _validation_holdouts(session: Session) -> list[tuple[int, float, frozenset[int]]]:
    """(split seed, ratio, tasks) of each ready version that holds records out for validation: an instance is in
    its validation split when `unit(seed, id) < ratio`, as the build decides (exports/task_records.py). A capped
    task's instances the build did not draw count too: the rule leaves alone more than it must, never less."""
    holdouts = []
    for (stored,) in session.execute(select(DatasetVersion.spec).where(DatasetVersion.status == VersionStatus.ready)):
        spec = ExportSpec.model_validate(stored)
        if spec.validation_ratio:
            holdouts.append((spec.seed ^ SPLIT_SALT, spec.validation_ratio, frozenset(spec.task_ids)))
    return holdouts
