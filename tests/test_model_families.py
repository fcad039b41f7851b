"""Each model family the worker knows, on its tiny random model (worker/tiny_model.py): the chat template and the
masking, the image tokens, the freezing rules, the fine-tune's two stages, resume, batched generation, the
evaluation and scoring, with the same code the worker runs.

Qwen2-VL's and LLaVA-OneVision's processors need torchvision in transformers 5, which does not import beside the CPU
torch here: their tests that go through `AutoProcessor` are marked `needs_torchvision` and run where it imports (a
GPU machine); what runs without it (template, masking, image tokens, collation, a training step, the freezing rules)
runs here with their real tokenizer, chat template, image processor and model, and `ExpandedByTheModel` doing the
one thing their processors add: each image's placeholder repeated to the image's tokens."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.training_data import stage2_record, write_version
from worker.tiny_model import FAMILIES as TINY_FAMILIES
from worker.tiny_model import WITHOUT_PROCESSOR

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")

FULL = tuple(family for family in TINY_FAMILIES if family not in WITHOUT_PROCESSOR)  # every path runs here
TORCHVISION = importlib.util.find_spec("torchvision") is not None
needs_torchvision = pytest.mark.skipif(
    not TORCHVISION, reason="Qwen2-VL's and LLaVA-OneVision's processors need torchvision (transformers 5)")
EVERY_FAMILY = [*FULL, *(pytest.param(family, marks=needs_torchvision) for family in WITHOUT_PROCESSOR)]
END_OF_ANSWER = {"llava": "</s>", "llava_next": "</s>", "idefics3": "<end_of_utterance>", "qwen2_vl": "<|im_end|>",
                 "llava_onevision": "<|im_end|>"}
QUICK = {"global_batch_size": 8, "per_device_batch_size": 4, "stage2_global_batch_size": 4, "device": "cpu"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from worker.tiny_model import build_tiny_model

    folder = tmp_path_factory.mktemp("families")
    made: dict[str, Path] = {}

    def model(family: str) -> Path:
        if family not in made:
            made[family] = build_tiny_model(folder / family, family=family)
        return made[family]

    return model


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    folder = write_version(tmp_path_factory.mktemp("version"), records=16, stage2=6)
    shutil.copy(folder / "stage1.json", folder / "val.json")  # what the evaluation scores
    return folder


class ExpandedByTheModel:
    """What the processor of a family whose processor needs torchvision does for texts and their images, with the
    family's real tokenizer, chat template and image processor: each image's placeholder repeated once per feature
    the model makes of the image (the count its forward pass checks), and Qwen2-VL's token types."""

    def __init__(self, folder: Path, model, placeholder: str, *, token_types: bool):
        from transformers import AutoImageProcessor, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.image_processor = AutoImageProcessor.from_pretrained(folder)
        self.model, self.placeholder, self.token_types = model, placeholder, token_types

    def apply_chat_template(self, messages, add_generation_prompt=False):
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                  tokenize=False)

    def _features(self, image) -> int:
        with torch.no_grad():
            pooled = self.model.get_image_features(**self.image_processor(images=[image], return_tensors="pt")
                                                   ).pooler_output
        return sum(len(part) for part in pooled) if isinstance(pooled, (list, tuple)) else len(pooled)

    def __call__(self, text, images=None, return_tensors="pt", padding=False):
        from transformers import BatchFeature

        inputs = {}
        if images:
            inputs = dict(self.image_processor(images=images, return_tensors="pt"))
            counts = iter([self._features(image) for image in images])
            expanded = []
            for part in text:
                first, *rest = part.split(self.placeholder)
                expanded.append(first + "".join(self.placeholder * next(counts) + after for after in rest))
            text = expanded
        tokens = self.tokenizer(text, return_tensors=return_tensors, padding=padding)
        if self.token_types:  # 1 for the image's tokens, as Qwen2-VL's processor marks them
            placeholder = self.tokenizer.convert_tokens_to_ids(self.placeholder)
            tokens["mm_token_type_ids"] = (tokens["input_ids"] == placeholder).long()
        return BatchFeature({**tokens, **inputs})


