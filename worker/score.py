"""The `score` job: what a registered model makes of each active instance of a task, for ranking by doubt.

Each instance is rendered as the export renders it and encoded as training encodes it (the prompt through the
model's chat template, masked; the answer and the end-of-sequence token, scored), then teacher-forced once:
- `loss`: the mean token loss of the target;
- `greedy_matched`: whether every target token is the model's argmax given the target so far, which holds
  exactly when greedy decoding would answer the target;
- for option tasks, every option's rendered answer is scored the same way: `option_probabilities` are the
  softmax of their total log-likelihoods, and `margin` is the target's probability minus the best other's.

Its payload is `ScorePayload` (app/schemas/jobs.py). Scores are written per chunk of instances
(`scores.store`), replacing any earlier scores by the same model and version: a retried or repeated job rewrites."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.core.storage import open_media
from app.models import (
    Instance,
)
from app.prompts.rendering import InstructionSpec, TemplateProblem, render
from app.prompts.specs import spec_of_version, template_fields
from app.schemas.jobs import ScorePayload
from app.services import instructions as instruction_service
from app.services import registered_models as model_service
from app.services import scores
from worker.context import JobContext
from worker.evaluate import inference_dtype
from worker.loading import load
from worker.preview import open_rgb
from worker.training.encoding import TemplateStyle, encode, style_of

CHUNK = 256  # instances read, scored and written together


@dataclass(frozen=True)
class Scored:
    loss: float
    greedy_matched: bool
    option_probabilities: list[float] | None
    margin: float | None


@dataclass(frozen=True)
class Question:
    """One instance to score: its rendered prompt and target, its image, and each option's rendered answer."""

    prompt: str
    target: str
    image: Any | None  # PIL
    answers: list[str] | None  # option tasks: the rendered answer of each option, in order


def score(loaded, questions: list[Question], *, max_length: int = 2048) -> list[Scored]:
    """Scores questions of one modality (all with an image, or none) in one forward pass."""
    style = style_of(loaded.processor)
    # Every answer scored; per question, its answers and where the target is among them.
    rows: list[dict[str, Any]] = []
    spans: list[tuple[int, list[str], int]] = []
    for question in questions:
        answers = question.answers or [question.target]
        if question.target not in answers:  # a target that is none of the options is scored on its own
            answers = [question.target, *answers]
        spans.append((len(rows), answers, answers.index(question.target)))
        for answer in answers:
            turns = [{"from": "human", "value": question.prompt}, {"from": "gpt", "value": answer}]
            rows.append(encoded_row(loaded, turns, question.image, max_length=max_length, style=style))
    forced = teacher_forced(loaded, rows)
    totals = (forced.log_probabilities * forced.scored).sum(dim=1).tolist()
    counts = forced.scored.sum(dim=1).tolist()
    greedy = forced.greedy
    results = []
    for question, (first, answers, target) in zip(questions, spans, strict=True):
        row = first + target
        probabilities = margin = None
        if question.answers:
            options = range(first + len(answers) - len(question.answers), first + len(answers))
            top = max(totals[k] for k in options)
            weights = [math.exp(totals[k] - top) for k in options]
            probabilities = [weight / sum(weights) for weight in weights]
            chance = dict(zip(question.answers, probabilities, strict=True))
            others = [p for answer, p in chance.items() if answer != question.target]
            margin = chance.get(question.target, 0.0) - (max(others) if others else 0.0)
        results.append(Scored(-totals[row] / max(counts[row], 1), greedy[row], probabilities, margin))
    return results


def encoded_row(loaded, turns: list[dict], image, *, max_length: int, style: TemplateStyle) -> dict[str, Any]:
    """A conversation encoded as training encodes it (human turns masked, gpt turns scored), as a collator row."""
    encoded = encode(loaded.processor, turns, image, max_length=max_length, style=style)
    return encoded.row()


