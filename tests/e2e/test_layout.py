"""The main pages as a person meets them, on the demo workspace: at a desktop's width and at a phone's (390 px), no
page is wider than the window (a wide table scrolls inside its own box). Each page's screenshot is kept in
test-artifacts/screens/ to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlmodel import func, select

from app.demo.model_half import add_version
from app.demo.workspace import load_demo
from app.models import ConversationPool, Instance, Task, User
from app.schemas.bulk_fixes import BulkFixIn, BulkQuery, ReplaceChange
from app.schemas.stage2 import SynthesizeIn
from app.services import bulk_fixes
from app.services import registered_models as model_service
from app.services.blinding import NONE
from app.services.synthesis import jobs as synthesis_jobs
from app.services.synthesis import prompts
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import sign_in

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


def _pages(db, settings) -> dict[str, str]:
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    first = db.exec(select(func.min(Instance.id)).where(Instance.task_id == shapes.id)).one()
    admin = db.exec(select(User).where(User.email == "admin@studio.local")).one()
    option = db.get(Instance, first).options[0]
    fix = bulk_fixes.propose(db, blindfold=NONE, author_id=admin.id, self_accept_allowed=False, data=BulkFixIn(
        query=BulkQuery(task_ids=[shapes.id]), reason="A clearer class name.",
        change=ReplaceChange(action="replace", find=option, replace_with=f"{option} shape")))
    version = add_version(settings, db)  # ready, with a fine-tune form once a model is registered
    pool_id = db.exec(select(ConversationPool.id)).one()
    model = model_service.register(db, name="tiny-llava", path="/models/tiny-llava", actor_id=admin.id)
    prompts.propose(db, kind="detail", text="Describe the picture in detail.", author_id=admin.id)
    synthesis = synthesis_jobs.start(db, SynthesizeIn(pool="written", task_id=shapes.id, backend="model",
                                                      model_id=model.id), actor_id=admin.id, endpoints_file=None)
    return {"dashboard": "/", "tasks": "/tasks", "task": f"/tasks/{shapes.id}",
            "instances": f"/tasks/{shapes.id}/instances", "instance": f"/instances/{first}",
            "doubt": f"/tasks/{shapes.id}/instances?order=doubt", "datasets": "/datasets", "review": "/review",
            "versions": "/versions", "version": f"/versions/{version.id}?recipe=quick", "jobs": "/jobs",
            "pools": "/pools", "pool": f"/pools/{pool_id}", "conversation": f"/pools/{pool_id}/conversations/0",
            "conversation-review": "/review/conversations", "synthesis": "/synthesis",
            "synthesis-job": f"/jobs/{synthesis.id}",
            "models": "/models", "imports": "/imports",
            "bulk-fixes": "/bulk-fixes", "new-bulk-fix": f"/bulk-fixes/new?task_id={shapes.id}",
            "bulk-fix": f"/bulk-fixes/{fix.id}", "account": "/account"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a layout does not depend on the database
def test_no_main_page_is_wider_than_a_desktop_or_a_phone(page: Page, db, settings):
    result = load_demo(db, data_dir=settings.data_dir)
    pages = _pages(db, settings)
    email, password = result.credentials[0]  # the admin, who sees every button
    sign_in(page, email, password)
    folder = ARTIFACTS / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    too_wide = []
    for device, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            response = page.goto(path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{name}-{device}.png"), full_page=True)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                too_wide.append(f"{name} ({path}) is {scroll_width} px wide on a {width} px {device}")
    assert not too_wide, "\n".join(too_wide)
