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


def test_the_prescreens_find_refusals_long_conversations_and_duplicates_and_say_why():
    from app.prompts.tokens import estimate
    from app.qc.prescreen import Budget, screen

    def talk(answer: str, question: str = "What is it?") -> list[dict]:
        return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]

    found = screen([
        (0, talk("A red bus."), 7, None),
        (1, talk("I'm sorry, but I cannot see the image."), 7, None),
        (2, talk("A red bus."), 7, None),  # the same as 0, same image
        (3, talk("a red  bus"), 7, None),  # the same but for case, spacing, punctuation
        (4, talk("A red bus."), 8, None),  # the same words about another image: not a duplicate
        (5, talk("word " * 2000), None, None),
        (6, talk("As an AI, I do not have eyes."), None, None),
        (7, talk("Sorry to hear the bus was late.", "Can you help?"), None, None),  # sorry, but not a refusal
        # Written from a source: the buses it mentions, and people (a man is a person), are seen; the dogs are not.
        (8, talk("Two men stand by the buses; a dog and two puppies sleep under a teddy bear."), 9,
         "A double-decker bus. Some people wait."),
        (9, talk("The man waits for the bus by the hydrant.", "Is there a fire hydrant?"), 9, "A man and a bus."),
    ], budget=Budget(count_tokens=estimate, image_tokens=576, max_tokens=2048))
    said = {position: [(finding.rule, finding.detail) for finding in findings] for position, findings in found.items()}
    assert said == {
        1: [("refusal", "turn 2 says “I'm sorry”")],
        2: [("duplicate", "the same as conversation 0")],
        3: [("near_duplicate", "the same as conversation 0 but for case, spacing or punctuation")],
        5: [("too_long", "about 2,503 tokens, over 2,048")],
        6: [("refusal", "turn 2 says “As an AI”")],
        8: [("unseen_object", "turn 2 names “dog”, “teddy bear”, which its source never mentions")],
    }
    assert screen([(0, talk("word " * 1200), 3, None)], budget=Budget(estimate, 576, 1500))[0][0].detail == \
        "about 2,079 tokens with the image, over 1,500"  # 1,503 of text and LLaVA-1.5's 576 for the image


def test_a_pool_page_counts_its_findings_and_filters_by_them(app, db, settings, tmp_path):
    rows = [_conversation(k, image=False) for k in range(6)]
    rows[2]["conversations"][1]["value"] = "I apologize, but I can't tell."
    rows[4] = dict(rows[0], id="src-4")  # the same conversation again
    _pool(app, settings, tmp_path, rows)
    pool = db.exec(select(ConversationPool)).one()
    client, _ = signed_in(app, make_user(db, Role.reviewer))
    page = soup(client.get(f"/pools/{pool.id}"))
    counts = {li["data-rule"]: li.text.split(" · ")[0].strip() for li in page.select(".prescreen-counts li")}
    assert counts == {"refusal": "1", "unseen_object": "0", "too_long": "0", "duplicate": "1", "near_duplicate": "0"}
    badges = {int(tr["data-position"]): [mark["data-rule"] for mark in tr.select("mark")]
              for tr in page.select("#conversations tbody tr")}
    assert badges == {0: [], 1: [], 2: ["refusal"], 3: [], 4: ["duplicate"], 5: []}
    only = soup(client.get(f"/pools/{pool.id}", params={"finding": "refusal"}, headers={"HX-Request": "true"}))
    assert [tr["data-position"] for tr in only.select("#conversations tbody tr")] == ["2"]
    conversation = soup(client.get(f"/pools/{pool.id}/conversations/4"))
    assert "The same conversation as another: the same as conversation 0" in conversation.select_one("#findings").text
    assert client.get(f"/pools/{pool.id}", params={"finding": "rude"}).status_code == 422


def test_the_api_lists_pools_and_pages_their_conversations_with_findings(app, client, db, settings, tmp_path):
    from tests.factories import bearer

    rows = [_conversation(k, image=k % 2 == 0) for k in range(7)]
    rows[3]["conversations"][1]["value"] = "I am unable to see images."
    _pool(app, settings, tmp_path, rows)
    pool = db.exec(select(ConversationPool)).one()
    auth = bearer(db, make_user(db, Role.author))
    listed = client.get("/api/v1/pools", headers=auth).json()
    assert listed == [{"id": pool.id, "name": "instruct", "source": listed[0]["source"], "conversations": 7,
                       "with_image": 4, "versions": []}]
    first = client.get(f"/api/v1/pools/{pool.id}/conversations", params={"limit": 4}, headers=auth).json()
    assert [item["position"] for item in first["items"]] == [0, 1, 2, 3] and first["next_after"] == 3
    assert first["items"][0]["image"] and first["items"][1]["image"] is None
    assert first["items"][3]["findings"] == [{"rule": "refusal", "detail": "turn 2 says “I am unable to”"}]
    rest = client.get(f"/api/v1/pools/{pool.id}/conversations", params={"after": 3, "limit": 4}, headers=auth).json()
    assert [item["position"] for item in rest["items"]] == [4, 5, 6] and rest["next_after"] is None
    refusals = client.get(f"/api/v1/pools/{pool.id}/conversations", params={"finding": "refusal"}, headers=auth)
    assert [item["position"] for item in refusals.json()["items"]] == [3]
    for bad in ({"finding": "rude"}, {"limit": 0}, {"image": "maybe"}):
        refused = client.get(f"/api/v1/pools/{pool.id}/conversations", params=bad, headers=auth)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid"
    assert client.get(f"/api/v1/pools/{pool.id + 1}/conversations", headers=auth).status_code == 404

