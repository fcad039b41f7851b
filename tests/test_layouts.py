"""The layouts a version can be written in besides LLaVA's. `hf`, loaded by Hugging Face `datasets` itself, offline:
every split with the manifest's counts, the images decoding from the bytes inside the files, TRL's messages in the
records' order and turns. `llamafactory` and `swift`: their JSONL read back, and the checks `validate` runs on every
layout for what their trainers drop or break on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlmodel import select

from app.demo.model_half import VERSION_TASK
from app.demo.workspace import load_demo
from app.exports import chat_layouts, hf_layout
from app.exports.layout_checks import chat_layout_problems, hf_layout_problems, turn_problems
from app.exports.validate import validate_version
from app.models import ConversationPool, Task
from app.schemas.export_spec import ExportSpec
from tests.review_helpers import team
from tests.test_exports import _approved, _build


def mixed_version(app, db, settings, *, layouts: list[str], text_only: int = 5, **spec) -> tuple[dict, Path]:
    """The demo's shapes task (images), a text-only task and the demo's pool as a multi-turn stage 2, built in
    these layouts as well as LLaVA's: the manifest and the version's folder."""
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == VERSION_TASK)).one()
    pool = db.exec(select(ConversationPool)).one()
    words, _ = _approved(db, team(db), "TEXT+questions", instances=text_only, kind="short")
    spec = {"validation_ratio": 0.2, "stage2_size": 8, **spec}
    manifest = _build(app, settings, ExportSpec(task_ids=[shapes.id, words.id], conversation_pool_id=pool.id,
                                                layouts=layouts, **spec))
    return manifest, settings.data_dir / "exports" / "out"


def llava_splits(out: Path) -> dict[str, list[dict]]:
    """The llava layout's records per split, as the other layouts name the splits."""
    return {split: json.loads((out / name).read_text())
            for split, name in (("stage1", "stage1.json"), ("validation", "val.json"), ("stage2", "stage2.json"))}


def test_llava_turns_become_trl_messages_with_the_image_where_its_token_was():
    turns = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cat."},
             {"from": "human", "value": "And here?\n<image>"}, {"from": "gpt", "value": "Nothing <b>new</b>."}]
    assert hf_layout.messages(turns) == [
        {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": [{"type": "text", "text": "And here?"}, {"type": "image", "text": None}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Nothing <b>new</b>."}]}]
    assert hf_layout.messages([{"from": "human", "value": "Say red."}])[0]["content"] == [
        {"type": "text", "text": "Say red."}]


def test_a_spec_always_writes_llava_and_keeps_its_digest_without_other_layouts():
    plain = ExportSpec(task_ids=[1])
    assert plain.layouts == ["llava"] and b"layouts" not in plain.canonical()  # older versions keep their digest
    both = ExportSpec(task_ids=[1], layouts=["hf"])
    assert both.layouts == ["llava", "hf"] and both.digest() != plain.digest()


def test_the_hf_layout_loads_with_datasets_with_every_split_and_its_images(app, db, settings, load_offline):
    manifest, out = mixed_version(app, db, settings, layouts=["hf"])
    hf_files = {name: entry for name, entry in manifest["files"].items() if name.startswith("hf/")}
    assert "hf/README.md" in hf_files and {"stage1", "stage2", "validation"} == {
        name.split("/")[1] for name in hf_files if name.endswith(".parquet")}
    assert list(validate_version(out)) == []  # every file of every layout hashes as its manifest says

    loaded = load_offline(str(out / "hf"))
    llava = llava_splits(out)
    assert {split: loaded[split].num_rows for split in loaded} == {split: len(rows) for split, rows in llava.items()}
    for split, rows in llava.items():
        assert sum(entry["records"] for name, entry in hf_files.items() if name.startswith(f"hf/{split}/")) == len(rows)
        assert loaded[split]["id"] == [row["id"] for row in rows]  # the llava files' order
    first = loaded["stage1"][0]
    assert first["messages"] == hf_layout.messages(llava["stage1"][0]["conversations"])
    picture = first["images"][0]  # decoded by datasets from the bytes in the file
    assert picture.size == (128, 128) and picture.mode in ("RGB", "RGBA", "P")
    text_rows = [row for row in loaded["stage1"] if row["task_name"] == "TEXT+questions"]
    assert text_rows and all(row["images"] == [] for row in text_rows)
    assert all(len(row["images"]) == sum(part["type"] == "image" for turn in row["messages"]
                                         for part in turn["content"]) for row in loaded["stage2"])
    card = (out / "hf" / "README.md").read_text()  # the card, under the configs datasets reads
    assert card.startswith("---\nconfigs:") and "# v1" in card and "`datasets.load_dataset(\"hf\")`" in card