@dataclass(frozen=True)
class TeacherForced:
    """Per row and position t (the token at t + 1 given those before it): its log-likelihood, whether it is
    scored (labelled), and whether it is the model's argmax."""

    log_probabilities: Any  # tensor [rows, length - 1]
    scored: Any
    argmax_hits: Any

    @property
    def greedy(self) -> list[bool]:
        """Per row: every scored token is the argmax (greedy decoding would give exactly the labels)."""
        return (self.argmax_hits | ~self.scored).all(dim=1).tolist()


def teacher_forced(loaded, rows: list[dict]) -> TeacherForced:
    """One forward pass over encoded rows of one modality."""
    import torch

    from worker.training.batching import PaddingCollator

    tokenizer = loaded.processor.tokenizer
    batch = PaddingCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)(rows)
    labels = batch.pop("labels")
    with torch.inference_mode():
        logits = loaded.model(**{key: value.to(loaded.device) for key, value in batch.items()}).logits.float()
    logits, labels = logits[:, :-1].cpu(), labels[:, 1:]
    log_probabilities = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return TeacherForced(log_probabilities, labels != -100, logits.argmax(dim=-1) == labels)


def load_for_scoring(registered):
    """The registered model as scoring reads it: on a GPU a model registered in float32 scores in bf16 (or fp16),
    as the fine-tune's evaluation does."""
    dtype = registered.dtype if registered.dtype != "float32" else inference_dtype(registered.device)
    return load(registered.path, dtype, registered.device)


def _question(spec: InstructionSpec, instance: Instance, image) -> Question | None:
    fields = template_fields(instance)
    try:
        rendered = render(spec, fields, has_image=image is not None)
        answers = ([render(spec, {**fields, "raw_output": option}, has_image=image is not None).target
                    for option in instance.options] if instance.options else None)
    except TemplateProblem:
        return None  # the instance cannot be rendered: nothing to score (the editor's lint says why)
    return Question(rendered.prompt, rendered.target, image, answers)


def run_score(settings: Settings, context: JobContext, payload: ScorePayload) -> dict[str, Any]:
    media, started = open_media(settings.media_location), time.perf_counter()
    task_id, batch_size = payload.task_id, payload.batch_size
    with Session(context.engine) as session:
        registered = model_service.get(session, model_id=payload.model_id)
        version = instruction_service.get_version(session, version_id=payload.instruction_version_id)
        spec = spec_of_version(version)
        total = scores.active_instance_count(session, task_id=task_id)
    context.progress(0.01, f"loading {registered.name}", force=True)
    loaded = load_for_scoring(registered)
    scored = skipped = 0
    last_id = 0
    while True:
        with Session(context.engine) as session:
            chunk = scores.active_instances_after(session, task_id=task_id, after_id=last_id, limit=CHUNK)
        if not chunk:
            break
        last_id = int(chunk[-1][0].id)
        work = []
        for instance, image in chunk:
            question = _question(spec, instance, open_rgb(media.open(image.sha256)) if image else None)
            if question is None:
                skipped += 1
            else:
                work.append((instance.id, question))
        rows = []
        for with_image in (True, False):  # one modality per forward pass, as training batches them
            group = sorted(((instance_id, question) for instance_id, question in work
                            if (question.image is not None) == with_image),
                           key=lambda pair: len(pair[1].prompt) + len(pair[1].target))  # less padding a batch
            for start in range(0, len(group), batch_size):
                part = group[start:start + batch_size]
                for (instance_id, _), result in zip(part, score(loaded, [q for _, q in part]), strict=True):
                    rows.append({"instance_id": instance_id, "task_id": task_id, "job_id": context.job_id,
                                 "loss": result.loss, "greedy_matched": result.greedy_matched,
                                 "option_probabilities": result.option_probabilities, "margin": result.margin})
        scores.store(context.engine, instance_ids=[instance.id for instance, _ in chunk], model_id=registered.id,
                     instruction_version_id=version.id, rows=rows)
        scored += len(rows)
        context.progress(min(0.99, (scored + skipped) / max(total, 1)), f"{scored + skipped:,} of {total:,} instances")
    seconds = time.perf_counter() - started
    return {"scored": scored, "skipped": skipped, "seconds": round(seconds, 2),
            "scored_per_s": round(scored / seconds, 2) if seconds else None, "model": registered.name,
            "instruction_version_id": version.id}
