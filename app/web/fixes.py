"""What the pages that take a fix share: the fix form's fields as `InstanceFixIn` takes them, and the offer of a
fix that follows a spot-check verdict."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

from app.models import Instance
from app.services.suggestions import Suggestion


@dataclass(frozen=True)
class FixOffer:
    """After a finding (a spot-check verdict of a problem, a blind answer that did not match): fix the instance
    now, traced to it."""

    action: str  # where the fix is posted: the finding's own route
    instance: Instance
    reason: str  # what the finding said, as the fix's reason to start from
    suggestion: Suggestion | None = None  # the model's, when it has one: proposed with one button
    target: str | None = None  # the target the form starts from (the blind answer), else the current one

    @property
    def proposed_target(self) -> str:
        return self.target if self.target is not None else self.instance.raw_output


def fix_values(form: FormData) -> dict[str, object]:
    """A fix form's fields as InstanceFixIn takes them: an emptied optional text clears it, the options are one a
    line, and a browser's CRLF line ends are the stored LF (or every multi-line target would differ)."""
    def text(name: str) -> str:
        return str(form.get(name, "")).replace("\r\n", "\n")

    values: dict[str, object] = {name: form.get(name) for name in ("lock_version", "reason", "split") if name in form}
    if "raw_output" in form:
        values["raw_output"] = text("raw_output")
    for name in ("input_text", "human_preferred_output"):
        if name in form:
            values[name] = text(name) or None
    if "options" in form:
        values["options"] = [line.strip() for line in text("options").split("\n") if line.strip()] or None
    values["accept"] = "accept" in form
    return values


def bulk_fix_values(form: FormData) -> dict[str, object]:
    """The bulk fix form's fields as BulkFixIn takes them: the query's and the change's in their own objects, an
    empty box left out (the schema's default), an unticked checkbox False."""
    def given(*names: str) -> dict[str, object]:
        return {name: form.get(name) for name in names if form.get(name) not in (None, "")}

    change: dict[str, object] = given("action")
    if change.get("action") == "replace":
        change |= {"find": form.get("find", ""), "replace_with": form.get("replace_with", ""),
                   "whole_value": "whole_value" in form}
    return {"query": {"task_ids": form.getlist("task_ids"), **given("status", "split", "q"),
                      "suspects_only": "suspects_only" in form},
            "change": change, "reason": form.get("reason", ""),
            "include_validation": "include_validation" in form, "accept": "accept" in form}
