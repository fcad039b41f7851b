"""Each family's image token count (app/exports/image_tokens.py) against transformers' own processors at the
released models' defaults, over images of many sizes and shapes."""

from __future__ import annotations

import pytest

from app.exports.image_tokens import image_tokens

pytest.importorskip("transformers", reason="the worker's dependencies (requirements-worker.txt) are not installed")

SIZES = [(32, 32), (100, 60), (60, 100), (336, 336), (640, 480), (480, 640), (1024, 768), (1920, 1080),
         (800, 200), (200, 800), (4000, 3000), (3000, 500), (37, 1111), (1456, 1456), (364, 365), (50, 2000)]


def _tokenizer(specials: list[str]):
    from worker.tiny_model import _tokenizer as tokenizer

    return tokenizer(specials, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def test_llava_gives_every_image_576_tokens_and_llava_next_counts_its_grid_as_its_processor_does():
    from transformers import CLIPImageProcessor, LlavaNextImageProcessor, LlavaNextProcessor, LlavaProcessor

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"])
    llava = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 336},
                                                               crop_size={"height": 336, "width": 336}),
                           tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
                           num_additional_image_tokens=1)
    released = {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}}  # llava-v1.6's
    following = LlavaNextProcessor(image_processor=LlavaNextImageProcessor(**released), tokenizer=tokenizer,
                                   patch_size=14,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1)
    for width, height in SIZES:
        assert image_tokens("llava", width, height) \
            == llava._get_num_multimodal_tokens(image_sizes=[(height, width)]).num_image_tokens[0] == 576
        assert image_tokens("llava_next", width, height) \
            == following._get_num_multimodal_tokens(image_sizes=[(height, width)]).num_image_tokens[0], (width, height)


def test_qwen2_vl_counts_its_merged_patches_under_its_pixel_budget():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    processor = Qwen2VLImageProcessorPil()  # the released defaults: 56 x 56 to 28 x 28 x 1280 pixels
    counts = [image_tokens("qwen2_vl", width, height) for width, height in SIZES]
    assert counts == [processor.get_number_of_image_patches(height, width) // 4 for width, height in SIZES]
    assert 1000 < max(counts) <= 1280 and image_tokens("qwen2_5_vl", 640, 480) == counts[SIZES.index((640, 480))]


def test_idefics3_counts_its_tiles_and_the_whole_image_as_its_processor_does():
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    tiles = [f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)]
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<fake_token_around_image>", "<image>", "<global-img>",
                            "<end_of_utterance>", "\n\n", *tiles])  # "\n\n" one token, as in Llama 3's vocabulary
    processor = Idefics3Processor(image_processor=Idefics3ImageProcessor(), tokenizer=tokenizer, image_seq_len=169)
    for width, height in SIZES:
        assert image_tokens("idefics3", width, height) \
            == processor._get_num_multimodal_tokens(image_sizes=[(height, width)]).num_image_tokens[0], (width, height)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the counting, not the database, is on trial
def test_a_version_for_a_family_leaves_out_the_records_its_images_would_push_past_the_max_length(app, db, settings):
    from sqlmodel import select

    from app.demo.model_half import VERSION_TASK
    from app.demo.workspace import load_demo
    from app.exports.validate import validate_version
    from app.models import Image, Instance, Task
    from app.prompts.tokens import estimate
    from app.schemas.export_spec import ExportSpec
    from tests.test_exports import _build

    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == VERSION_TASK)).one()
    images = db.exec(select(Image).join(Instance, Instance.image_id == Image.id)
                     .where(Instance.task_id == shapes.id).order_by(Image.id)).all()
    large = images[: len(images) // 2]
    for image in large:  # as if these were photographs: the count goes by the size the studio stored
        image.width, image.height = 4000, 3000
        db.add(image)
    db.commit()
    spec = {"task_ids": [shapes.id], "max_tokens": 1024}
    everything = _build(app, settings, ExportSpec(**spec), folder="llava")
    qwen = _build(app, settings, ExportSpec(**spec, model_family="qwen2_vl"), folder="qwen")
    assert everything["excluded"]["records"] == 0  # 576 tokens an image: every record fits 1,024
    left_out = qwen["excluded"]["records"]
    large_records = len(db.exec(select(Instance.id).where(Instance.task_id == shapes.id, Instance.status == "active",
                                                          Instance.image_id.in_([image.id for image in large]))).all())
    assert left_out == large_records > 0  # a 4000 x 3000 photograph takes 1,230 in Qwen2-VL (up to 1,280)
    assert any("1,230 of them the image's, over the trainer's 1,024" in reason
               for reason in qwen["excluded"]["reasons"])
    # At 600 tokens LLaVA-1.5's 576 leave no room for the text; the small pictures take a handful in Qwen2-VL.
    tight = {"task_ids": [shapes.id], "max_tokens": 600}
    built = everything["files"]["stage1.json"]["records"]
    assert _build(app, settings, ExportSpec(**tight), folder="llava-tight")["excluded"]["records"] == built
    kept = _build(app, settings, ExportSpec(**tight, model_family="qwen2_vl"), folder="qwen-tight")
    assert kept["files"]["stage1.json"]["records"] == built - large_records
    # `validate` counts the images as the version's family does, reading their sizes from the files.
    out = settings.data_dir / "exports" / "qwen-tight"
    assert list(validate_version(out, count_tokens=estimate, max_tokens=600)) == []
    # The card says which model the lengths were checked for; a version for none keeps its card as it was.
    assert "fits the trainer's 600 tokens, each image counted as Qwen2-VL's processor counts it" \
        in (out / "README.md").read_text()
    assert "## Lengths" not in (settings.data_dir / "exports" / "llava-tight" / "README.md").read_text()
    assert ExportSpec(**spec).canonical() == ExportSpec(**spec, model_family=None).canonical()  # old digests kept
