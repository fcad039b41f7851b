"""One LLaVA record as the model trains on it: token ids, labels that supervise every gpt turn and nothing
else, and the image's pixels.

Each exchange is tokenized in two pieces, as LLaVA's conversation format lays them out:
    [user turn through the chat template, ending with the generation prompt]  -> masked (-100)
    [the answer and the end-of-sequence token]                               -> supervised
so a single-turn record's prompt is exactly what previews and the evaluation feed the model at inference, and
BPE never merges across the boundary between what is masked and what is learned (../shared/NOTES.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE = -100  # the label the loss skips
IMAGE_TOKEN = "<image>"


class RecordTooLong(ValueError):
    """The record does not fit the model's maximum length without cutting into its prompt."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    pixel_values: Any | None  # a tensor of one image, or None for a text-only record

    @property
    def supervised(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def pad_to_square(image, background: tuple[int, int, int]):
    """LLaVA-1.5's `pad` aspect handling (expand2square): the image centred on a square of the processor's
    mean colour, so the processor's resize and centre crop keep the whole picture."""
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), background)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def mean_colour(processor) -> tuple[int, int, int]:
    mean = getattr(getattr(processor, "image_processor", None), "image_mean", None) or (0.5, 0.5, 0.5)
    red, green, blue = (int(round(255 * value)) for value in mean[:3])
    return red, green, blue


def answer_prefix(tokenizer) -> str:
    """" " before an answer for byte-level BPE tokenizers (the space belongs to the first word, as it does after
    "ASSISTANT:" at inference); nothing for SentencePiece ones, which add their own word boundary."""
    first = tokenizer.tokenize("yes", add_special_tokens=False)
    return "" if first and first[0].startswith("\u2581") else " "


def _user_message(text: str, with_image: bool) -> list[dict]:
    content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def encode(processor, turns: list[dict], image, *, max_length: int, record_id: str = "",
           prefix: str | None = None) -> Encoded:
    """`turns` alternate human and gpt, starting with human (the export contract); `image` (PIL, or None) goes
    with the first turn's `<image>`; `prefix` is `answer_prefix(tokenizer)`, worked out once by the caller.
    Raises RecordTooLong when even the first prompt does not fit."""
    tokenizer = processor.tokenizer
    prefix = answer_prefix(tokenizer) if prefix is None else prefix
    input_ids: list[int] = []
    labels: list[int] = []
    pixel_values = None
    for k in range(0, len(turns) - 1, 2):
        human, gpt = turns[k], turns[k + 1]
        text = human["value"].replace(IMAGE_TOKEN, "").strip()
        prompt = processor.apply_chat_template(_user_message(text, k == 0 and image is not None),
                                               add_generation_prompt=True)
        if k == 0:  # through the processor: it adds BOS and expands <image> to the image's tokens
            encoded = processor(text=[prompt], images=[image] if image is not None else None, return_tensors="pt")
            prompt_ids = encoded["input_ids"][0].tolist()
            pixel_values = encoded.get("pixel_values")
        else:
            if tokenizer.bos_token and prompt.startswith(tokenizer.bos_token):
                prompt = prompt[len(tokenizer.bos_token):]  # a template that opens with BOS: once per record
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(prefix + gpt["value"].strip() + tokenizer.eos_token,
                               add_special_tokens=False)["input_ids"]
        input_ids += prompt_ids + answer_ids
        labels += [IGNORE] * len(prompt_ids) + answer_ids
        if k == 0 and len(prompt_ids) >= max_length:
            raise RecordTooLong(f"record {record_id or '?'}: its first prompt takes {len(prompt_ids)} tokens "
                                f"(image included), more than model_max_length {max_length}")
    # Later exchanges that do not fit are cut, as LLaVA cuts them; the first answer always keeps a token.
    return Encoded(input_ids[:max_length], labels[:max_length], pixel_values)
