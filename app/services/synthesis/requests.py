"""What a generator is asked: the prompt's text as its instructions, then the subject — the image itself for a
vision model (as a data URL, which vLLM and OpenAI both take), and the dataset's own words about it (the task, the
instance's input and answer), which are all a text-only generator sees, as LLaVA-Instruct's GPT-4 saw captions.

A request's key says what it is about and how it was drawn (`p<prompt>-i<instance>-s<seed>`): the same key is
the same request, so a rerun skips what its pool already holds and an OpenAI Batch output joins back on it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.schemas.stage2 import Sampling

MAX_CONTEXT_CHARS = 4_000  # of the dataset's words: a caption set or a question and its answer, not a document
KEY = re.compile(r"^p(?P<prompt>\d+)-i(?P<instance>\d+)-s(?P<seed>\d+)$")
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}


@dataclass(frozen=True)
class Subject:
    """One instance to write a conversation about."""

    instance_id: int
    task_name: str
    input_text: str | None
    answer: str
    image_sha256: str | None
    image_format: str | None

    def context(self) -> str:
        """The dataset's words about the image, bounded."""
        lines = [f"Dataset task: {self.task_name}"]
        if self.input_text:
            lines.append(f"Question or input: {self.input_text}")
        lines.append(f"Its answer in the dataset: {self.answer}")
        text = "\n".join(lines)
        return text if len(text) <= MAX_CONTEXT_CHARS else text[:MAX_CONTEXT_CHARS] + "…"


def request_key(*, prompt_id: int, instance_id: int, seed: int) -> str:
    return f"p{prompt_id}-i{instance_id}-s{seed}"


def parse_key(key: str) -> tuple[int, int, int] | None:
    """(prompt id, instance id, seed) of a request key; None for anything else."""
    match = KEY.match(key)
    return None if match is None else (int(match["prompt"]), int(match["instance"]), int(match["seed"]))


def data_url(image: bytes, image_format: str | None) -> str:
    return f"data:{MIME.get((image_format or '').upper(), 'image/jpeg')};base64,{base64.b64encode(image).decode()}"


def messages(prompt_text: str, subject: Subject, *, image: bytes | None) -> list[dict[str, Any]]:
    """The chat: the prompt as the system's instructions; the image (when given) and the context as the user's."""
    if image is None:
        user: Any = ("There is no image to look at; this is what the dataset says about it. Write as if you saw "
                     f"it, and only what this supports.\n\n{subject.context()}")
    else:
        user = [{"type": "image_url", "image_url": {"url": data_url(image, subject.image_format)}},
                {"type": "text", "text": f"What the dataset says about this image:\n{subject.context()}"}]
    return [{"role": "system", "content": prompt_text}, {"role": "user", "content": user}]


def chat_body(model: str, chat: list[dict[str, Any]], sampling: Sampling) -> dict[str, Any]:
    """A `/v1/chat/completions` request body."""
    return {"model": model, "messages": chat, **sampling.model_dump()}


def bodies(media, model: str, prompt_text: str, work, sampling: Sampling, *, send_image: bool
           ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each (request key, chat-completions body) of `work` ((key, Drawn) pairs), its image read from `media` only
    when that request is about to be made, and only when the generator is sent images."""
    for key, item in work:
        sha256 = item.subject.image_sha256
        yield key, chat_body(model, messages(prompt_text, item.subject,
                                             image=media.read(sha256) if send_image and sha256 else None), sampling)


def context_record(subject: Subject, *, saw_image: bool) -> dict[str, Any]:
    """What the generator was given, as the conversation's origin keeps it (the image by its content address)."""
    return {"instance_id": subject.instance_id, "image_sha256": subject.image_sha256 if saw_image else None,
            "text": subject.context()}