def _loaded(models, family: str):
    from worker.loading import Loaded, load_private

    if family not in WITHOUT_PROCESSOR or TORCHVISION:
        return load_private(str(models(family)), "float32", "cpu")
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(models(family)).eval()
    placeholder = {"qwen2_vl": "<|image_pad|>", "llava_onevision": "<image>"}[family]
    processing = ExpandedByTheModel(models(family), model, placeholder, token_types=family == "qwen2_vl")
    return Loaded(processing, model, "cpu")


def _parameters(folder: Path) -> dict:
    """The model's weights by their names in the loaded model (the files keep older names for some families)."""
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(folder).state_dict()


def _supervised_runs(encoded) -> list[list[int]]:
    from worker.training.encoding import IGNORE

    runs, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs, current = [*runs, current], []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("family", [*FULL, *WITHOUT_PROCESSOR])
def test_the_template_lays_out_the_record_and_only_the_answers_with_their_end_are_supervised(models, family):
    from PIL import Image

    from app.schemas.model_families import FAMILIES
    from worker.training.batching import PaddingCollator
    from worker.training.encoding import IGNORE, encode

    loaded = _loaded(models, family)
    tokenizer = loaded.processor.tokenizer
    record = stage2_record(3, "img.png")
    image = Image.new("RGB", (100, 60), "red")  # not square: the dynamic-resolution families tile or resize it
    encoded = encode(loaded.processor, record["conversations"], image, max_length=4096)
    answers = [turn["value"] for turn in record["conversations"][1::2]]
    assert [tokenizer.decode(run).strip() for run in _supervised_runs(encoded)] \
        == [answer + END_OF_ANSWER[family] for answer in answers]
    masked = tokenizer.decode([token for token, label in zip(encoded.input_ids, encoded.labels, strict=True)
                               if label == IGNORE])
    assert "Describe the picture." in masked and "Is there anything else in it?" in masked
    # The whole record is the template's own rendering of the conversation, token for token.
    messages = []
    for k, turn in enumerate(record["conversations"]):
        text = turn["value"].replace("<image>", "").strip()
        content = ([{"type": "image"}] if k == 0 else []) + [{"type": "text", "text": text}]
        messages.append({"role": "user" if turn["from"] == "human" else "assistant", "content": content})
    if family != "llava" and family != "llava_next":  # LLaVA-1.5's template ends an answer with nothing: EOS does
        whole = loaded.processor(text=[loaded.processor.apply_chat_template(messages).rstrip()], images=[image],
                                 return_tensors="pt")
        assert encoded.input_ids == whole["input_ids"][0].tolist()
    # The image's inputs are what the family's forward pass takes, and its tokens match them.
    assert set(encoded.image_inputs) == set(FAMILIES[family].image_inputs)
    with torch.inference_mode():
        out = loaded.model(**PaddingCollator(tokenizer.pad_token_id)([encoded.row()]))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("family", [*FULL, *WITHOUT_PROCESSOR])
def test_a_batch_of_records_of_different_images_and_lengths_trains_one_step(models, family):
    from PIL import Image

    from app.schemas.model_families import FAMILIES
    from worker.finetune import freeze_vision_tower
    from worker.training.batching import PaddingCollator
    from worker.training.encoding import encode

    loaded = _loaded(models, family)
    model = loaded.model.train()
    images = [Image.new("RGB", (100, 60), "red"), Image.new("RGB", (30, 30), "blue")]  # different tiles/patches
    rows = []
    for k, image in enumerate(images):
        encoded = encode(loaded.processor, stage2_record(k, "x")["conversations"][:2 + 2 * k], image, max_length=4096)
        rows.append(encoded.row())
    batch = PaddingCollator(loaded.processor.tokenizer.pad_token_id)(rows)
    family_ = FAMILIES[family]
    freeze_vision_tower(model, family_)
    model.zero_grad()
    model(**batch).loss.backward()
    tower, projector = ({name for name, _ in model.get_submodule(path).named_parameters(prefix=path)}
                        for path in (family_.vision_tower, family_.projector))
    grads = {name: parameter.grad for name, parameter in model.named_parameters()}
    assert all(grads[name] is None for name in tower - projector)  # the tower is frozen...
    assert all(grads[name] is not None and grads[name].abs().sum() > 0 for name in projector)  # ...its projector not
    language = [name for name in grads if name.startswith(family_.language_model + ".")]
    assert language and all(grads[name] is not None for name in language)
    model.requires_grad_(True)


