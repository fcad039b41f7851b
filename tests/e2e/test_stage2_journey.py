"""Stage 2 end to end in the browser: a pool imported, its pre-screen findings, a hallucination fixed by one
reviewer and accepted by another, the pool's error rate with its interval, twenty conversations synthesized
through an OpenAI-compatible endpoint (the tests' server), read, and a version whose stage 2 draws from the
reviewed ones, its card stating the pool's error rate and how the conversations were drawn."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from app.core.config import Settings
from app.core.storage import MediaStore
from app.models import ConversationItem, ConversationPool, Image, Instance, Role, Task
from tests.e2e.test_browser import sign_in
from tests.e2e.test_review_keyboard import press_and_wait
from tests.factories import make_user
from tests.openai_server import Behaviour, OpenAIServer
from tests.review_helpers import approve, submit_instruction

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the services: both, elsewhere
FIXED = "A red double-decker bus waits at the stop."


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, page_size=50,
                    synthesis_endpoints=tmp_path / "endpoints.yaml", _env_file=None)


def _run_jobs(settings) -> None:
    from worker.__main__ import Worker

    worker = Worker(settings)
    while worker.run_once():
        pass


def _picture(colour: str) -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (48, 32), colour).save(out, "PNG")
    return out.getvalue()


def _pool_file(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bus.png").write_bytes(_picture("red"))
    rows = [{"id": str(k), "image": "bus.png", "conversations": [
        {"from": "human", "value": f"<image>\nWhat is in picture {k}?"},
        {"from": "gpt", "value": f"A bus and a dog, picture {k}."}]} for k in range(6)]
    rows[4]["conversations"][1]["value"] = "I'm sorry, but I cannot see images."
    rows[5]["conversations"] = rows[3]["conversations"]  # the same conversation twice
    (root / "conversation_58k.json").write_text(json.dumps(rows))


def _task_with_pictures(db, settings, author, reviewer) -> Task:
    """A verified task whose instances have images, with an approved instruction: what the synthesis writes about,
    and stage 1 of the version."""
    media = MediaStore(settings.media_dir)
    task = Task(name="SHAPES+colour", status="verified")
    db.add(task)
    db.flush()
    rng = random.Random(1)
    for k, colour in enumerate(["red", "green", "blue", "white"] * 6):
        data = _picture(colour)
        sha = media.put(data)
        image = db.exec(select(Image).where(Image.sha256 == sha)).first() or Image(
            sha256=sha, width=48, height=32, format="PNG", bytes=len(data))
        db.add(image)
        db.flush()
        db.add(Instance(task_id=task.id, source_id=str(k), image_id=image.id, input_text="Which colour?",
                        raw_output=colour, rkey=rng.getrandbits(31)))
    from app.services.tasks import refresh_instance_counts

    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    _, _, review = submit_instruction(db, task, author, text="Which colour fills the picture?")
    review.reviewer_id = reviewer.id
    approve(db, review)
    db.refresh(task)
    task.status = "verified"  # its checks are the other journeys' subject
    db.add(task)
    db.commit()
    return task


def test_stage_two_is_imported_screened_reviewed_fixed_synthesized_and_drawn_into_a_version(
        page: Page, browser, live_server, db, settings, monkeypatch):
    _pool_file(settings.resolved_import_root)
    author, first, second = make_user(db, Role.admin), make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    task = _task_with_pictures(db, settings, author, make_user(db, Role.reviewer))

    # The author imports the pool; the pre-screens find the refusal and the repeat.
    sign_in(page, author.email)
    page.goto("/imports")
    page.get_by_label("Format").select_option("conversations")
    expect(page.get_by_role("textbox", name="Pool")).to_be_visible()  # the form as the format asks for it
    page.get_by_label("File").fill("conversation_58k.json")
    page.get_by_label("Image folder").fill(".")
    page.get_by_role("textbox", name="Pool").fill("instruct")
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#job-status")).to_be_visible()
    _run_jobs(settings)
    expect(page.locator("[data-field=imported]")).to_have_text("6")
    pool = db.exec(select(ConversationPool).where(ConversationPool.name == "instruct")).one()
    kinds = db.exec(select(ConversationItem.kind).where(ConversationItem.pool_id == pool.id)).all()
    assert kinds == ["conversation"] * 6  # LLaVA-Instruct's file names say their kind
    page.goto(f"/pools/{pool.id}")
    expect(page.locator("#prescreens li[data-rule=refusal] a")).to_have_text("1")
    expect(page.locator("#prescreens li[data-rule=duplicate] a")).to_have_text("1")

    # A reviewer reads four: the first one's answer names a dog that is not there, and is fixed.
    reader = browser.new_context(base_url=live_server).new_page()
    sign_in(reader, first.email)
    reader.goto("/review/conversations")
    answer = reader.locator("#turns li.turn-gpt").first
    answer.get_by_label("Verdict").select_option("hallucinated_object")
    answer.locator("summary").click()
    answer.get_by_label("The answer as it should read").fill(FIXED)
    shown = reader.locator("#item").get_attribute("data-item-id")
    reader.get_by_role("button", name="Record the verdicts as marked").click()
    expect(reader.locator("#queue-message")).to_contain_text("second reviewer")
    assert reader.locator("#item").get_attribute("data-item-id") != shown
    for _ in range(3):
        press_and_wait(reader, "c")

    # A second reviewer accepts the fix.
    checker = browser.new_context(base_url=live_server).new_page()
    sign_in(checker, second.email)
    checker.goto("/review/corrections")
    expect(checker.locator("#item")).to_contain_text(FIXED)
    press_and_wait(checker, "a")
    expect(checker.locator("#queue-message")).to_contain_text("Accepted")

    # The pool's error rate, with its interval: one of the four read had a wrong answer.
    page.goto(f"/pools/{pool.id}")
    expect(page.locator("#pool-review [data-field=error_rate]")).to_have_text("25.0%")
    expect(page.locator("#pool-review")).to_contain_text("95% interval")

    # Twenty new conversations through the endpoint.
    with OpenAIServer(Behaviour()) as server:
        monkeypatch.setenv("E2E_VLLM_KEY", "sk-e2e")
        settings.synthesis_endpoints.write_text(orjson.dumps({"local-vllm": {
            "base_url": server.base_url, "model": "test-vlm", "api_key_env": "E2E_VLLM_KEY"}}).decode())
        page.goto("/pools")
        page.get_by_role("button", name="Synthesize conversations").click()
        page.get_by_label("About the instances of").select_option(str(task.id))
        page.get_by_label("How many").fill("20")
        page.get_by_label("Into the pool").fill("written")
        page.get_by_label("Generator").select_option("endpoint:local-vllm")
        page.get_by_role("button", name="Start writing").click()
        expect(page.locator("#job-endpoint")).to_contain_text("test-vlm at 127.0.0.1")
        _run_jobs(settings)
        page.reload()
        expect(page.locator("#synthesis-report [data-field=stored]")).to_contain_text("20")
        assert server.behaviour.problems == [] and len(server.behaviour.requests) == 20

    # They are read like any other (with the imported pool's last two).
    reader.goto("/review/conversations")
    while reader.locator("#queue-empty").count() == 0:
        press_and_wait(reader, "c")
    written = db.exec(select(ConversationPool).where(ConversationPool.name == "written")).one()

    # A version whose stage 2 draws from the reviewed conversations; its card says what review found and how.
    page.goto("/versions")
    page.get_by_label("Stage 2 pool").select_option(str(written.id))
    page.get_by_label("Stage 2 conversations").fill("20")
    page.get_by_role("button", name="Build the version").click()
    expect(page.get_by_role("heading", name="v1")).to_be_visible()
    _run_jobs(settings)
    page.reload()
    page.locator("#read-card").click()
    card = page.locator("#dataset-card")
    expect(card).to_contain_text("20 conversations (at most 20 asked for) from the pool written")
    expect(card).to_contain_text("Review read 20 of the pool's 20 conversations")
    expect(card).to_contain_text("0.0% of the pool (exact: every conversation was read)")
    expect(card).to_contain_text("20 of them were written by a model the studio asked")
    expect(card).to_contain_text("20 by test-vlm, conversation prompt version 1")
