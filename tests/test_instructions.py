"""Instruction drafts, versions and the live preview on seeded instances."""

from __future__ import annotations

from sqlmodel import select

from app.models import AuditEvent, Instance, InstructionVersion, Role
from app.services import instructions as instruction_service
from tests.factories import login, make_task, make_user, soup


def _editor(client, db):
    task = make_task(db, "SHAPES+shape_qa", instances=12)
    for k, instance in enumerate(db.exec(select(Instance).where(Instance.task_id == task.id)).all()):
        instance.options = ["circle", "square"] if k % 2 else None
        instance.raw_output = "square" if k % 2 else f"answer {k}"
        db.add(instance)
    db.commit()
    author = make_user(db, Role.author)
    csrf = login(client, author.email)
    created = client.post(f"/tasks/{task.id}/instructions", data={"csrf_token": csrf, "label": "main"})
    assert created.status_code == 303
    return task, csrf, created.headers["location"]


def _preview(client, url, csrf, **fields):
    data = {"csrf_token": csrf, "lock_version": "1", "text": "", "input_template": "", "output_template": "",
            "options_style": "paren_letters", "image_placement": "before", **fields}
    return client.post(url + "/preview", data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})


def test_the_preview_renders_unsaved_fields_on_seeded_instances(client, db):
    _, csrf, url = _editor(client, db)
    first = soup(_preview(client, url, csrf, text="Name the <b>shape</b>.", output_template="It is {{ raw_output }}."))
    samples = first.select("article.sample")
    assert len(samples) == 8
    prompts = [s.select_one("pre.prompt").text for s in samples]
    assert all(p.startswith("Name the <b>shape</b>.") for p in prompts)  # shown as text, escaped in HTML
    assert first.select_one("pre.prompt b") is None
    targets = {s.select_one("pre.target").text for s in samples}
    assert any(t.startswith("(b) square") for t in targets) and any(t.startswith("It is answer") for t in targets)
    again = soup(_preview(client, url, csrf, text="x"))
    same_seed = [s["data-source-id"] for s in again.select("article.sample")]
    assert same_seed == [s["data-source-id"] for s in samples]  # the same seed draws the same instances
    shuffled = soup(_preview(client, url, csrf, text="x", seed="1"))
    assert [s["data-source-id"] for s in shuffled.select("article.sample")] != same_seed



def test_a_draft_that_does_not_render_is_said_so_once(client, db):
    """Its own problem is listed once, above the samples; the samples and the check of every instance do not
    repeat it. A problem some instances have is shown on theirs."""
    _, csrf, url = _editor(client, db)
    for text, said in (("{{ question }}", "unknown field(s): question"), ("Name it {{ raw_output", "line 1")):
        bad = soup(_preview(client, url, csrf, text=text))
        assert [said in li.text for li in bad.select("#lint li")] == [True]
        assert bad.select("article.sample") == []
        assert "does not render on any of these 8 instances: fix what is listed above" in bad.select_one(
            "#unrendered").text
        checked = soup(client.post(url + "/lint", data={"csrf_token": csrf, "lock_version": "1", "text": text,
                                                       "options_style": "paren_letters", "image_placement": "before"},
                                   headers={"HX-Request": "true"}))
        assert checked.select_one("#lint-blocked") is not None and checked.select("#lint-all li") == []
    # A template that compiles but fails on every instance, for one reason: said once, with that reason.
    everywhere = soup(_preview(client, url, csrf, text="Name {{ raw_output[99] }}."))
    assert everywhere.select_one("#lint") is None and everywhere.select("article.sample") == []
    assert "does not render on any of these 8 instances: " in everywhere.select_one("#unrendered").text
    # Failing on some instances only (those without options): each sample says whether it rendered.
    some = soup(_preview(client, url, csrf, text="Name {{ options[0] }}."))
    assert some.select_one("#unrendered") is None
    samples = some.select("article.sample")
    assert len(samples) == 8 and 0 < len([s for s in samples if s.select_one("[role=alert]")]) < 8


