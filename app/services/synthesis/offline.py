"""Synthesis through OpenAI Batch files, for a cluster: the requests file written here from a seeded draw, run by
`vllm run-batch` (or the OpenAI Batch API) wherever the GPUs are, and its output imported back into a synthesized
pool, every line it cannot use reported by number. Importing the same output twice adds nothing twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.core.storage import Media
from app.models import SynthesisPrompt
from app.schemas.stage2 import Sampling
from app.services.pools import BUDGET
from app.services.synthesis import batches, store, subjects
from app.services.synthesis.requests import bodies, parse_key, request_key


def write_requests(session: Session, media: Media, out: Path, *, task_id: int, prompt: SynthesisPrompt, count: int,
                   seed: int, model: str, sampling: Sampling, vision: bool = True) -> int:
    """The requests for `count` of the task's instances drawn with `seed`; returns how many lines were written."""
    work = [(request_key(prompt_id=prompt.id or 0, instance_id=item.subject.instance_id, seed=seed), item)
            for item in subjects.draw(session, task_id=task_id, seed=seed, count=count)]
    return batches.write_requests(out, bodies(media, model, prompt.text, work, sampling, send_image=vision))


@dataclass
class BatchReport:
    stored: int = 0
    refused: int = 0
    skipped: int = 0  # already in the pool
    bad_lines: list[batches.BadOutputLine] = field(default_factory=list)
    refusals: list[dict[str, str]] = field(default_factory=list)


def import_output(engine: Engine, *, pool: str, requests_file: Path, output_file: Path, actor_id: int | None,
                  host: str | None = None) -> BatchReport:
    """The output's conversations into the synthesized pool `pool`, joined with their requests on custom_id."""
    requests = batches.read_requests(requests_file)
    pool_id = store.synthesized_pool(engine, name=pool, actor_id=actor_id)
    report = BatchReport()
    by_prompt: dict[tuple[int, bool, str], store.Collector] = {}
    with Session(engine) as session:
        present = store.keys_present(session, pool_id=pool_id, keys=list(requests))
        keys = {key: parse_key(key) for key in requests}
        instances = subjects.named(session, instance_ids={parsed[1] for parsed in keys.values() if parsed})
        prompt_rows = {prompt.id: prompt for prompt in session.exec(select(SynthesisPrompt).where(
            col(SynthesisPrompt.id).in_({parsed[0] for parsed in keys.values() if parsed})))}
    for item in batches.read_output(output_file, requests):
        if isinstance(item, batches.BadOutputLine):
            report.bad_lines.append(item)
            continue
        number, request, reply = item
        parsed = keys[request.custom_id]
        if parsed is None or parsed[1] not in instances or parsed[0] not in prompt_rows:
            report.bad_lines.append(batches.BadOutputLine(
                number, f"{request.custom_id}: names no instance or prompt of this studio (made elsewhere?)"))
            continue
        if request.custom_id in present:
            report.skipped += 1
            continue
        prompt = prompt_rows[parsed[0]]
        model = str(request.body.get("model", ""))
        collector = by_prompt.get((prompt.id or 0, request.saw_image, model))
        if collector is None:
            sampling = {name: request.body[name] for name in Sampling.model_fields if name in request.body}
            collector = store.Collector(engine, pool_id, pool, prompt, {}, {
                "backend": "batch", "name": model, "host": host, "model": model}, sampling, request.saw_image, BUDGET)
            by_prompt[(prompt.id or 0, request.saw_image, model)] = collector
        collector.subjects[request.custom_id] = instances[parsed[1]]
        collector.take(reply)
    for collector in by_prompt.values():
        collector.flush()
        report.stored += collector.stored
        report.refused += collector.refused
        report.refusals += collector.refusals
    return report