def test_tensors_of_different_tiles_are_padded_with_zeros_when_batched():
    from worker.training.batching import join

    small, large = torch.ones(1, 3, 2, 4, 4), torch.full((1, 5, 2, 4, 4), 2.0)
    joined = join([small, large])
    assert joined.shape == (2, 5, 2, 4, 4)
    assert joined[0, :3].eq(1).all() and joined[0, 3:].eq(0).all() and joined[1].eq(2).all()
    flat = join([torch.ones(6, 10), torch.ones(4, 10)])  # Qwen2-VL: patches of every image in a row
    assert flat.shape == (10, 10)


@pytest.mark.parametrize("family", EVERY_FAMILY)
def test_batched_generation_answers_as_one_at_a_time_does(models, family):
    from PIL import Image

    from worker.preview import answer, prepare

    loaded = _loaded(models, family)
    prompts = ["<image>\nWhat is shown?", "<image>\nHow many shapes are there in this picture, counting all?"]
    images = [Image.new("RGB", (100, 60), "red"), Image.new("RGB", (30, 30), "blue")]
    together = answer(loaded, prepare(loaded, prompts, images), max_new_tokens=6)
    alone = [answer(loaded, prepare(loaded, [prompt], [image]), max_new_tokens=6)[0]
             for prompt, image in zip(prompts, images, strict=True)]
    assert together == alone and all(together)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # for the options of what it evaluates
@pytest.mark.parametrize("family", EVERY_FAMILY)
def test_a_family_fine_tunes_both_stages_evaluates_and_scores(models, version, tmp_path, family, db):
    from PIL import Image

    from app.schemas.model_families import FAMILIES
    from app.schemas.recipe import FinetuneConfig
    from tests.test_training import events_of, max_difference
    from worker.evaluate import evaluate
    from worker.finetune import main
    from worker.loading import load_private
    from worker.score import Question, score

    base, out = models(family), tmp_path / "run"
    final = main(FinetuneConfig(version=version, base=base, out=out, stage1_lr=2e-3, stage1_epochs=2,
                                stage2_steps=2, **QUICK))
    family_ = FAMILIES[family]
    first, second, start = _parameters(out / "stage1" / "model"), _parameters(final), _parameters(base)
    tower, projector, language = (f"{path}." for path in (family_.vision_tower, family_.projector,
                                                          family_.language_model))
    assert max_difference(first, start, language) > 1e-4
    assert max_difference(first, start, projector) > 1e-4
    tower_only = {key: value for key, value in start.items() if key.startswith(tower) and not key.startswith(projector)}
    assert max_difference(tower_only, second, tower) == 0.0  # the tower never trains
    assert max_difference(second, first, language) > 0  # stage 2 trained on from stage 1
    losses = [event["loss"] for event in events_of(out, "step") if event["stage"] == "stage1"]
    assert all(loss == loss for loss in losses) and sum(losses[-2:]) < sum(losses[:2])

    scores = evaluate(db, model_path=str(final), device="cpu", version_folder=version, per_task=3, batch_size=2,
                      max_new_tokens=4)
    assert {task: result["total"] for task, result in scores.items()} == {"COLOURS+name": 3, "WORDS+say": 3}

    loaded = load_private(str(final), "float32", "cpu")
    question = Question("<image>\nWhat colour fills the picture?", "red", Image.new("RGB", (40, 30), "red"),
                        ["red", "green", "blue"])
    scored, = score(loaded, [question])
    assert scored.loss > 0 and abs(sum(scored.option_probabilities) - 1) < 1e-5