def test_drafts_save_with_a_version_and_a_stale_save_is_refused(client, db):
    _, csrf, url = _editor(client, db)
    form = {"csrf_token": csrf, "text": "Describe the shape.", "input_template": "", "output_template": "",
            "options_style": "dot_capitals", "image_placement": "after"}
    saved = client.post(url + "/draft", data={**form, "lock_version": "1"}, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and "Saved" in soup(saved).select_one("#draft-status").text
    assert soup(saved).select_one("#lock-version")["value"] == "2"
    stale = client.post(url + "/draft", data={**form, "text": "Mine instead", "lock_version": "1"},
                        headers={"HX-Request": "true"})
    assert stale.status_code == 409 and "Someone else saved this draft" in stale.text
    instruction = instruction_service.get_instruction(db, instruction_id=int(url.rsplit("/", 1)[1]))
    db.refresh(instruction)
    assert (instruction.draft_text, instruction.draft_options_style) == ("Describe the shape.", "dot_capitals")
    too_big = client.post(url + "/draft", data={**form, "text": "x" * (64 * 1024 + 1), "lock_version": "2"},
                          headers={"HX-Request": "true"})
    assert too_big.status_code == 422


def test_submitting_freezes_numbered_versions(client, db):
    _, csrf, url = _editor(client, db)
    empty = client.post(url + "/submit", data={"csrf_token": csrf})
    assert empty.status_code == 422
    form = {"csrf_token": csrf, "text": "v1 text", "options_style": "paren_letters", "image_placement": "before"}
    client.post(url + "/draft", data={**form, "lock_version": "1"})
    assert client.post(url + "/submit", data={"csrf_token": csrf}).status_code == 303
    client.post(url + "/draft", data={**form, "text": "v2 text", "lock_version": "2"})
    client.post(url + "/submit", data={"csrf_token": csrf})
    versions = db.exec(select(InstructionVersion).order_by(InstructionVersion.number)).all()
    # v1 was still waiting: v2 supersedes it, and v1's review is withdrawn.
    assert [(v.number, v.text, v.status) for v in versions] == [(1, "v1 text", "changes_requested"),
                                                                (2, "v2 text", "in_review")]
    assert db.exec(select(AuditEvent.action).where(AuditEvent.action == "review.withdraw")).all() == ["review.withdraw"]
    page = soup(client.get(url))
    assert [li.text.split(" ")[0] for li in page.select("#versions li")] == ["v2", "v1"]
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.action.like("instruction.%"))).all()
    assert sorted(actions) == ["instruction.create", "instruction.submit", "instruction.submit"]


def test_the_editor_submits_what_it_shows_even_before_the_autosave(client, db):
    """htmx sends the draft's fields with the submission: text typed since the last save is what gets frozen,
    in one transaction with the save; a refusal is the draft's status line, and saves nothing."""
    _, csrf, url = _editor(client, db)
    htmx = {"HX-Request": "true"}
    draft = {"csrf_token": csrf, "text": "", "input_template": "", "output_template": "",
             "options_style": "paren_letters", "image_placement": "before", "lock_version": "1"}
    refused = client.post(url + "/submit", data={**draft, "text": "  "}, headers=htmx)
    assert refused.status_code == 422
    assert "Write the instruction" in soup(refused).select_one("#draft-status").text
    broken = client.post(url + "/submit", data={**draft, "text": "Name {{ nothing }}."}, headers=htmx)
    assert broken.status_code == 422 and "nothing" in soup(broken).select_one("#draft-status").text
    instruction = instruction_service.get_instruction(db, instruction_id=int(url.rsplit("/", 1)[1]))
    db.refresh(instruction)
    assert (instruction.draft_text, instruction.lock_version) == ("", 1)  # a refused submission saved nothing

    submitted = client.post(url + "/submit", data={**draft, "text": "Typed just now."}, headers=htmx)
    assert submitted.status_code == 204 and submitted.headers["HX-Redirect"] == url
    db.refresh(instruction)
    assert (instruction.draft_text, instruction.lock_version) == ("Typed just now.", 2)
    # The autosave that was in flight with the same text lands first: the submission has nothing to save.
    again = client.post(url + "/submit", data={**draft, "text": "Typed just now."}, headers=htmx)
    assert again.status_code == 204
    # Text that differs from a draft saved since is a conflict, as a save would be; nothing is frozen.
    stale = client.post(url + "/submit", data={**draft, "text": "Older tab."}, headers=htmx)
    assert stale.status_code == 409 and "Someone else saved" in soup(stale).select_one("#draft-status").text
    versions = db.exec(select(InstructionVersion.text).order_by(InstructionVersion.number)).all()
    assert versions == ["Typed just now.", "Typed just now."]


