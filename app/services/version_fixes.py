"""The records two versions hold whose prompt or target differs because of fixes: the instances of tasks both
versions hold with revisions accepted between the two versions' pins (`as_of`, or `revisions_through` in specs
from before it), each field from the value the one version exported to the value the other did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.exports.sampling import REVISED_COLUMNS, counted_fix
from app.models import DatasetVersion, Instance, RecordKind, Revision, RevisionStatus, Task
from app.schemas.export_spec import ExportSpec
from app.services.blinding import HIDDEN, Blindfold


@dataclass(frozen=True)
class FixedRecord:
    instance_id: int
    task_name: str
    source_id: str
    changes: dict[str, dict[str, Any]]  # field: {"before": in the first version, "after": in the second}


@dataclass(frozen=True)
class FixedRecords:
    count: int
    shown: list[FixedRecord]  # the first `limit`, by instance


def fixed_between(session: Session, first: DatasetVersion, second: DatasetVersion, *, blindfold: Blindfold,
                  limit: int = 200) -> FixedRecords:
    """What fixes changed in the records from `first` to `second` (either may be the older)."""
    first_spec, second_spec = ExportSpec.model_validate(first.spec), ExportSpec.model_validate(second.spec)
    backwards = (first.id or 0) > (second.id or 0)  # the first was made after the second
    older, newer = (second_spec, first_spec) if backwards else (first_spec, second_spec)
    both = set(first_spec.task_ids) & set(second_spec.task_ids)
    if not both:
        return FixedRecords(0, [])
    collapsed: dict[int, dict[str, dict[str, Any]]] = {}
    for record_id, changes in session.exec(select(Revision.record_id, Revision.changes).where(
            Revision.record_kind == RecordKind.instance, Revision.status == RevisionStatus.accepted,
            counted_fix(newer.revisions_through, newer.as_of), ~counted_fix(older.revisions_through, older.as_of),
            col(Revision.task_id).in_(sorted(both)))
            .order_by(col(Revision.decided_at), col(Revision.id))):
        fields = collapsed.setdefault(record_id, {})
        for name, change in changes.items():
            if name in REVISED_COLUMNS:  # what a prompt or target is rendered from
                fields.setdefault(name, {"before": change["before"]})["after"] = change["after"]
    differing = {instance_id: {name: ({"before": c["after"], "after": c["before"]} if backwards else c)
                               for name, c in fields.items() if c["before"] != c["after"]}
                 for instance_id, fields in sorted(collapsed.items())}
    differing = {instance_id: fields for instance_id, fields in differing.items() if fields}
    shown_ids = list(differing)[:limit]
    names = {instance_id: (task_name, source_id) for instance_id, task_name, source_id in session.exec(
        select(Instance.id, Task.name, Instance.source_id).join(Task, Task.id == Instance.task_id)
        .where(col(Instance.id).in_(shown_ids)))} if shown_ids else {}
    shown = [FixedRecord(instance_id, *names[instance_id],
                         {name: {"before": HIDDEN, "after": HIDDEN} for name in differing[instance_id]}
                         if blindfold.hides(instance_id) else differing[instance_id])
             for instance_id in shown_ids if instance_id in names]
    return FixedRecords(len(differing), shown)
