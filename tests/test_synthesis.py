"""Synthesis: new conversations about a task's instances, through an OpenAI-compatible endpoint (against a server
the tests start, which checks every request and can answer 429, 500, late or with garbage), through OpenAI Batch
files, and with the tiny model on the worker; each reply checked before it is stored, with its origin."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from sqlmodel import select

from app.core.config import Settings
from app.core.failures import Forbidden, Invalid
from app.demo.workspace import load_demo
from app.models import (
    AuditEvent,
    ConversationItem,
    ConversationPool,
    ConversationReview,
    Image,
    Instance,
    Job,
    JobStatus,
    Role,
    Task,
)
from app.schemas.stage2 import SynthesizeIn
from app.services.synthesis import jobs as synthesis_jobs
from app.services.synthesis import prompts
from tests.factories import make_user
from tests.openai_server import Behaviour, OpenAIServer, _completion, conversation_text

pytest.importorskip("openai", reason="the worker's dependencies (requirements-worker.txt) are not installed")
SECRET = "sk-test-never-shown-3f9a"
# What the endpoint does (retries, refusals, caps) does not depend on the database; what is stored, and how, is
# tested on both.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, page_size=3,
                    synthesis_endpoints=tmp_path / "endpoints.yaml", _env_file=None)


@pytest.fixture
def demo(db, settings):
    load_demo(db, data_dir=settings.data_dir)
    task = db.exec(select(Task).join(Instance, Instance.task_id == Task.id).where(Instance.image_id.is_not(None))
                   .limit(1)).first()
    return {"task": task, "curator": make_user(db, Role.admin)}


@pytest.fixture
def server(settings, monkeypatch):
    with OpenAIServer(Behaviour()) as running:
        monkeypatch.setenv("TEST_VLLM_KEY", SECRET)
        _endpoints(settings, running)
        yield running


def _endpoints(settings, server, **overrides) -> None:
    values = {"base_url": server.base_url, "model": "test-vlm", "api_key_env": "TEST_VLLM_KEY", "timeout_s": 2,
              "max_retries": 3, "concurrency": 8, **overrides}
    settings.synthesis_endpoints.write_text(orjson.dumps({"local-vllm": values}).decode())  # JSON is YAML


def _synthesize(db, settings, demo, *, count=6, **fields) -> Job:
    from worker.__main__ import Worker

    data = SynthesizeIn(pool=fields.pop("pool", "synthesized"), task_id=demo["task"].id, count=count,
                        **{"backend": "endpoint", "endpoint": "local-vllm", **fields})
    job = synthesis_jobs.start(db, data, actor_id=demo["curator"].id, endpoints_file=settings.synthesis_endpoints)
    worker = Worker(settings)
    while worker.run_once():  # a failed attempt is queued again until the job's attempts are spent
        pass
    return db.get(Job, job.id, populate_existing=True)


def _stored(db, pool="synthesized") -> list[ConversationItem]:
    return list(db.exec(select(ConversationItem).join(ConversationPool).where(ConversationPool.name == pool)
                        .order_by(ConversationItem.position)))


def test_the_endpoint_gets_well_formed_requests_and_each_conversation_keeps_its_origin_unreviewed(
        db, settings, demo, server):
    job = _synthesize(db, settings, demo, count=6, seed=3)
    assert job.status == JobStatus.succeeded, job.error
    assert server.behaviour.problems == []  # model, system + user, images as decodable data URLs, max_tokens
    assert len(server.behaviour.requests) == 6 and server.behaviour.authorizations == {f"Bearer {SECRET}"}
    assert all(any(part["type"] == "image_url" for part in body["messages"][1]["content"])
               for body in server.behaviour.requests)
    items = _stored(db)
    assert [item.position for item in items] == list(range(6)) and job.result["stored"] == 6
    prompt = prompts.newest_approved(db, kind="conversation")
    for item in items:
        assert item.kind == "conversation" and item.image_id is not None
        assert item.conversations[0]["value"].startswith("<image>\n") and item.conversations[-1]["from"] == "gpt"
        origin = item.origin
        assert origin["generator"] == {"backend": "endpoint", "name": "local-vllm",
                                       "host": server.base_url.split("/")[2], "model": "test-vlm"}
        assert origin["prompt"] == {"id": prompt.id, "kind": "conversation", "version": 1}
        assert origin["sampling"] == {"temperature": 0.7, "top_p": 1.0, "max_tokens": 1024}
        image = db.get(Image, item.image_id)
        assert origin["context"]["image_sha256"] == image.sha256 and "Dataset task" in origin["context"]["text"]
        assert origin["job_id"] == job.id and origin["at"] and origin["tokens"]["completion"] > 0
    reviews = db.exec(select(ConversationReview).where(
        ConversationReview.conversation_id.in_([item.id for item in items]))).all()
    assert len(reviews) == 6 and not any(review.decided for review in reviews)
    # The key is never stored: not in the job, its result, its error or the audit log.
    events = db.exec(select(AuditEvent)).all()
    assert SECRET not in orjson.dumps([job.payload, job.result, job.error, [e.after for e in events]]).decode()
    # The same request again adds nothing: every conversation is in the pool already.
    again = _synthesize(db, settings, demo, count=6, seed=3)
    assert again.result["skipped"] == 6 and again.result["sent"] == 0 and len(_stored(db)) == 6


@ONE_DATABASE
def test_429_500_and_a_timeout_are_retried_and_concurrency_stays_within_the_limit(db, settings, demo, server):
    server.behaviour.script.extend(["429", "500", "timeout"])
    server.behaviour.timeout_s = 3
    _endpoints(settings, server, timeout_s=0.5, concurrency=2)
    job = _synthesize(db, settings, demo, count=5)
    assert job.status == JobStatus.succeeded, job.error
    assert len(_stored(db)) == 5 and len(server.behaviour.requests) == 8  # five, and three retried
    assert server.behaviour.most_in_flight <= 2


def test_an_endpoint_that_stays_down_fails_the_job_naming_it_keeping_what_it_wrote_and_a_rerun_continues(
        db, settings, demo, server):
    server.behaviour.script.extend(["ok", "ok", "ok"] + ["500"] * 20)
    _endpoints(settings, server, max_retries=1, concurrency=1)
    job = _synthesize(db, settings, demo, count=6)
    assert job.status == JobStatus.failed
    assert "local-vllm" in job.error and server.base_url.split("/")[2] in job.error and "test-vlm" in job.error
    assert "HTTP 500" in job.error and SECRET not in job.error
    assert len(_stored(db)) == 3
    server.behaviour.script.clear()
    rerun = _synthesize(db, settings, demo, count=6)
    assert rerun.status == JobStatus.succeeded and rerun.result["skipped"] == 3 and rerun.result["stored"] == 3
    assert len(_stored(db)) == 6 and len({item.source_id for item in _stored(db)}) == 6


@ONE_DATABASE
def test_an_endpoint_that_echoes_the_key_in_its_error_does_not_put_it_in_the_job(db, settings, demo, server):
    server.behaviour.script.extend(["echo_500"] * 30)
    _endpoints(settings, server, max_retries=0, concurrency=1)
    job = _synthesize(db, settings, demo, count=2)
    assert job.status == JobStatus.failed and "upstream refused Bearer [its key]" in job.error
    assert SECRET not in job.error


def test_each_part_of_a_reply_is_checked_before_it_becomes_a_conversation():
    from app.services.pools import BUDGET
    from app.services.synthesis.replies import Refused, conversation

    pair = {"question": "What is it?", "answer": "A bus."}
    fenced = "```json\n" + orjson.dumps({"turns": [pair]}).decode() + "\n```"
    assert conversation(fenced, has_image=True, budget=BUDGET) == [
        {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A bus."}]
    smuggled = orjson.dumps({"turns": [{"question": "<image>Again <image>?", "answer": "Yes <image>."}]}).decode()
    assert conversation(smuggled, has_image=False, budget=BUDGET)[0]["value"] == "Again ?"
    for reply, reason in ((None, "empty"), ("Sure! Here you go.", "no JSON object"), ("{'turns': 1}", "does not parse"),
                          (orjson.dumps({"turns": [pair] * 11}).decode(), "more than 10"),
                          (orjson.dumps({"turns": [{"question": "Q?"}]}).decode(), "pair 1 needs"),
                          (orjson.dumps({"turns": [{"question": "Q?", "answer": "A\u0000"}]}).decode(), "NUL"),
                          (orjson.dumps({"turns": [{"question": "Q?", "answer": "As an AI, I cannot."}]}).decode(),
                           "refuses"),
                          (orjson.dumps({"turns": [{"question": "Q?", "answer": "word " * 9000}]}).decode(),
                           "longer than the trainer's length")):
        with pytest.raises(Refused, match=reason):
            conversation(reply, has_image=True, budget=BUDGET)
    dog = orjson.dumps({"turns": [{"question": "What is on the bench?", "answer": "A dog sleeps on it."}]}).decode()
    with pytest.raises(Refused, match="names “dog”, which its source never mentions"):
        conversation(dog, has_image=True, budget=BUDGET, blind_source="A park bench in the sun.")
    assert conversation(dog, has_image=True, budget=BUDGET, blind_source="A dog on a park bench.")
    assert conversation(dog, has_image=True, budget=BUDGET)  # a writer that saw the image: a finding, not a refusal


@ONE_DATABASE
def test_replies_that_are_not_conversations_are_refused_with_their_reasons_never_stored(db, settings, demo, server):
    server.behaviour.script.extend(["garbage", "not_json", "refusal"])
    _endpoints(settings, server, concurrency=1)
    job = _synthesize(db, settings, demo, count=5)
    assert job.status == JobStatus.succeeded, job.error
    assert job.result["refused"] == 3 and job.result["stored"] == 2 and len(_stored(db)) == 2
    reasons = " | ".join(refusal["reason"] for refusal in job.result["refusals"])
    assert "not a chat completion" in reasons and "refuses or apologises" in reasons


@ONE_DATABASE
def test_caps_on_requests_and_tokens_stop_a_job_cleanly(db, settings, demo, server):
    _endpoints(settings, server, concurrency=1)
    job = _synthesize(db, settings, demo, count=6, max_requests=2)
    assert job.status == JobStatus.succeeded and job.result["sent"] == 2 and len(_stored(db)) == 2
    assert "2 requests" in job.result["capped"]
    capped = _synthesize(db, settings, demo, count=6, max_tokens_total=1, pool="tokens")
    assert capped.result["sent"] == 1 and "1 tokens" in capped.result["capped"]
    exact = _synthesize(db, settings, demo, count=3, max_requests=3, pool="exact")
    assert exact.result["sent"] == 3 and exact.result.get("capped") is None  # nothing was left unsent


def test_only_a_configured_endpoint_and_an_approved_prompt_of_the_kind_may_be_used(db, settings, demo, server):
    data = {"pool": "p", "task_id": demo["task"].id, "backend": "endpoint"}
    with pytest.raises(Invalid, match="local-vllm"):
        synthesis_jobs.start(db, SynthesizeIn(**data, endpoint="elsewhere"), actor_id=None,
                             endpoints_file=settings.synthesis_endpoints)
    with pytest.raises(Invalid, match="none is configured"):
        synthesis_jobs.start(db, SynthesizeIn(**data, endpoint="local-vllm"), actor_id=None, endpoints_file=None)
    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    draft = prompts.propose(db, kind="detail", text="Describe the image.", author_id=author.id)
    assert draft.version == 2 and draft.status == "draft"
    with pytest.raises(Invalid, match="approved"):
        synthesis_jobs.start(db, SynthesizeIn(**data, endpoint="local-vllm", conversation_kind="detail",
                                              prompt_id=draft.id),
                             actor_id=None, endpoints_file=settings.synthesis_endpoints)
    with pytest.raises(Forbidden):
        prompts.decide(db, prompt_id=draft.id, approve=True, reviewer_id=author.id)
    prompts.decide(db, prompt_id=draft.id, approve=True, reviewer_id=reviewer.id)
    with pytest.raises(Invalid, match="writes detail conversations, not conversation"):
        synthesis_jobs.start(db, SynthesizeIn(**data, endpoint="local-vllm", prompt_id=draft.id), actor_id=None,
                             endpoints_file=settings.synthesis_endpoints)
    assert prompts.newest_approved(db, kind="detail").id == draft.id
    job = _synthesize(db, settings, demo, count=2, conversation_kind="detail")
    assert {item.origin["prompt"]["version"] for item in _stored(db)} == {2} and job.result["stored"] == 2
    assert server.behaviour.requests[0]["messages"][0]["content"] == "Describe the image."


@ONE_DATABASE
def test_an_endpoints_file_with_a_mistake_says_where_and_a_key_in_the_url_is_refused(settings, tmp_path):
    from app.services.synthesis.endpoints import EndpointConfigError, load_endpoints

    path = tmp_path / "endpoints.yaml"
    path.write_text("good:\n  base_url: http://gpu:8000/v1\n  model: m\n"
                    "bad:\n  base_url: http://u:pw@gpu/v1\n  model: m\n")
    with pytest.raises(EndpointConfigError, match=r"endpoints.yaml: endpoint bad: base_url: .*credentials"):
        load_endpoints(path)
    path.write_text("good:\n  base_url: ftp://gpu\n  model: m\n")
    with pytest.raises(EndpointConfigError, match="endpoint good: base_url"):
        load_endpoints(path)
    path.write_text("good:\n  base_url: http://gpu:8000/v1/\n  model: m\n  concurrency: 4\n")
    assert load_endpoints(path)["good"].host == "gpu:8000" and load_endpoints(path)["good"].concurrency == 4
    assert load_endpoints(None) == {}


def test_a_batch_round_trips_through_the_openai_batch_format_and_bad_output_lines_are_reported(
        app, db, settings, demo, tmp_path):
    from app.core.storage import open_media
    from app.schemas.stage2 import Sampling
    from app.services.synthesis import offline

    prompt = prompts.newest_approved(db, kind="complex_reasoning")
    requests_file = tmp_path / "requests.jsonl"
    lines = offline.write_requests(db, open_media(settings.media_location), requests_file, task_id=demo["task"].id,
                                   prompt=prompt, count=5, seed=9, model="Qwen/Qwen2.5-VL-7B-Instruct",
                                   sampling=Sampling(temperature=0.2, max_tokens=512))
    written = [orjson.loads(line) for line in requests_file.read_text().splitlines()]
    assert lines == 5 and all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in written)
    assert all(line["body"]["model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and line["body"]["max_tokens"] == 512
               for line in written)
    assert all(line["body"]["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/")
               for line in written)
    # The output, as `vllm run-batch` writes it: one good line per request but the last, then what goes wrong.
    out = []
    for line in written[:4]:
        words = line["body"]["messages"][1]["content"][1]["text"]
        out.append({"id": "r", "custom_id": line["custom_id"], "error": None, "response": {
            "status_code": 200, "request_id": "x", "body": _completion("qwen", conversation_text(words), 900)}})
    out.append({"id": "r", "custom_id": written[4]["custom_id"], "response": None,
                "error": {"code": "server_error", "message": "CUDA out of memory"}})
    out.append({"id": "r", "custom_id": "p1-i888888-s9", "response": {"status_code": 200, "body": {}}})
    out.append({"id": "r", "custom_id": written[0]["custom_id"], "response": {"status_code": 200, "body": {}}})
    # A request made by another studio (its instance is not here), run with the rest.
    foreign = {**written[0], "custom_id": "p1-i999999-s9"}
    with requests_file.open("a") as more:
        more.write(orjson.dumps(foreign).decode() + "\n")
    out.append({"id": "r", "custom_id": "p1-i999999-s9", "response": {
        "status_code": 200, "body": _completion("qwen", conversation_text("a bus"), 900)}})
    output_file = tmp_path / "output.jsonl"
    output_file.write_text("\n".join(orjson.dumps(line).decode() for line in out) + "\n{not json\n")
    report = offline.import_output(app.state.engine, pool="batch", requests_file=requests_file,
                                   output_file=output_file, actor_id=None)
    assert report.stored == 4 and report.refused == 0
    bad = {line.line: line.reason for line in report.bad_lines}
    assert set(bad) == {5, 6, 7, 8, 9}
    assert "CUDA out of memory" in bad[5] and "not in the requests file" in bad[6] and "also on line 1" in bad[7]
    assert "names no instance" in bad[8] and "not JSON" in bad[9]
    items = _stored(db, "batch")
    assert len(items) == 4 and {item.kind for item in items} == {"complex_reasoning"}
    assert all(item.origin["generator"] == {"backend": "batch", "name": "Qwen/Qwen2.5-VL-7B-Instruct",
                                            "host": None, "model": "qwen"} for item in items)
    assert all(item.origin["sampling"] == {"temperature": 0.2, "top_p": 1.0, "max_tokens": 512} for item in items)
    again = offline.import_output(app.state.engine, pool="batch", requests_file=requests_file,
                                  output_file=output_file, actor_id=None)
    assert again.stored == 0 and again.skipped == 4 and len(_stored(db, "batch")) == 4


def test_synthesized_and_imported_conversations_keep_to_pools_of_their_own(app, db, settings, demo, server, tmp_path):
    from tests.test_pools import _conversation, _pool

    _pool(app, settings, tmp_path, [_conversation(k, image=False) for k in range(2)])
    imported = db.exec(select(ConversationPool).where(ConversationPool.name == "instruct")).one()
    with pytest.raises(Invalid, match="imported file"):
        _synthesize(db, settings, demo, count=1, pool=imported.name)
    _synthesize(db, settings, demo, count=1)
    from app.core.storage import open_media
    from app.ingest.conversations import ConversationImporter, PoolOptions, PoolRefused

    source = tmp_path / "more.jsonl"
    source.write_text(orjson.dumps({"id": "1", "conversations": [{"from": "human", "value": "Hi?"},
                                                                  {"from": "gpt", "value": "Hello."}]}).decode())
    with pytest.raises(PoolRefused, match="synthesized"):
        ConversationImporter(app.state.engine, open_media(settings.media_location),
                             PoolOptions(pool="synthesized")).run(source)


@ONE_DATABASE
def test_the_tiny_model_writes_in_batches_and_its_noise_is_refused_with_reasons(app, db, settings, demo, tiny_model):
    from worker.__main__ import Worker

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    admin = demo["curator"]
    from app.services import registered_models

    model = registered_models.register(db, name="tiny", path=str(tiny_model), dtype="float32", device="cpu",
                                       actor_id=admin.id)
    data = SynthesizeIn(pool="local", task_id=demo["task"].id, count=5, backend="model", model_id=model.id,
                        batch_size=4, sampling={"temperature": 0.0, "max_tokens": 16})
    job = synthesis_jobs.start(db, data, actor_id=admin.id, endpoints_file=None)
    assert Worker(settings).run_once() is True
    job = db.get(Job, job.id, populate_existing=True)
    assert job.status == JobStatus.succeeded, job.error
    result = job.result
    assert result["sent"] == 5 and result["stored"] + result["refused"] == 5 and result["completion_tokens"] > 0
    assert result["refused"] == 5 and all("JSON" in r["reason"] or "empty" in r["reason"] for r in result["refusals"])
    assert result["generator"] == {"backend": "model", "name": "tiny", "model": "tiny"}



@ONE_DATABASE
def test_the_synthesis_page_starts_a_job_whose_page_names_the_endpoint_and_counts_requests_and_tokens(
        app, db, settings, demo, server):
    from tests.factories import soup
    from tests.review_helpers import signed_in
    from worker.__main__ import Worker

    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    client, csrf = signed_in(app, author)
    page = soup(client.get("/synthesis"))
    assert [o["value"] for o in page.select("select[name=generator] option")] == ["endpoint:local-vllm"]
    assert page.select_one("#synthesis-form button[type=submit]").text == "Start writing"
    assert client.post("/synthesis/prompts", data={"csrf_token": csrf, "kind": "conversation",
                                                   "text": "Ask and answer."}).status_code == 303
    draft = soup(client.get("/synthesis")).select_one("details[open].prompt-version")
    assert "version 2" in draft.text and draft.select_one("form") is None  # its author cannot decide it
    reviewing, reviewer_csrf = signed_in(app, reviewer)
    assert reviewing.post("/synthesis", data={"csrf_token": reviewer_csrf}).status_code == 403  # editors start jobs
    prompt_id = int(draft["id"].split("-")[1])
    refused = reviewing.post(f"/synthesis/prompts/{prompt_id}/decision",
                             data={"csrf_token": reviewer_csrf, "decision": "reject"})
    assert refused.status_code == 422 and "Say why" in soup(refused).select_one(".form-message").text
    assert reviewing.post(f"/synthesis/prompts/{prompt_id}/decision", data={
        "csrf_token": reviewer_csrf, "decision": "approve"}).status_code == 303
    bad = client.post("/synthesis", data={"csrf_token": csrf, "task_id": demo["task"].id, "pool": "web",
                                          "generator": "endpoint:local-vllm", "count": "0"})
    assert bad.status_code == 422 and soup(bad).select_one("#count-error") is not None
    started = client.post("/synthesis", data={
        "csrf_token": csrf, "task_id": demo["task"].id, "conversation_kind": "conversation", "pool": "web",
        "generator": "endpoint:local-vllm", "count": "3", "seed": "1", "temperature": "0.3", "max_tokens": "256"})
    assert started.status_code == 303
    job_page = started.headers["location"]
    host = server.base_url.split("/")[2]
    assert soup(client.get(job_page)).select_one("#job-endpoint").text == f"test-vlm at {host}"
    worker = Worker(settings)
    while worker.run_once():
        pass
    report = soup(client.get(job_page)).select_one("#synthesis-report")
    assert report.select_one("[data-field=stored]").text.startswith("3") and host in report.text
    assert report.select_one("[data-field=sent]").text == "3" and "in," in report.select_one("[data-field=tokens]").text
    assert {b["temperature"] for b in server.behaviour.requests} == {0.3}
    assert {b["messages"][0]["content"] for b in server.behaviour.requests} == {"Ask and answer."}
    assert SECRET not in client.get(job_page).text
    written = db.exec(select(ConversationPool).where(ConversationPool.name == "web")).one()
    assert len(soup(client.get(f"/pools/{written.id}?kind=conversation")).select("#conversations tbody tr")) == 3
    assert soup(client.get(f"/pools/{written.id}?kind=detail")).select_one("#no-conversation") is not None
    origin = soup(client.get(f"/pools/{written.id}/conversations/0")).select_one("#conversation-origin").text
    assert f"test-vlm at {host}" in origin and "conversation, version 2" in origin and "temperature 0.3" in origin
    assert "the image, and the dataset's words" in origin and "Dataset task" in origin


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the services it calls are tested on both
def test_the_command_line_writes_a_batch_and_imports_its_output(db, settings, demo, tmp_path):
    from tests.test_cli import run

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")},
           "STUDIO_DATABASE_URL": settings.resolved_database_url, "STUDIO_DATA_DIR": str(settings.data_dir),
           "STUDIO_MODE": "test"}
    requests_file, output_file = tmp_path / "batch" / "requests.jsonl", tmp_path / "output.jsonl"
    written = run(["synthesis", "requests", "--task", demo["task"].name, "--out", str(requests_file), "--model",
                   "llava-hf/llava-1.5-7b-hf", "--count", "3", "--kind", "detail", "--text-only"], env)
    assert written.returncode == 0, written.stderr
    assert "3 requests written" in written.stdout and "vllm run-batch" in written.stdout
    lines = [orjson.loads(line) for line in requests_file.read_text().splitlines()]
    assert all(isinstance(line["body"]["messages"][1]["content"], str) for line in lines)  # no image: text only
    output_file.write_text("\n".join(orjson.dumps({"custom_id": line["custom_id"], "response": {
        "status_code": 200, "body": _completion("llava", conversation_text(line["body"]["messages"][1]["content"]),
                                                300)}}).decode() for line in lines) + "\nnot json\n")
    imported = run(["synthesis", "import", "--pool", "cluster", "--requests", str(requests_file), "--output",
                    str(output_file), "--host", "slurm-a100"], env)
    assert imported.returncode == 0, imported.stderr
    assert "3 conversations stored in cluster" in imported.stdout and "line 4: not JSON" in imported.stderr
    items = _stored(db, "cluster")
    assert len(items) == 3 and all(item.origin["context"]["image_sha256"] is None for item in items)
    assert {item.origin["generator"]["host"] for item in items} == {"slurm-a100"}
    unknown = run(["synthesis", "requests", "--task", "no-such-task", "--out", str(requests_file), "--model", "m"],
                  env)
    assert unknown.returncode == 1 and "do not exist" in unknown.stderr and "Traceback" not in unknown.stderr
