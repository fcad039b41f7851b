"""Blind solve tests stay blind: while one runs, whoever may still answer it sees none of its targets (instance
pages and lists, a text search, the editor's preview, a model's preview, the doubt view), its author does, and
the spot check opened beside it shares none of its instances."""

from __future__ import annotations

from sqlmodel import select

from app.models import Instance, Job, ModelOutput, Role, SolveTestItem, SpotCheckItem
from app.services import blinding, checks, previews
from app.services.sampling import newest_version
from tests.factories import make_user, soup
from tests.review_helpers import approve, htmx, make_qc_task, signed_in, submit_instruction, team


def _running_solve_test(db, people, name="BLIND+animals", instances=40):
    """A task approved by its reviewer: a solve test of 4 and a spot check run on it; one solve item's instance
    gets a target nobody could guess."""
    task = make_qc_task(db, name, instances=instances, kind="short")
    instruction, version, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    solve_id = checks.open_check_of(db, checks.SOLVE, task_id=task.id)
    hidden = db.exec(select(SolveTestItem.instance_id).where(SolveTestItem.solve_test_id == solve_id)
                     .order_by(SolveTestItem.position)).first()
    instance = db.get(Instance, hidden)
    instance.raw_output = "a striped zebra"
    db.add(instance)
    db.commit()
    return task, instruction, hidden


def test_the_spot_check_opened_beside_a_solve_test_shares_none_of_its_instances(app, db):
    people = team(db)
    task, _, _ = _running_solve_test(db, people)
    solve_id = checks.open_check_of(db, checks.SOLVE, task_id=task.id)
    spot_id = checks.open_check_of(db, checks.SPOT, task_id=task.id)
    solved = set(db.exec(select(SolveTestItem.instance_id).where(SolveTestItem.solve_test_id == solve_id)))
    spotted = set(db.exec(select(SpotCheckItem.instance_id).where(SpotCheckItem.spot_check_id == spot_id)))
    assert solved and spotted and not solved & spotted


def test_a_small_task_checks_whole_after_its_solve_test_passes(app, db):
    """Where the rest of the task is smaller than the spot check's sample, it waits for the solve test."""
    people = team(db)
    task = make_qc_task(db, "BLIND+small", instances=3)
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)  # a solve test of all 3, and a spot check of 4 that would have none left
    assert checks.open_check_of(db, checks.SPOT, task_id=task.id) is None
    solver = people["r2"] if review.reviewer_id == people["r1"].id else people["r1"]
    client, csrf = signed_in(app, solver)
    while (item := soup(client.post("/review/solve/next", headers=htmx(csrf))).select_one("#item")) is not None:
        target = db.get(Instance, db.get(SolveTestItem, int(item["data-item-id"])).instance_id).raw_output
        client.post(f"/review/solve/{item['data-item-id']}/answer", headers=htmx(csrf),
                    data={"answer": target, "lock_version": item["data-lock-version"]})
    db.expire_all()
    spot = checks.get(db, checks.SPOT, check_id=checks.open_check_of(db, checks.SPOT, task_id=task.id))
    assert spot.size == 3 and spot.census  # the whole task, its rate exact

    # One problem in the 3: the rate (33%) is judged as it is, not by the interval's upper bound, and drawn so.
    checker = people["r1"] if solver is people["r2"] else people["r2"]
    client, csrf = signed_in(app, checker)
    verdicts = iter(["wrong_target", "correct", "correct"])
    while (item := soup(client.post("/review/spot/next", headers=htmx(csrf))).select_one("#item")) is not None:
        client.post(f"/review/spot/{item['data-item-id']}", headers=htmx(csrf),
                    data={"verdict": next(verdicts), "lock_version": item["data-lock-version"]})
    page = soup(client.get(f"/tasks/{task.id}"))
    summary = " ".join(page.select_one("#spot-summary").text.split())
    assert "judged on its exact rate: 33.3% (max 10%)" in summary and "upper bound" not in summary
    drawn = soup(client.get("/")).select_one(f'#task-quality tr[data-task="{task.name}"] svg.interval')
    assert "no sampling error" in drawn["aria-label"] and drawn.select("circle.range-bad") and not drawn.select(
        "line.range-bad")


