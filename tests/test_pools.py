"""Stage-2 pools as pages: the list with its counts and the versions that drew from it, a pool's conversations in
filtered keyset pages, and one conversation beside its image."""

from __future__ import annotations

import json

from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.conversations import ConversationImporter, PoolOptions
from app.models import ConversationPool, Role
from app.schemas.export_spec import ExportSpec
from app.services import pools as pool_service
from app.services import versions as version_service
from tests.factories import make_user, soup
from tests.review_helpers import signed_in, team
from tests.test_exports import _approved


def _pool(app, settings, tmp_path, rows: list[dict], name: str = "instruct") -> None:
    from PIL import Image as PILImage

    (tmp_path / "imgs").mkdir(exist_ok=True)
    PILImage.new("RGB", (24, 16), "navy").save(tmp_path / "imgs" / "1.jpg")
    (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    ConversationImporter(app.state.engine, MediaStore(settings.media_dir),
                         PoolOptions(pool=name, image_root=tmp_path / "imgs")).run(tmp_path / f"{name}.jsonl")


def _conversation(k: int, *, image: bool, exchanges: int = 1, text: str = "What is it?") -> dict:
    turns = []
    for n in range(exchanges):
        turns += [{"from": "human", "value": ("<image>\n" if image and n == 0 else "") + (text if n == 0 else "More?")},
                  {"from": "gpt", "value": f"Answer {k}.{n}"}]
    return {"id": f"src-{k}", **({"image": "1.jpg"} if image else {}), "conversations": turns}


def test_the_pools_page_counts_each_pool_and_names_the_versions_that_drew_from_it(app, db, settings, tmp_path):
    _pool(app, settings, tmp_path, [_conversation(k, image=k % 3 != 0) for k in range(9)])
    pool = db.exec(select(ConversationPool)).one()
    task, _ = _approved(db, team(db), "VQA+stage1", instances=3)
    version_service.create(db, spec=ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=4),
                           name="with-chat", actor_id=None, enqueue=False)
    client, _ = signed_in(app, make_user(db, Role.reviewer))
    row = soup(client.get("/pools")).select_one(f"#pools tr[data-pool-id='{pool.id}']")
    assert row.select_one("[data-field=conversations]").text == "9"
    assert row.select_one("[data-field=with_image]").text == "6"
    assert "with-chat" in row.text and row.select_one("a")["href"] == f"/pools/{pool.id}"


def test_a_pools_conversations_are_paged_and_filtered(app, db, settings, tmp_path):
    rows = [_conversation(k, image=k % 2 == 0, exchanges=1 + k % 3,
                          text="Describe the café." if k == 7 else 'Is the "cat" 100% asleep?' if k == 8 else "Why?")
            for k in range(130)]
    _pool(app, settings, tmp_path, rows)
    pool = db.exec(select(ConversationPool)).one()
    client, _ = signed_in(app, make_user(db, Role.author))

    def positions(**query) -> tuple[list[int], str | None]:
        page = soup(client.get(f"/pools/{pool.id}", params=query, headers={"HX-Request": "true"}))
        following = page.select_one(".pager a[rel=next]")
        return [int(tr["data-position"]) for tr in page.select("#conversations tbody tr")], \
            following["href"] if following else None

    first, following = positions()
    assert first == list(range(50)) and following == f"/pools/{pool.id}?after=49"
    third, _ = positions(after="99")
    assert third == list(range(100, 130))
    assert positions(image="without")[0][:3] == [1, 3, 5]
    assert positions(turns="3")[0][:3] == [2, 5, 8] and all(k % 3 == 2 for k in positions(turns="3")[0])
    assert positions(q="CAFÉ")[0] == [7]  # any case, and text the stored JSON may escape
    assert positions(q='"cat" 100%')[0] == [8]  # quotes and a LIKE wildcard are taken as text
    assert positions(q="nothing like it") == ([], None)
    filtered_page = soup(client.get(f"/pools/{pool.id}", params={"image": "with", "turns": "2"}))
    assert filtered_page.select_one("#no-conversation") is None
    assert filtered_page.select_one("[name=image] option[value=with]").has_attr("selected")
    assert client.get(f"/pools/{pool.id}", params={"turns": "0"}).status_code == 422


def test_a_conversation_reads_beside_its_image_and_leads_to_its_neighbours(app, db, settings, tmp_path):
    _pool(app, settings, tmp_path, [_conversation(k, image=k == 1, exchanges=2, text="<b>Bold</b> claim?")
                                    for k in range(3)])
    pool = db.exec(select(ConversationPool)).one()
    client, _ = signed_in(app, make_user(db, Role.reviewer))
    page = soup(client.get(f"/pools/{pool.id}/conversations/1"))
    assert page.select_one("#conversation-image")["src"].startswith("/media/")
    turns = page.select("#turns li")
    assert [turn["data-from"] for turn in turns] == ["human", "gpt", "human", "gpt"]
    assert turns[0].select_one("pre").text == "<image>\n<b>Bold</b> claim?"  # as written, escaped
    assert page.select_one("#turns b") is None
    assert page.select_one(".pager a[rel=prev]")["href"].endswith("/conversations/0")
    assert page.select_one(".pager a[rel=next]")["href"].endswith("/conversations/2")
    last = soup(client.get(f"/pools/{pool.id}/conversations/2"))
    assert last.select_one(".pager a[rel=next]") is None and "Text only" in last.text
    assert client.get(f"/pools/{pool.id}/conversations/3").status_code == 404
    assert client.get(f"/pools/{pool.id + 1}").status_code == 404
    assert pool_service.neighbours(db, pool_id=pool.id, position=0) == (None, 1)


def test_the_pool_pages_need_a_signed_in_user(client, db):
    assert client.get("/pools", follow_redirects=False).status_code in (303, 401)
