"""A tiny, randomly initialised LLaVA-architecture model with its tokenizer and processor, built locally.

    .venv/bin/python -m worker tiny-model data/models/tiny-llava

Tests and the demo use it so that every model code path (processor, batched generation, saving, loading)
runs on a CPU in seconds with nothing downloaded. Its answers are gibberish: it has never been trained.
The recipe follows what was checked on this machine (../shared/NOTES.md): a tiny CLIP vision tower and a
tiny Llama, a byte-level BPE with `<image>` as a special token, and `num_additional_image_tokens=1`."""

from __future__ import annotations

from pathlib import Path

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


def build_tiny_model(out: Path, *, seed: int = 0) -> Path:
    """Writes the model, tokenizer and processor to `out` (a folder `from_pretrained` loads)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", padding_side="left",
                                        extra_special_tokens={"image_token": "<image>"})
    image_size, patch = 32, 8
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image_size, patch_size=patch, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
