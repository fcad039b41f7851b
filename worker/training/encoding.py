"""One record as the model trains on it: token ids, labels that supervise every gpt turn and nothing else, and
what the processor gives for its image.

The record is laid out by the model's own chat template, exchange by exchange, and tokenized in pieces:
    [the user's turn, ending with the generation prompt]              -> masked (-100)
    [the answer as the template writes it, with its end of turn]      -> supervised
so a single-turn record's prompt is exactly what previews and the evaluation feed the model at inference, and
BPE never merges across the boundary between what is masked and what is learned (../shared/NOTES.md).
What ends an answer is the template's: Qwen2-VL's `<|im_end|>`, Idefics3's `<end_of_utterance>` (what the
template writes after that marker, a newline, is masked with the next prompt). A template that ends an answer with
nothing of its own (LLaVA-1.5's) gets the end-of-sequence token, which is what stops generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IGNORE = -100  # the label the loss skips
IMAGE_TOKEN = "<image>"


class RecordTooLong(ValueError):
    """The record does not fit the model's maximum length without cutting into its prompt."""


PER_TOKEN = {"input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"}  # not the image's inputs
TOKEN_TYPES = ("mm_token_type_ids",)  # per token, which are the image's: Qwen2-VL's multimodal RoPE needs them


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    # The processor's tensors for the image (pixel_values, and image_grid_thw, image_sizes or
    # pixel_attention_mask as the family needs); empty for a text-only record.
    image_inputs: dict[str, Any]
    token_types: dict[str, list[int]] = field(default_factory=dict)  # TOKEN_TYPES the processor gave, per token

    def row(self) -> dict[str, Any]:
        """The record as the collator takes it (lists per token, tensors for the image)."""
        return {"input_ids": self.input_ids, "labels": self.labels, **self.token_types, **self.image_inputs}

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


def _user(text: str, with_image: bool) -> dict:
    content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": text}]
    return {"role": "user", "content": content}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@dataclass(frozen=True)
class TemplateStyle:
    """How a processor's chat template ends an answer, worked out once per processor (`style_of`), not per record."""

    prefix: str  # `answer_prefix`: before an answer the studio ends itself
    markers: tuple[str, ...]  # the special tokens an answer may end with
    own_end: bool  # the template writes an end-of-turn marker after an answer


def _written(processor, prompt: str, messages: list[dict], markers: tuple[str, ...]) -> str | None:
    """The answer as the template writes it after `prompt`, through its end-of-turn marker (None: no marker, or the
    template does not extend the prompt with it)."""
    whole = processor.apply_chat_template(messages)
    written = whole[len(prompt):].rstrip() if whole.startswith(prompt) else ""
    return written if written.endswith(markers) else None


def style_of(processor) -> TemplateStyle:
    tokenizer = processor.tokenizer
    markers = tuple({*tokenizer.all_special_tokens, *map(str, tokenizer.added_tokens_decoder.values())})
    question = [_user("Is it red?", with_image=False)]
    prompt = processor.apply_chat_template(question, add_generation_prompt=True)
    own_end = _written(processor, prompt, [*question, _assistant("Yes.")], markers) is not None
    return TemplateStyle(answer_prefix(tokenizer), markers, own_end)


def encode(processor, turns: list[dict], image, *, max_length: int, record_id: str = "",
           style: TemplateStyle | None = None) -> Encoded:
    """`turns` alternate human and gpt, starting with human (the export contract); `image` (PIL, or None) goes
    with the first turn's `<image>`; `style` is `style_of(processor)`, worked out once by the caller.
    Raises RecordTooLong when even the first prompt does not fit."""
    tokenizer = processor.tokenizer
    style = style or style_of(processor)
    input_ids: list[int] = []
    labels: list[int] = []
    image_inputs: dict[str, Any] = {}
    token_types: dict[str, list[int]] = {}
    history: list[dict] = []  # the exchanges so far, for a template with its own end of turn
    written_so_far = ""  # what the template has written of them
    for k in range(0, len(turns) - 1, 2):
        human, gpt = turns[k], turns[k + 1]
        user = _user(human["value"].replace(IMAGE_TOKEN, "").strip(), k == 0 and image is not None)
        answer = gpt["value"].strip()
        prompt = processor.apply_chat_template([*history, user], add_generation_prompt=True)
        if style.own_end:  # the whole conversation through the template; each piece is what it adds
            written = _written(processor, prompt, [*history, user, _assistant(answer)], style.markers)
            if written is None or not prompt.startswith(written_so_far):
                raise ValueError(f"record {record_id or '?'}: the chat template does not write exchange "
                                 f"{k // 2 + 1} after the ones before it")
            piece, answer_text = prompt[len(written_so_far):], written
            history += [user, _assistant(answer)]
            written_so_far = prompt + written
        else:  # each exchange on its own, and the end-of-sequence token ends each answer
            piece, answer_text = prompt, style.prefix + answer + tokenizer.eos_token
        if k == 0:  # through the processor: it adds BOS and expands the image's placeholder to its tokens
            encoded = processor(text=[piece], images=[image] if image is not None else None, return_tensors="pt")
            prompt_ids = encoded["input_ids"][0].tolist()
            image_inputs = {key: value for key, value in encoded.items() if key not in PER_TOKEN}
            token_types = {key: encoded[key][0].tolist() for key in TOKEN_TYPES if key in encoded}
        else:
            if tokenizer.bos_token and piece.startswith(tokenizer.bos_token):
                piece = piece[len(tokenizer.bos_token):]  # a template that opens with BOS: once per record
            prompt_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer_text, add_special_tokens=False)["input_ids"]
        input_ids += prompt_ids + answer_ids
        labels += [IGNORE] * len(prompt_ids) + answer_ids
        if k == 0 and len(prompt_ids) >= max_length:
            raise RecordTooLong(f"record {record_id or '?'}: its first prompt takes {len(prompt_ids)} tokens "
                                f"(image included), more than model_max_length {max_length}")
    # Later exchanges that do not fit are cut, as LLaVA cuts them; the first answer always keeps a token.
    token_types = {key: (types + [0] * len(input_ids))[:min(len(input_ids), max_length)]
                   for key, types in token_types.items()}  # only the first prompt has the image's tokens
    return Encoded(input_ids[:max_length], labels[:max_length], image_inputs, token_types)
