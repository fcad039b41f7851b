"""The `preview` job: a registered model answers a task's seeded instances, rendered with an instruction
version exactly as the export renders them; each answer is stored with its share of the batch's time.

Instances with and without an image are batched apart (a batch's images must match its `<image>` tokens).
A retried job rewrites its rows instead of adding more. The job's result says where its time went
(`seconds`: prepare, generate, store), so a slow preview can be told apart from a slow model."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlmodel import Session

from app.core.config import Settings
from app.core.storage import open_media
from app.prompts.rendering import IMAGE_TOKEN
from app.prompts.specs import render_instance, spec_of_version
from app.schemas.jobs import PreviewPayload
from app.services import instructions as instruction_service
from app.services import previews
from app.services import registered_models as model_service
from app.services.sampling import sample_instances
from worker.context import JobContext
from worker.loading import is_loaded, load


def open_rgb(source) -> PILImage.Image:
    """The image in `source` (a path, or a file this call closes) as RGB."""
    if not isinstance(source, (str, Path)):
        with source, PILImage.open(source) as image:  # closed now, not whenever the collector gets to it
            return image.convert("RGB")
    with PILImage.open(source) as image:
        return image.convert("RGB")


def _messages(prompt: str, has_image: bool) -> list[dict]:
    text = prompt.replace(IMAGE_TOKEN, "").strip()
    content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def prepare(loaded, prompts: list[str], images: list | None):
    """The model's inputs for one batch: chat template, tokens and pixel values, on the model's device."""
    texts = [loaded.processor.apply_chat_template(_messages(prompt, images is not None), add_generation_prompt=True)
             for prompt in prompts]
    return loaded.processor(text=texts, images=images, return_tensors="pt", padding=True).to(loaded.device)


def answer(loaded, inputs, *, max_new_tokens: int) -> list[str]:
    """Greedy answers to prepared inputs, without the prompt."""
    import torch

    with torch.inference_mode():
        produced = loaded.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    answers = loaded.processor.batch_decode(produced[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return [text.strip() for text in answers]


def generate(loaded, prompts: list[str], images: list | None, *, max_new_tokens: int) -> tuple[list[str], float]:
    """Greedy answers for one batch, and the seconds the model took (preparing the inputs not counted)."""
    inputs = prepare(loaded, prompts, images)
    started = time.perf_counter()
    return answer(loaded, inputs, max_new_tokens=max_new_tokens), time.perf_counter() - started


class Stopwatch(defaultdict[str, float]):
    """Seconds per phase, summed over the job."""

    def __init__(self) -> None:
        super().__init__(float)

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] += time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 4) for name, seconds in self.items()}


def run_preview(settings: Settings, context: JobContext, payload: PreviewPayload) -> dict[str, Any]:
    media, clock = open_media(settings.media_location), Stopwatch()
    with clock.phase("sample"), Session(context.engine) as session:
        registered = model_service.get(session, model_id=payload.model_id)
        version = instruction_service.get_version(session, version_id=payload.instruction_version_id)
        spec = spec_of_version(version)
        picked = sample_instances(session, task_id=payload.task_id, seed=payload.seed, size=payload.size)
        work = []
        for instance, image in picked:
            rendered, _ = render_instance(spec, instance, has_image=image is not None)
            if rendered is not None:
                work.append((instance.id, rendered.prompt, image.sha256 if image else None))
    if not is_loaded(registered.path, registered.dtype, registered.device):
        context.progress(0.02, f"loading {registered.name}", force=True)
    with clock.phase("load"):
        loaded = load(registered.path, registered.dtype, registered.device)
    rows, done, batch_size = [], 0, payload.batch_size
    for has_image in (True, False):
        group = [item for item in work if (item[2] is not None) == has_image]
        for start in range(0, len(group), batch_size):
            batch = group[start:start + batch_size]
            with clock.phase("prepare"):
                images = [open_rgb(media.open(sha)) for _, _, sha in batch] if has_image else None
                inputs = prepare(loaded, [prompt for _, prompt, _ in batch], images)
            started = time.perf_counter()
            answers = answer(loaded, inputs, max_new_tokens=payload.max_new_tokens)
            seconds = time.perf_counter() - started
            clock["generate"] += seconds
            rows += [{"instance_id": instance_id, "instruction_version_id": version.id,
                      "model_name": registered.name, "output": text, "latency_ms": 1000 * seconds / len(batch)}
                     for (instance_id, _, _), text in zip(batch, answers, strict=True)]
            done += len(batch)
            context.progress(done / max(len(work), 1), f"{done} of {len(work)} instances")
    with clock.phase("store"):  # a retry replaces an earlier attempt's rows
        previews.store_outputs(context.engine, job_id=context.job_id, rows=rows)
    return {"outputs": len(rows), "model": registered.name, "device": loaded.device, "seconds": clock.rounded()}