def test_history_shows_word_level_differences_between_any_two_versions(client, db):
    import copy

    from app.qc.diffing import word_diff

    pieces = word_diff("Name the shape.", "Name the colour of the shape.")
    assert "".join(text for kind, text in pieces if kind != "added") == "Name the shape."
    assert "".join(text for kind, text in pieces if kind != "removed") == "Name the colour of the shape."
    assert [kind for kind, _ in pieces].count("removed") == 0
    assert "colour" in "".join(text for kind, text in pieces if kind == "added")

    _, csrf, url = _editor(client, db)
    form = {"csrf_token": csrf, "options_style": "paren_letters", "image_placement": "before"}
    texts = ["Name the shape.", "Name the <b>colour</b> of the shape.", "Say the shape."]
    for version, text in enumerate(texts):
        client.post(url + "/draft", data={**form, "text": text, "lock_version": str(version + 1)})
        client.post(url + "/submit", data={"csrf_token": csrf})

    def sides(pre) -> tuple[str, str]:
        """The older text (insertions dropped) and the newer one (deletions dropped), from the marked-up diff."""
        older, newer = copy.copy(pre), copy.copy(pre)
        for tag in older.select("ins"):
            tag.decompose()
        for tag in newer.select("del"):
            tag.decompose()
        return older.text, newer.text

    latest = soup(client.get(url + "/history")).select_one('.diff[data-field="text"] pre')
    assert sides(latest) == (texts[1], texts[2]) and latest.select("del") and latest.select("ins")
    chosen = soup(client.get(url + "/history?a=1&b=2")).select_one('.diff[data-field="text"] pre')
    assert sides(chosen) == (texts[0], texts[1])
    assert chosen.select("ins b") == [] and "<b>colour</b>" in "".join(i.text for i in chosen.select("ins"))
    assert client.get(url + "/history?a=9&b=2").status_code == 404


def test_pinned_instances_stay_first_across_shuffles(client, db):
    _, csrf, url = _editor(client, db)
    first = soup(_preview(client, url, csrf, text="x"))
    third = first.select("article.sample")[2]
    pinned_id = third.select_one("header a")["href"].rsplit("/", 1)[1]
    shuffled = soup(_preview(client, url, csrf, text="x", seed="5", pinned=pinned_id))
    samples = shuffled.select("article.sample")
    assert samples[0]["data-source-id"] == third["data-source-id"] and "pinned" in samples[0]["class"]
    assert len(samples) == 8 and len({s["data-source-id"] for s in samples}) == 8
    assert shuffled.select_one("#pinned")["value"] == pinned_id


def test_reviewers_comments_are_shown_beside_their_version(client, db, settings):
    from app.demo.workspace import load_demo
    from app.models import Instruction, Review, User

    email, password = load_demo(db, data_dir=settings.data_dir).credentials[1]  # the author
    login(client, email, password)
    caption = db.exec(select(Instruction).where(Instruction.status == "changes_requested")).one()
    page = soup(client.get(f"/instructions/{caption.id}"))
    comment = page.select_one("#versions .review-comment")
    assert comment["data-decision"] == "request_changes"
    # the demo's reviews go to whom the studio draws, as a team's do: the comment names whoever decided
    reviewer = db.exec(select(User.display_name).join(Review, Review.reviewer_id == User.id)
                       .where(Review.decision == "request_changes")).one()
    assert reviewer in comment.text and "Too vague" in comment.text


