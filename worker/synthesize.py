"""The `synthesize` job: new conversations about a task's seeded instances, written with an approved prompt by a
registered model (batched, as previews are) or by an endpoint the admin configured (concurrent, retried, capped),
checked and stored into a synthesized pool as they come, unreviewed.

A rerun (the job retried, or the same request queued again) skips the requests whose conversations its pool holds,
so a job that an endpoint stopped continues where it was. The job's result counts requests, tokens, what was stored
and what was refused, with the first refusals' reasons."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.core.storage import Media, open_media
from app.schemas.jobs import SynthesizePayload, SynthesizeResult
from app.schemas.stage2 import Sampling
from app.services import pools
from app.services import registered_models as model_service
from app.services.synthesis import prompts, store, subjects
from app.services.synthesis.endpoints import Caps, EndpointConfigError, Reply, Tally, load_endpoints
from app.services.synthesis.requests import bodies, request_key
from app.services.synthesis.subjects import Drawn
from worker.context import JobContext
from worker.endpoint_client import Sender

Work = list[tuple[str, Drawn]]


def run_synthesize(settings: Settings, context: JobContext, payload: SynthesizePayload) -> dict[str, Any]:
    started = time.perf_counter()
    media = open_media(settings.media_location)
    with Session(context.engine) as session:
        pool = pools.get_pool(session, pool_id=payload.pool_id)
        prompt = prompts.usable(session, prompt_id=payload.prompt_id)
        drawn = subjects.draw(session, task_id=payload.task_id, seed=payload.seed, count=payload.count)
        keyed = {request_key(prompt_id=prompt.id or 0, instance_id=item.subject.instance_id, seed=payload.seed): item
                 for item in drawn}
        present = store.keys_present(session, pool_id=pool.id or 0, keys=list(keyed))
        registered = model_service.get(session, model_id=payload.model_id) if payload.backend == "model" else None
    work = [(key, item) for key, item in keyed.items() if key not in present]
    if payload.backend == "endpoint":
        endpoint = load_endpoints(settings.synthesis_endpoints).get(payload.endpoint or "")
        if endpoint is None:
            raise EndpointConfigError(f"no endpoint named {payload.endpoint!r} is configured "
                                      "(STUDIO_SYNTHESIS_ENDPOINTS)")
        generator = {"backend": "endpoint", "name": endpoint.name, "host": endpoint.host, "model": endpoint.model}
        saw_image = endpoint.vision
    else:
        assert registered is not None
        generator = {"backend": "model", "name": registered.name, "model": registered.name}
        saw_image = True
    collector = store.Collector(context.engine, pool.id or 0, pool.name, prompt, dict(work), generator,
                                payload.sampling.model_dump(), saw_image, pools.BUDGET, job_id=context.job_id)
    tally = Tally()
    where = f"{generator.get('host', generator['name'])} · {generator['model']}"

    def on_reply(reply: Reply) -> None:
        collector.take(reply)
        done = collector.taken
        context.progress(done / max(len(work), 1), f"{where}: {tally.requests:,} requests, {tally.tokens:,} tokens; "
                                                   f"{done:,} of {len(work):,} written, {collector.refused:,} refused")

    context.progress(0.0, f"{where}: {len(work):,} to write ({len(present):,} already in the pool)", force=True)
    caps = Caps(payload.max_requests, payload.max_tokens_total)
    try:
        if payload.backend == "endpoint":
            Sender(endpoint, on_reply, caps, payload.concurrency, tally).run(
                bodies(media, endpoint.model, prompt.text, work, payload.sampling, send_image=saw_image))
        else:
            for reply in local_replies(registered, media, prompt.text, work, payload.sampling, payload.batch_size,
                                       seed=payload.seed, tally=tally, caps=caps):
                on_reply(reply)
    finally:
        collector.flush()  # what was written is kept, whatever stopped the job
    return SynthesizeResult(
        requested=len(keyed), skipped=len(present), sent=tally.requests, stored=collector.stored,
        refused=collector.refused, refusals=collector.refusals, prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens, capped=tally.capped, generator=generator,
        seconds=round(time.perf_counter() - started, 3)).model_dump()


def local_replies(registered, media: Media, prompt_text: str, work: Work, sampling: Sampling, batch_size: int, *,
                  seed: int, tally: Tally, caps: Caps) -> Iterator[Reply]:
    """A registered model's replies, `batch_size` at a time (with and without an image apart, as previews batch)."""
    from worker.loading import load  # torch and transformers: only when a model writes

    loaded = load(registered.path, registered.dtype, registered.device)
    for has_image in (True, False):
        group = [(key, item) for key, item in work if (item.subject.image_sha256 is not None) == has_image]
        for start in range(0, len(group), batch_size):
            tally.capped = tally.reached(caps)
            if tally.capped:
                return
            batch = group[start:start + batch_size]
            images = [media.read(item.subject.image_sha256) for _, item in batch] if has_image else None
            yield from write_batch(loaded, registered.name, prompt_text, batch, images, sampling, seed=seed + start,
                                   tally=tally)


def write_batch(loaded, model_name: str, prompt_text: str, batch: Work, images: list[bytes] | None,
                sampling: Sampling, *, seed: int, tally: Tally) -> list[Reply]:
    """One batch of replies from a loaded model: the prompt and the subject's words as the user's turn."""
    import io

    import torch

    from worker.preview import open_rgb, prepare

    texts = [f"{prompt_text}\n\n{item.subject.context()}" for _, item in batch]
    pictures = [open_rgb(io.BytesIO(data)) for data in images] if images is not None else None
    inputs = prepare(loaded, texts, pictures)
    torch.manual_seed(seed)  # sampled replies are the same on a rerun of the same batch
    started = time.perf_counter()
    with torch.inference_mode():
        produced = loaded.model.generate(**inputs, max_new_tokens=sampling.max_tokens,
                                         do_sample=sampling.temperature > 0,
                                         **({"temperature": sampling.temperature, "top_p": sampling.top_p}
                                            if sampling.temperature > 0 else {}))
    seconds = (time.perf_counter() - started) / len(batch)
    prompt_length = inputs["input_ids"].shape[1]
    new_tokens = produced[:, prompt_length:]
    pad = loaded.processor.tokenizer.pad_token_id
    replies = loaded.processor.batch_decode(new_tokens, skip_special_tokens=True)
    out = []
    for (key, _), text, tokens, mask in zip(batch, replies, new_tokens, inputs["attention_mask"], strict=True):
        completion = int((tokens != pad).sum()) if pad is not None else int(tokens.numel())
        out.append(Reply(key, text.strip(), model_name, int(mask.sum()), completion, seconds))
        tally.requests += 1
        tally.prompt_tokens += int(mask.sum())
        tally.completion_tokens += completion
    return out