def test_the_version_form_asks_for_the_layouts_and_the_model_family(app, db, settings):
    from app.models import DatasetVersion, Role
    from tests.factories import make_user, soup
    from tests.review_helpers import signed_in

    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == VERSION_TASK)).one()
    client, csrf = signed_in(app, make_user(db, Role.author))
    assert soup(client.get("/versions")).select_one("#version-form input[name=layouts][value=hf]") is not None
    from typing import get_args

    from app.exports.image_tokens import COUNTERS

    offered = {option["value"] for option in soup(client.get("/versions")).select("#version-form "
                                                                                    "[name=model_family] option")}
    literal, _ = get_args(ExportSpec.model_fields["model_family"].annotation)
    # Every family the export counts is one the spec takes and the form offers (LLaVA-1.5's is the default, "").
    assert set(get_args(literal)) == set(COUNTERS) and offered == set(COUNTERS) - {"llava"} | {""}
    for name, ticked, layouts, family in (("plain", [], ["llava"], ""), ("both", ["hf"], ["llava", "hf"], "qwen2_vl")):
        created = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(shapes.id), "name": name,
                                                 "layouts": ticked, "validation_ratio": "0.2", "seed": "0",
                                                 "model_family": family})
        assert created.status_code == 303, created.text[:300]
        version = db.exec(select(DatasetVersion).where(DatasetVersion.name == name)).one()
        assert version.spec.get("layouts", ["llava"]) == layouts
        assert version.spec.get("model_family") == (family or None)
    refused = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(shapes.id), "layouts": "tfrecord"})
    assert refused.status_code == 422 and "must be one of llava, hf, llamafactory or swift" in refused.text



def test_the_llamafactory_and_swift_layouts_hold_every_record_with_paths_that_resolve(app, db, settings,
                                                                                      load_offline):
    manifest, out = mixed_version(app, db, settings, layouts=["swift", "llamafactory"])
    assert list(validate_version(out)) == []
    llava = llava_splits(out)
    for layout in ("llamafactory", "swift"):
        for split, rows in llava.items():
            name = f"{layout}/{split}.jsonl"
            loaded = load_offline("json", data_files=str(out / name), split="train")
            assert manifest["files"][name]["records"] == loaded.num_rows == len(rows)
            assert loaded[0]["messages"] == chat_layouts.record(rows[0])["messages"]
            for record in loaded:
                assert all((out / layout / image).resolve().parent == out / "images" for image in record["images"])
    info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
    assert set(info) == {"flan_stage1", "flan_stage2", "flan_validation"}
    assert info["flan_stage1"]["file_name"] == "stage1.jsonl" and info["flan_stage1"]["formatting"] == "sharegpt"
    assert "`--dataset_dir llamafactory --dataset flan_stage1`" in (out / "README.md").read_text()


def test_validate_finds_what_the_trainers_would_drop(tmp_path):
    assert turn_problems(["user", "assistant"]) is None and turn_problems(["system", "user", "assistant"]) is None
    assert turn_problems(["user", "user"]) == "roles do not alternate user, assistant"
    assert turn_problems(["user"]) == "an odd number of turns: the last is not the assistant's"
    folder = tmp_path / "swift"
    folder.mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    good = {"messages": [{"role": "user", "content": "<image>What?"}, {"role": "assistant", "content": "A."}],
            "images": ["../images/a.png"]}
    bad = [{**good, "images": []},
           {**good, "images": ["../images/missing.png"]},
           {"messages": [{"role": "assistant", "content": "<image>Hi"}, {"role": "user", "content": "?"}],
            "images": ["../images/a.png"]}]
    (folder / "stage1.jsonl").write_text("\n".join(json.dumps(record) for record in [good, *bad]) + "\nnot json\n")
    found = [(problem.record, problem.rule) for problem in chat_layout_problems(folder)]
    assert found == [("swift/stage1.jsonl: line 2", "image tokens"), ("swift/stage1.jsonl: line 3", "image path"),
                     ("swift/stage1.jsonl: line 4", "turns"), ("swift/stage1.jsonl: line 5", "not JSON")]

    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "hf" / "stage1").mkdir(parents=True)
    rows = [{"id": "ok", "task_name": "T", "images": [{"bytes": b"x", "path": "a.png"}],
             "messages": hf_layout.messages([{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}])},
            {"id": "lost", "task_name": "T", "images": [],
             "messages": hf_layout.messages([{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}])}]
    pq.write_table(pa.Table.from_pylist(rows, hf_layout.schema()), tmp_path / "hf" / "stage1" / "s.parquet")
    assert [(problem.record, problem.rule) for problem in hf_layout_problems(tmp_path / "hf")] == [
        ("hf/stage1/s.parquet: lost", "image parts")]


def test_layouts_that_name_image_files_are_refused_with_images_in_a_tar():
    with pytest.raises(ValidationError) as refused:
        ExportSpec(task_ids=[1], images_as_tar=True, layouts=["swift"])
    assert refused.value.errors()[0]["loc"] == ("layouts",)
    assert "build them without images.tar" in refused.value.errors()[0]["msg"]
    assert ExportSpec(task_ids=[1], images_as_tar=True, layouts=["hf"]).layouts == ["llava", "hf"]  # bytes inside


def test_the_hf_layout_is_cut_into_shards_by_size(app, db, settings):
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == VERSION_TASK)).one()
    _build(app, settings, ExportSpec(task_ids=[shapes.id]))
    out = settings.data_dir / "exports" / "out"
    files = hf_layout.write(out, images=lambda name: (out / "images" / name).read_bytes(), card="# small shards",
                            shard_bytes=60_000, rows_per_group=20)
    shards = sorted(name for name in files if name.startswith("hf/stage1/"))
    assert len(shards) > 1 and shards[0].endswith(f"-00000-of-{len(shards):05d}.parquet")
    assert sum(files[name]["records"] for name in shards) == len(json.loads((out / "stage1.json").read_text()))
    # no validation record: no file, and no split in the configs (datasets cannot read an empty split)
    assert not [name for name in files if name.startswith("hf/validation")]
    assert "split: validation" not in (out / "hf" / "README.md").read_text()
