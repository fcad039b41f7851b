"""Queueing a synthesis: every choice checked while whoever asks is there to read why not — the task, the prompt
(approved, of the kind asked for), the generator (a registered model, or an endpoint the admin configured), the
pool (synthesized, or a new one) — then one job with what it resolved to."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from app.core.failures import Invalid
from app.models import Job, Task
from app.schemas.jobs import SynthesizePayload
from app.schemas.stage2 import SynthesizeIn
from app.services import jobs
from app.services import registered_models as model_service
from app.services.synthesis import prompts, store
from app.services.synthesis.endpoints import EndpointConfigError, load_endpoints


def endpoint_names(endpoints_file: Path | None) -> list[str]:
    """What the synthesis form offers: the endpoints configured, by name (none when the file is unusable)."""
    try:
        return sorted(load_endpoints(endpoints_file))
    except EndpointConfigError:
        return []


def start(session: Session, data: SynthesizeIn, *, actor_id: int | None, endpoints_file: Path | None) -> Job:
    if session.get(Task, data.task_id) is None:
        raise Invalid(f"There is no task with id {data.task_id}.", fields={"task_id": "unknown"})
    if data.prompt_id is None:
        prompt = prompts.newest_approved(session, kind=data.conversation_kind)
    else:
        prompt = prompts.usable(session, prompt_id=data.prompt_id)
        if prompt.kind != data.conversation_kind:
            raise Invalid(f"Prompt {prompt.id} writes {prompt.kind} conversations, not {data.conversation_kind}.",
                          fields={"prompt_id": "another kind"})
    named: dict[str, str] = {}
    if data.backend == "model":
        model_service.get(session, model_id=data.model_id or 0)
    else:
        try:
            configured = load_endpoints(endpoints_file)
        except EndpointConfigError as error:
            raise Invalid(f"The endpoints file cannot be used: {error}", fields={"endpoint": "misconfigured"}) \
                from None
        if data.endpoint not in configured:
            offered = ", ".join(sorted(configured)) or "none is configured (an admin names them in the file "\
                                                          "STUDIO_SYNTHESIS_ENDPOINTS points at)"
            raise Invalid(f"No endpoint is named {data.endpoint!r}: {offered}.", fields={"endpoint": "unknown"})
        endpoint = configured[data.endpoint]
        named = {"endpoint_host": endpoint.host, "endpoint_model": endpoint.model}
    pool_id = store.synthesized_pool(session.get_bind(), name=data.pool, actor_id=actor_id)
    payload = SynthesizePayload(**{**data.model_dump(), "prompt_id": prompt.id}, pool_id=pool_id, actor_id=actor_id,
                                **named)
    return jobs.enqueue(session, payload, created_by_id=actor_id)
