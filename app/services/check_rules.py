"""Who may open a quality check by hand, and how weak: the rules that keep a check from being weakened by the
people it judges.

A check asked for with settings weaker than the studio's defaults (a smaller sample, a lower pass rate, a
higher maximum error rate, a chosen seed, which chooses the sample), in place of a running check, or after a
failed one when the instruction has not changed since, needs an admin and a reason. The reason is kept on the
check (and a replaced check keeps it as why it was cancelled); the task's history and the dataset card show it.
The checks an approval opens by itself use the defaults and never need one."""

from __future__ import annotations

from sqlmodel import Session

from app.core import limits
from app.core.failures import Forbidden, Invalid
from app.models import QcStatus
from app.services import checks
from app.services.qc import QcDefaults
from app.services.sampling import newest_version


def _instances(count: int) -> str:
    return f"{count} instance{'' if count == 1 else 's'}"


def weaker_solve_test(*, size: int, pass_threshold: int, seed: int | None, defaults: QcDefaults) -> list[str]:
    weaker = []
    if size < defaults.solve_test_size:
        weaker.append(f"{_instances(size)}, fewer than the default {defaults.solve_test_size}")
    if pass_threshold * defaults.solve_test_size < defaults.solve_test_pass * size:
        weaker.append(f"passing at {pass_threshold} of {size}, below the default "
                      f"{defaults.solve_test_pass} of {defaults.solve_test_size}")
    if seed is not None:
        weaker.append("a chosen seed (it chooses the sample)")
    return weaker


def weaker_spot_check(*, size: int, max_error_rate: float, seed: int | None, defaults: QcDefaults) -> list[str]:
    """A lower expected error rate weakens a check only through the smaller sample it plans: the size covers it."""
    weaker = []
    if size < defaults.spot_check_size:
        weaker.append(f"{_instances(size)}, fewer than the default {defaults.spot_check_size}")
    if max_error_rate > defaults.max_error_rate:
        weaker.append(f"a maximum error rate of {max_error_rate:g}, above the default {defaults.max_error_rate:g}")
    if seed is not None:
        weaker.append("a chosen seed (it chooses the sample)")
    return weaker


def authorise(session: Session, kind: checks.CheckKind, *, task_id: int, version_id: int | None,
              weaker: list[str], is_admin: bool, reason: str | None) -> checks.Permission:
    """Allows the opening as asked, or refuses it with what would make it allowed."""
    reason = limits.at_most((reason or "").strip(), limits.NOTE, field="reason") or None
    needs = list(weaker)
    running = checks.open_check_of(session, kind, task_id=task_id)
    if running is not None:
        needs.append(f"it replaces the running {kind.noun} #{running}")
    latest = checks.latest_concluded(session, kind, task_id=task_id)
    if latest is not None and latest.status == QcStatus.failed:
        version = newest_version(session, task_id=task_id, version_id=version_id)
        if latest.instruction_version_id is not None and version.id <= latest.instruction_version_id:
            needs.append(f"the latest {kind.noun} (#{latest.id}) failed and the instruction has not changed since")
    if not needs:
        return checks.AS_DEFAULT
    if not is_admin:
        raise Forbidden(f"This {kind.noun} needs an admin: {'; '.join(needs)}. A check is never weakened, replaced "
                        f"or run again unchanged by the people it judges.", fields={"reason": "admins only"})
    if reason is None:
        raise Invalid(f"Say why ({'; '.join(needs)}): the reason is kept on the check and shown on the dataset "
                      f"card.", fields={"reason": "required"})
    return checks.Permission(reason=reason, overrides=tuple(needs), replaces=running)