def test_a_possible_solver_sees_no_target_of_a_running_solve_test_and_its_author_does(app, db):
    people = team(db)
    task, instruction, hidden = _running_solve_test(db, people)
    solver = make_user(db, Role.reviewer)
    client, _ = signed_in(app, solver)
    page = soup(client.get(f"/instances/{hidden}"))
    assert page.select_one("#raw-output") is None and page.select_one("#raw-output-hidden") is not None
    assert "zebra" not in page.text
    grid = soup(client.get(f"/tasks/{task.id}/instances?q=zebra"))
    assert grid.select_one(f'[data-instance-id="{hidden}"]') is None  # a search of targets is no oracle
    question = db.get(Instance, hidden).input_text  # its own words still find it (a page holds 3 here)
    listed = soup(client.get(f"/tasks/{task.id}/instances", params={"q": question}))
    card = listed.select_one(f'[data-instance-id="{hidden}"]')
    assert card is not None and card.select_one(".target-hidden") is not None and "zebra" not in card.text

    author, _ = signed_in(app, people["author"])
    assert soup(author.get(f"/instances/{hidden}")).select_one("#raw-output").text == "a striped zebra"
    assert soup(author.get(f"/tasks/{task.id}/instances?q=zebra")).select_one(f'[data-instance-id="{hidden}"]')


def test_the_editor_preview_never_renders_a_hidden_instance_for_a_possible_solver(app, db):
    """Any template can print the target: a reviewer pinning the hidden instance under `{{ raw_output }}`."""
    people = team(db)
    task, instruction, hidden = _running_solve_test(db, people)
    solver = make_user(db, Role.reviewer)
    client, csrf = signed_in(app, solver)
    form = {"text": "Echo", "input_template": "{{ raw_output }}", "output_template": "", "lock_version": "1",
            "options_style": "paren_letters", "image_placement": "before", "pinned": str(hidden)}
    preview = client.post(f"/instructions/{instruction.id}/preview", headers=htmx(csrf), data=form)
    assert preview.status_code == 200
    assert "zebra" not in preview.text and len(soup(preview).select("article.sample")) > 0
    lint = client.post(f"/instructions/{instruction.id}/lint", headers=htmx(csrf),
                       data={**form, "output_template": "{% if 'zebra' in raw_output %}{{ nope }}{% endif %}"})
    assert lint.status_code == 200 and "undefined" not in lint.text  # the instance that would fail is left out


def test_a_models_preview_leaves_out_what_the_viewer_must_not_see(app, db):
    people = team(db)
    task, instruction, hidden = _running_solve_test(db, people)
    version = newest_version(db, task_id=task.id)
    job = Job(kind="preview", payload={"task_id": task.id, "instruction_version_id": version.id, "model_id": 1},
              status="succeeded")
    db.add(job)
    db.flush()
    in_the_test = select(SolveTestItem.instance_id)  # all hidden from whoever may still answer them
    others = db.exec(select(Instance.id).where(Instance.task_id == task.id, Instance.id.not_in(in_the_test))
                     .order_by(Instance.id).limit(2)).all()
    db.add_all(ModelOutput(job_id=job.id, instance_id=instance_id, instruction_version_id=version.id,
                           model_name="tiny", output="a striped zebra") for instance_id in [hidden, *others])
    db.commit()
    solver = make_user(db, Role.reviewer)
    everything = previews.results(db, job=job)
    seen = previews.results(db, job=job, blindfold=blinding.for_user(db, user_id=solver.id, may_solve=True))
    assert {row.instance.id for row in everything} == {hidden, *others}
    assert {row.instance.id for row in seen} == set(others)
    assert blinding.for_user(db, user_id=people["author"].id, may_solve=True).hides(hidden) is False
    assert blinding.for_user(db, user_id=solver.id, may_solve=False).hides(hidden) is False