# One family beside LLaVA's own (tests/test_training.py): a kill and a resume cost ~20 s a family, and the resume
# loads a checkpoint by the model's own class, whatever its family.
@pytest.mark.parametrize("family", ["idefics3", pytest.param("qwen2_vl", marks=needs_torchvision)])
def test_a_run_killed_mid_stage_resumes_to_the_weights_of_an_uninterrupted_one(models, version, tmp_path, family):
    from app.schemas.recipe import FinetuneConfig
    from tests.test_training import _arguments, _run_script, events_of, max_difference, weights
    from worker.finetune import main

    recipe = {**QUICK, "stage1_lr": 2e-3, "stage1_epochs": 4, "stage2_steps": 0, "save_steps": 2}
    reference = main(FinetuneConfig(version=version, base=models(family), out=tmp_path / "whole", **recipe))
    out = tmp_path / "killed"
    running = _run_script(_arguments(version, models(family), out, **recipe))
    marker = out / "stage1" / "checkpoints" / "checkpoint-2" / "studio-complete.json"
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1][-2000:]
        time.sleep(0.02)
    running.send_signal(signal.SIGKILL)
    running.communicate()
    assert not (out / "stage1" / "model").exists()
    resumed = _run_script(_arguments(version, models(family), out, **recipe))
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors[-3000:]
    assert events_of(out, "stage_start")[-1]["resumed_from"] >= 2
    assert max_difference(weights(out / "stage1" / "model"), weights(reference)) <= 1e-5


TEXT = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
        "num_attention_heads": 4, "num_key_value_heads": 2}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
          "image_size": 32, "patch_size": 8}
MROPE = {"rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}
ARCHITECTURES = {  # every family's architecture at its smallest, built from its config alone
    "llava": {"vision_config": {"model_type": "clip_vision_model", **VISION},
              "text_config": {"model_type": "llama", **TEXT}},
    "llava_next": {"vision_config": {"model_type": "clip_vision_model", **VISION},
                   "text_config": {"model_type": "llama", **TEXT}},
    "llava_onevision": {"vision_config": {"model_type": "siglip_vision_model", **VISION},
                        "text_config": {"model_type": "qwen2", **TEXT}},
    "qwen2_vl": {"text_config": {**TEXT, **MROPE},
                 "vision_config": {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2}},
    "qwen2_5_vl": {"text_config": {**TEXT, **MROPE},
                   "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                                     "out_hidden_size": 64, "fullatt_block_indexes": [0]}},
    "idefics3": {"vision_config": VISION, "text_config": {"model_type": "llama", **TEXT}},
    "smolvlm": {"vision_config": VISION, "text_config": {"model_type": "llama", **TEXT}},
}


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_every_known_family_names_modules_its_architecture_has_and_lora_adapts_only_its_language_model(kind):
    import transformers
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    from app.schemas.model_families import FAMILIES
    from worker.finetune import freeze_vision_tower, with_lora

    assert set(ARCHITECTURES) == set(FAMILIES)
    family = FAMILIES[kind]
    model = AutoModelForImageTextToText.from_config(AutoConfig.for_model(kind, **ARCHITECTURES[kind]))
    freeze_vision_tower(model, family)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and not {name for name in trainable if name.startswith(family.vision_tower + ".")
                              and not name.startswith(family.projector + ".")}
    assert any(name.startswith(family.projector + ".") for name in trainable)
    adapted = with_lora(model, 4, family)
    lora = [name for name, _ in adapted.named_modules() if name.endswith(("q_proj", "v_proj"))
            and hasattr(adapted.get_submodule(name), "lora_A")]
    assert lora and all(f".{family.language_model}." in f".{name}" for name in lora)
    assert any(name.endswith(family.projector.rsplit(".", 1)[-1] + ".modules_to_save.default")
               for name, _ in adapted.named_modules())
    # Whether its processor is built with a video processor (which needs torchvision), as the family says.
    attributes = getattr(transformers, PROCESSOR_MAPPING_NAMES[kind]).get_attributes()
    assert ("video_processor" in attributes) == family.processor_needs_torchvision
    assert kind not in TINY_FAMILIES or (kind in WITHOUT_PROCESSOR) == family.processor_needs_torchvision
