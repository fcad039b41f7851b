"""Tiny, randomly initialised models of each family the worker knows, with their tokenizers and processors, built
locally.

    .venv/bin/python -m worker tiny-model data/models/tiny-llava
    .venv/bin/python -m worker tiny-model data/models/tiny-idefics3 --family idefics3

Tests and the demo use them so that every model code path (processor, chat template, batched generation, saving,
loading, training) runs on a CPU in seconds with nothing downloaded. Their answers are gibberish: they have never
been trained. Each is its family's architecture at a few hundred thousand weights, with its family's special
tokens and a chat template laid out as the released models' are. The LLaVA recipe follows what was checked on this
machine (../shared/NOTES.md): a tiny CLIP vision tower and a tiny Llama, a byte-level BPE with the image token
as a special token, and `num_additional_image_tokens=1`.

Qwen2-VL's and LLaVA-OneVision's processors need torchvision in transformers 5 (for their video processors):
without it, their folders hold the tokenizer, chat template and image processor, and `AutoProcessor` reads them
where torchvision is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = [
    "What is shown in the image? A red circle on a white background.",
    "How many shapes are there? There are three shapes.",
    "Which colour covers most of the picture? Blue covers most of it.",
    "Answer with one of the options. (a) cat (b) dog (c) bird. The answer is (b) dog.",
    "Describe the picture in one sentence. Two green squares next to a yellow triangle.",
]
CHAT_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: "
                 "{% endif %}{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
                 "{{ '\\n' }}{% else %}{{ part['text'] }}{% endif %}{% endfor %}{{ ' ' }}{% endfor %}"
                 "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
# Qwen2-VL's layout (ChatML, the image between vision markers), without its default system prompt.
QWEN_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}{{ '\\n' }}{% for part in "
                 "message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
                 "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<|im_end|>{{ '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}")
# Idefics3's and SmolVLM's layout: "User:<image>question<end_of_utterance>\nAssistant: answer<end_of_utterance>\n".
IDEFICS_TEMPLATE = ("<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
                    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
                    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
                    "{% else %}<image>{% endif %}{% endfor %}<end_of_utterance>{{ '\\n' }}{% endfor %}"
                    "{% if add_generation_prompt %}Assistant:{% endif %}")
IMAGE_SIZE, PATCH = 32, 8


def _tokenizer(specials: list[str], **tokens: Any):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", *specials],
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", padding_side="left", **tokens)


def _llama(tokenizer) -> dict:
    return {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 1024, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def _clip() -> dict:
    return {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": PATCH, "projection_dim": 32}


def _llava_tokenizer():
    return _tokenizer(["<s>", "</s>", "<pad>", "<image>"], bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                      extra_special_tokens={"image_token": "<image>"})


def _llava():
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _llava_tokenizer()
    config = LlavaConfig(vision_config=_clip(), text_config=_llama(tokenizer),
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    return LlavaForConditionalGeneration(config), processor.tokenizer, (processor,)


def _llava_next():
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = _llava_tokenizer()
    pinpoints = [[IMAGE_SIZE, 2 * IMAGE_SIZE], [2 * IMAGE_SIZE, IMAGE_SIZE], [2 * IMAGE_SIZE, 2 * IMAGE_SIZE]]
    config = LlavaNextConfig(vision_config=_clip(), text_config=_llama(tokenizer),
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                             vision_feature_select_strategy="default", vision_feature_layer=-1,
                             image_grid_pinpoints=pinpoints)
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": IMAGE_SIZE}, image_grid_pinpoints=pinpoints,
                                              crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=CHAT_TEMPLATE)
    return LlavaNextForConditionalGeneration(config), processor.tokenizer, (processor,)


def _idefics3():
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tiles = [f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)]
    tokenizer = _tokenizer(["<|im_start|>", "<|endoftext|>", "<end_of_utterance>", "<fake_token_around_image>",
                            "<image>", "<global-img>", *tiles],
                           bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>")
    scale = 2  # pixel shuffle: (32 / 8)^2 patches become 4 tokens a tile
    config = Idefics3Config(vision_config={k: v for k, v in _clip().items() if k not in ("model_type",
                                                                                          "projection_dim")},
                            text_config=_llama(tokenizer), image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                            scale_factor=scale)
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 2 * IMAGE_SIZE},
                                             max_image_size={"longest_edge": IMAGE_SIZE}, do_image_splitting=True)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                  image_seq_len=(IMAGE_SIZE // PATCH) ** 2 // scale ** 2,
                                  chat_template=IDEFICS_TEMPLATE)
    return Idefics3ForConditionalGeneration(config), processor.tokenizer, (processor,)


def _qwen2_vl():
    """The tiny Qwen2-VL's model, tokenizer (with its chat template) and image processor: its processor proper
    needs torchvision (see the module's docstring)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                            "<|image_pad|>", "<|video_pad|>"],
                           eos_token="<|im_end|>", pad_token="<|endoftext|>",
                           extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                                 "vision_bos_token": "<|vision_start|>",
                                                 "vision_eos_token": "<|vision_end|>"})
    tokenizer.chat_template = QWEN_TEMPLATE
    token = tokenizer.convert_tokens_to_ids
    text = {**_llama(tokenizer), "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}
    del text["model_type"]
    config = Qwen2VLConfig(text_config=text, vision_config={
        "depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
        "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3},
        image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"))
    # At most 16 tokens an image: 4 x 4 merged patches of 28 px.
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 16)
    return Qwen2VLForConditionalGeneration(config), tokenizer, (tokenizer, image_processor)


def _llava_onevision():
    """The tiny LLaVA-OneVision's model, tokenizer (with its chat template, ChatML as the released ones) and image
    processor (anyres on a grid of 32-px crops): its processor proper needs torchvision."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
    )

    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"],
                           eos_token="<|im_end|>", pad_token="<|endoftext|>",
                           extra_special_tokens={"image_token": "<image>", "video_token": "<video>"})
    tokenizer.chat_template = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")
    pinpoints = [[IMAGE_SIZE, IMAGE_SIZE], [IMAGE_SIZE, 2 * IMAGE_SIZE], [2 * IMAGE_SIZE, IMAGE_SIZE],
                 [2 * IMAGE_SIZE, 2 * IMAGE_SIZE]]
    vision = {k: v for k, v in _clip().items() if k != "projection_dim"} | {"model_type": "siglip_vision_model"}
    text = {**_llama(tokenizer), "model_type": "qwen2"}
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text,
                                  image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                                  video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  image_grid_pinpoints=pinpoints)
    image_processor = LlavaOnevisionImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                                   image_grid_pinpoints=pinpoints)
    return LlavaOnevisionForConditionalGeneration(config), tokenizer, (tokenizer, image_processor)


# Each family's builder: the model, its tokenizer and what is saved beside it (the processor, or where that needs
# torchvision, the tokenizer and the image processor, which AutoProcessor reads back where torchvision works).
BUILDERS = {"llava": _llava, "llava_next": _llava_next, "idefics3": _idefics3, "qwen2_vl": _qwen2_vl,
            "llava_onevision": _llava_onevision}
FAMILIES = tuple(BUILDERS)
WITHOUT_PROCESSOR = ("qwen2_vl", "llava_onevision")  # saved without a processor: it needs torchvision


def build_tiny_model(out: Path, *, family: str = "llava", seed: int = 0) -> Path:
    """Writes the model, tokenizer and processor to `out` (a folder `from_pretrained` loads)."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"the tiny models are of the families {', '.join(FAMILIES)}, not {family!r}")
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer, parts = BUILDERS[family]()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    for part in parts:
        part.save_pretrained(out)
    return out
