"""Stage-2 conversation pools: multi-turn records in as they are, refused where the trainer would choke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.conversations import ConversationImporter, PoolOptions
from app.models import ConversationItem, ConversationPool, Image


def turns(*values: str) -> list[dict]:
    return [{"from": "human" if k % 2 == 0 else "gpt", "value": value} for k, value in enumerate(values)]


def instruct(id_: str = "000000033471", **fields) -> dict:
    base = {"id": id_, "image": "coco/33471.jpg",
            "conversations": turns("<image>\nWhat colours are the buses?", "White and red.",
                                   "What feature can be seen on the back?", "An advertisement.")}
    return {**base, **fields}


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    (tmp_path / "imgs" / "coco").mkdir(parents=True)
    PILImage.new("RGB", (16, 16), "white").save(tmp_path / "imgs" / "coco" / "33471.jpg")
    return tmp_path / "imgs"


def run(app, settings, image_root, rows, tmp_path, pool="llava-instruct-150k"):
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    importer = ConversationImporter(app.state.engine, MediaStore(settings.media_dir),
                                    PoolOptions(pool=pool, image_root=image_root))
    return importer.run(path)


def test_conversations_keep_their_turns_and_repeated_ids(app, db, settings, image_root, tmp_path):
    rows = [instruct(), instruct(), {"id": "text-1", "conversations": turns("Write a haiku.", "Autumn moon...")}]
    report = run(app, settings, image_root, rows, tmp_path)
    assert (report.imported, report.rejected_count, report.images_stored) == (3, 0, 1)
    items = db.exec(select(ConversationItem).order_by(ConversationItem.position)).all()
    assert [item.position for item in items] == [0, 1, 2]
    assert [item.source_id for item in items] == ["000000033471", "000000033471", "text-1"]  # ids repeat
    assert items[0].conversations == rows[0]["conversations"] and items[0].image_id == items[1].image_id
    assert items[2].image_id is None
    assert db.exec(select(ConversationPool.name)).one() == "llava-instruct-150k"
    assert db.exec(select(func.count()).select_from(Image)).one() == 1
    again = run(app, settings, image_root, rows + [instruct("new")], tmp_path)
    assert (again.imported, again.duplicates) == (1, 3)


@pytest.mark.parametrize(("row", "reason"), [
    (instruct(conversations=turns("<image>\nQ?")), "last turn must be from gpt"),
    (instruct(conversations=[{"from": "gpt", "value": "A"}]), "turn 1 must be from human"),
    (instruct(conversations=turns("<image>\nQ?", "A", "Q2", "A2 </s>")), "template marker '</s>'"),
    (instruct(conversations=turns("<image>\nQ?", "A ASSISTANT: more")), "template marker 'ASSISTANT:'"),
    (instruct(conversations=turns("Q?", "A")), "exactly one <image>"),
    (instruct(conversations=turns("<image> <image> Q?", "A")), "exactly one <image>"),
    (instruct(conversations=turns("<image> Q?", "A", "<image> again", "B")), "exactly one <image>"),
    ({"id": "t", "conversations": turns("<image> Q?", "A")}, "has no image"),
    (instruct(conversations=turns("<image>\nQ?", "  ")), "turn 2 is empty"),
    (instruct(conversations=[]), "non-empty list"),
    (instruct(image="coco/missing.jpg"), "does not exist"),
])
def test_records_the_trainer_would_mask_are_refused(app, db, settings, image_root, tmp_path, row, reason):
    report = run(app, settings, image_root, [instruct(), row], tmp_path)
    assert report.imported == 1 and report.rejected_count == 1
    rejection = report.rejected[0]
    assert rejection.line == 2 and reason in rejection.reason, rejection


def test_llava_instructs_three_files_import_as_three_kinds():
    from app.ingest.conversations import kind_of_file

    assert kind_of_file("conversation_58k.json") == "conversation"
    assert kind_of_file("detail_23k.json") == "detail"
    assert kind_of_file("Complex_Reasoning_77k.jsonl") == "complex_reasoning"
    assert kind_of_file("llava_instruct_150k.json") is None  # the three together: no one kind
