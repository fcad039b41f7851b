"""The hf layout trains as it is with TRL: its own vision-language collator turns the rows into the tiny LLaVA's
inputs (an image's tokens where the row's image part is), and SFTTrainer takes a step on them, on the CPU."""

from __future__ import annotations

import math

import pytest

from tests.test_layouts import mixed_version

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")
pytest.importorskip("trl", reason="TRL is a test dependency (requirements-dev.txt)")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the files, not the database, are on trial
def test_trl_collates_and_trains_on_the_hf_layout(app, db, settings, tmp_path, load_offline, tiny_model):
    from transformers import AutoProcessor, LlavaForConditionalGeneration
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    _, out = mixed_version(app, db, settings, layouts=["hf"], text_only=4, per_task_cap=12, validation_ratio=0.0,
                           stage2_size=4)
    dataset = load_offline(str(out / "hf"))
    processor = AutoProcessor.from_pretrained(tiny_model)
    collator = DataCollatorForVisionLanguageModeling(processor)
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")

    pictured = [row for row in dataset["stage1"] if row["images"]][:2]
    batch = collator([dict(row) for row in pictured])
    assert batch["pixel_values"].shape[0] == 2  # one image a row, from the bytes in the Parquet files
    per_image = (batch["input_ids"] == image_token).sum(dim=1)
    assert per_image.tolist() == [per_image[0].item()] * 2 and per_image[0] > 1  # an image's tokens, expanded
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    words = [row for row in dataset["stage1"] if not row["images"]][:2]
    text_batch = collator([dict(row) for row in words])  # text-only rows: no pixels, no image token
    assert "pixel_values" not in text_batch and not (text_batch["input_ids"] == image_token).any()
    conversation = collator([dict(dataset["stage2"][0])])  # stage 2's multi-turn rows collate too
    assert conversation["input_ids"].shape[0] == 1

    model = LlavaForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32)
    trainer = SFTTrainer(model=model, processing_class=processor,
                         train_dataset=dataset["stage1"].filter(lambda row: len(row["images"]) == 1),
                         args=SFTConfig(output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=2,
                                        learning_rate=1e-3, report_to=[], use_cpu=True, save_strategy="no",
                                        logging_steps=1, dataloader_num_workers=0))
    trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(trainer.state.log_history[0]["loss"])