def test_checking_all_instances_inline_and_as_a_job(client, db, settings):
    from app.models import Job
    from worker.__main__ import Worker

    task, csrf, url = _editor(client, db)
    data = {"csrf_token": csrf, "lock_version": "1", "text": "Name it.", "output_template": "",
            "options_style": "paren_letters", "image_placement": "before"}
    inline = soup(client.post(url + "/lint", data=data, headers={"HX-Request": "true"}))
    mismatch = [li for li in inline.select("#lint-all li") if "not among the options" in li.text]
    assert inline.select_one("#lint-all")["data-checked"] == "12" and not mismatch  # odd ones answer "square"
    settings.inline_lint_limit = 5  # this task (12 instances) now counts as big
    blocked = soup(client.post(url + "/lint", data={**data, "text": "{{ nope }}"}, headers={"HX-Request": "true"}))
    assert blocked.select_one("#lint-blocked") is not None  # the draft's own error: no job to find it 12 times
    queued = soup(client.post(url + "/lint", data={**data, "text": "Name {{ raw_output[99] }}"},
                              headers={"HX-Request": "true"}))
    assert queued.select_one("#job-status")["data-status"] == "queued"
    assert Worker(settings).run_once()
    job = db.exec(select(Job).where(Job.kind == "lint")).one()
    db.refresh(job)
    assert job.status == "succeeded" and job.result["checked"] == 12
    assert job.result["issues"][0]["count"] == 12 and "fails to render" in job.result["issues"][0]["message"]
    shown = soup(client.get(f"/jobs/{job.id}/status"))
    assert shown.select_one("#lint-all li")["data-count"] == "12"


def test_the_most_similar_instructions_of_other_tasks_are_shown(client, db):
    from app.qc.overlap import most_similar

    ranked = most_similar("Count the red circles in the image.", [
        ("A / main", "Count the circles in the image."), ("B / main", "Describe the weather."),
        ("C / main", "What colour are the circles?")])
    assert [label for label, _ in ranked][:2] == ["A / main", "C / main"] and ranked[0][1] > 0.5
    assert "B / main" not in [label for label, _ in ranked]
    other = make_task(db, "OTHER+counting")
    author = make_user(db, Role.author)
    row = instruction_service.create_instruction(db, task_id=other.id, label="main", author_id=author.id)
    row.draft_text = "Count the shapes shown in the image."
    db.add(row)
    db.commit()
    _, csrf, url = _editor(client, db)
    shown = soup(_preview(client, url, csrf, text="Count the shapes in the image."))
    first = shown.select_one("#overlap li")
    assert first.text.startswith("OTHER+counting / main") and float(first["data-score"]) > 0.5


def test_a_version_whose_templates_fail_cannot_be_submitted(client, db):
    """Refused with the lint's message: a syntax error, an unknown field, or a failure on the preview sample."""
    _, csrf, url = _editor(client, db)
    form = {"csrf_token": csrf, "options_style": "paren_letters", "image_placement": "before"}
    for lock, (fields, said) in enumerate([
            ({"text": "Answer {{ question"}, "cannot be used (line 1)"),
            ({"text": "Answer {{ nope }}"}, "unknown field(s): nope"),
            ({"text": "Answer.", "output_template": "{{ raw_output[99] }}"}, "fail on instance")], start=1):
        assert client.post(url + "/draft", data={**form, **fields, "lock_version": str(lock)}).status_code in (200, 303)
        refused = client.post(url + "/submit", data={"csrf_token": csrf})
        assert refused.status_code == 422 and said in refused.text, (fields, refused.text[:300])
    assert db.exec(select(InstructionVersion)).all() == []  # nothing was frozen


def test_a_tasks_instructions_have_labels_of_their_own(client, db):
    import pytest

    from app.core.failures import Conflict

    task = make_task(db, "LABELS+task", instances=1)
    author = make_user(db, Role.author)
    labels = [instruction_service.create_instruction(db, task_id=task.id, label=label, author_id=author.id).label
              for label in ("", " ", "short")]
    assert labels == ["main", "main 2", "short"]  # none given: named, never a second "main"
    with pytest.raises(Conflict, match="already has an instruction labelled “short”"):
        instruction_service.create_instruction(db, task_id=task.id, label="short", author_id=author.id)
    csrf = login(client, author.email)
    refused = client.post(f"/tasks/{task.id}/instructions", data={"label": "main", "csrf_token": csrf},
                          follow_redirects=False)
    assert refused.status_code == 409 and "give this one another label" in refused.text
