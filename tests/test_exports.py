"""Building dataset versions: the files, the trainer's contract, determinism, and what is left out."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.core.storage import MediaStore
from app.demo.source_files import TASKS
from app.demo.workspace import load_demo
from app.exports.build import BuildError, build
from app.exports.contract import check_file, check_record, pair_checker
from app.exports.files import ascii_json, hash_file
from app.exports.validate import validate_version
from app.models import Image, Instance, Task
from app.prompts.tokens import estimate
from app.schemas.export_spec import ExportSpec
from tests.factories import soup
from tests.review_helpers import approve, make_qc_task, submit_instruction, team

SHAPES = TASKS["SHAPES+shape_classification"][2]  # the demo's instances of its accepted task


def _build(app, settings, spec, name="v1", folder="out", **options):
    return build(app.state.engine, spec=spec, destination=settings.data_dir / "exports" / folder,
                 media=MediaStore(settings.media_dir), count_tokens=estimate, name=name, **options)


def _approved(db, people, name, **fields):
    task = make_qc_task(db, name, **fields)
    _, version, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    return task, version


def test_a_version_holds_contract_clean_files_that_match_their_manifest(app, db, settings):
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    people = team(db)
    text_only, _ = _approved(db, people, "TEXT+questions", instances=10, kind="short")
    spec = ExportSpec(task_ids=[shapes.id, text_only.id], seed=3, validation_ratio=0.2)
    manifest = _build(app, settings, spec)
    out = settings.data_dir / "exports" / "out"
    records = json.loads((out / "stage1.json").read_text(encoding="ascii"))
    val = json.loads((out / "val.json").read_text(encoding="ascii"))
    assert records and val and len(records) + len(val) == SHAPES - 1 + 10  # the demo flagged one shape instance
    assert list(check_file(records + val, image_folder=out / "images")) == []
    with_image = [r for r in records if "image" in r]
    assert with_image and all(r["conversations"][0]["value"].count("<image>") == 1 for r in with_image)
    text = [r for r in records if r["task_name"] == "TEXT+questions"]
    assert text and all("image" not in r and "<image>" not in r["conversations"][0]["value"] for r in text)
    assert len({r["id"] for r in records + val}) == len(records) + len(val)
    task, instance_id, version = records[0]["id"].split("/")
    assert db.get(Instance, int(instance_id)).task_id == db.exec(select(Task.id).where(Task.name == task)).one()
    assert [json.loads(line) for line in (out / "stage1.jsonl").read_text().splitlines()] == records
    for name, entry in manifest["files"].items():
        assert hash_file(out / name) == {"bytes": entry["bytes"], "sha256": entry["sha256"]}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert list(validate_version(out)) == []
    assert "SHAPES+shape_classification" in (out / "README.md").read_text()
    assert "--learning_rate 2e-5" in (out / "train_stage1.sh").read_text()



def test_each_record_is_the_same_bytes_as_its_ascii_json(app, db, settings):
    """The export assembles a record's JSON around its encoded strings: it must be what ascii_json would write."""
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    people = team(db)
    awkward, _ = _approved(db, people, "TEXT+awkward", instances=6, kind="free")
    for k, instance in enumerate(db.exec(select(Instance).where(Instance.task_id == awkward.id))):
        instance.input_text = f'Say "hi" {k}\\ back\tslash, café ✓ \U0001f600 \u2028 {{"a": [1]}}'
        instance.raw_output = f"ünïcode \\ \"quoted\" \x01 control {k}"
        db.add(instance)
    db.commit()
    _build(app, settings, ExportSpec(task_ids=[shapes.id, awkward.id], seed=1, validation_ratio=0.3))
    out = settings.data_dir / "exports" / "out"
    lines = (out / "stage1.jsonl").read_bytes().splitlines()
    assert any(b'"image":' in line for line in lines) and any(b"\\ud83d\\ude00" in line for line in lines)
    for line in lines:
        assert line == ascii_json(json.loads(line))
    for record in json.loads((out / "val.json").read_text()):
        assert ascii_json(record) in (out / "val.json").read_bytes()


def test_the_same_spec_builds_the_same_bytes_and_a_different_seed_does_not(app, db, settings):
    people = team(db)
    task, _ = _approved(db, people, "VQA+colours", instances=40)
    spec = ExportSpec(task_ids=[task.id], seed=9, per_task_cap=25, validation_ratio=0.1)
    first = _build(app, settings, spec, folder="a")
    second = _build(app, settings, spec, folder="b")
    other = _build(app, settings, spec.model_copy(update={"seed": 10}), folder="c")
    assert first["files"] == second["files"]
    assert first["files"]["stage1.json"]["sha256"] != other["files"]["stage1.json"]["sha256"]
    assert sum(first["counts"]["VQA+colours"].values()) == 25


def test_records_that_break_the_contract_are_left_out_and_named(app, db, settings):
    people = team(db)
    task, _ = _approved(db, people, "BROKEN+targets", instances=6, kind="short")
    bad = db.exec(select(Instance).where(Instance.task_id == task.id)).all()
    bad[0].raw_output = "an answer with </s> inside"
    bad[1].raw_output = "   "
    db.add_all(bad[:2])
    db.commit()
    manifest = _build(app, settings, ExportSpec(task_ids=[task.id]))
    assert manifest["excluded"]["records"] == 2
    reasons = " ".join(manifest["excluded"]["reasons"])
    assert "template marker" in reasons and "empty value" in reasons
    assert manifest["counts"]["BROKEN+targets"]["train"] == 4


def _image_tasks(db, people) -> list[int]:
    """The demo's approved shapes task and a second approved task whose instances show the same images."""
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    again, _ = _approved(db, people, "SHAPES+again", instances=12)
    image_ids = db.exec(select(Instance.image_id).where(Instance.task_id == shapes.id, Instance.image_id.is_not(None))
                        .order_by(Instance.id)).all()
    for instance, image_id in zip(db.exec(select(Instance).where(Instance.task_id == again.id)).all(), image_ids,
                                  strict=False):
        instance.image_id = image_id
        db.add(instance)
    db.commit()
    return [shapes.id, again.id]


def test_a_build_over_several_processes_gives_the_same_bytes_as_one(app, db, settings):
    load_demo(db, data_dir=settings.data_dir)  # images shared across tasks: linked by several processes at once
    people = team(db)
    broken, _ = _approved(db, people, "BROKEN+targets", instances=6, kind="short")
    bad = db.exec(select(Instance).where(Instance.task_id == broken.id)).first()
    bad.raw_output = "an answer with </s> inside"
    db.add(bad)
    db.commit()
    text_only, _ = _approved(db, people, "TEXT+questions", instances=30, kind="free")
    spec = ExportSpec(task_ids=[broken.id, text_only.id] + _image_tasks(db, people), seed=5, validation_ratio=0.25)
    seen = []
    one = _build(app, settings, spec, folder="one", processes=1)
    three = _build(app, settings, spec, folder="three", processes=3, on_progress=lambda *step: seen.append(step))
    assert one["files"] == three["files"] and one["images"] == three["images"] > 0
    assert (one["counts"], one["excluded"], one["instruction_versions"]) == \
        (three["counts"], three["excluded"], three["instruction_versions"])
    assert three["excluded"]["records"] == 1 and three["files"]["val.json"]["records"] > 0
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and any("records" in message for _, message in seen)
    out = settings.data_dir / "exports" / "three"
    assert sorted(path.name for path in out.iterdir() if path.name.startswith(".")) == []  # no part left behind
    assert list(validate_version(out)) == []


def test_a_build_stops_its_processes_when_one_fails_or_the_job_is_cancelled(app, db, settings):
    import multiprocessing

    from app.exports.parallel import PartFailed

    load_demo(db, data_dir=settings.data_dir)
    task_ids = _image_tasks(db, team(db))
    spec = ExportSpec(task_ids=task_ids)

    class Cancelled(Exception):
        pass

    def cancel(fraction, message):
        raise Cancelled(message)

    with pytest.raises(Cancelled):
        _build(app, settings, spec, folder="cancelled", processes=2, on_progress=cancel)
    assert multiprocessing.active_children() == [] and not (settings.data_dir / "exports" / "cancelled").exists()

    lost = db.exec(select(Image.sha256).join(Instance, Instance.image_id == Image.id)
                   .where(Instance.task_id == task_ids[-1])).first()
    MediaStore(settings.media_dir).path_for(lost).unlink()  # the media store lost an image a record needs
    with pytest.raises(PartFailed, match=f"part \\d of the build failed:(.|\\n)*{lost[:16]}"):
        _build(app, settings, spec, folder="failed", processes=2)
    assert multiprocessing.active_children() == [] and not (settings.data_dir / "exports" / "failed").exists()


def test_a_task_without_an_approved_instruction_cannot_be_built(app, db, settings):
    task = make_qc_task(db, "NEW+task", instances=2)
    with pytest.raises(BuildError, match="NEW\\+task: needs an approved instruction"):
        _build(app, settings, ExportSpec(task_ids=[task.id]))
    assert not (settings.data_dir / "exports" / "out").exists()  # nothing half-built is visible


def test_the_contract_catches_what_the_trainer_would_mangle():
    good = {"id": "a", "image": "x.png", "task_name": "t",
            "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A cat."}]}
    assert check_record(good) == []
    rules = {str(v.rule) for v in check_record({**good, "image": None})}
    assert "image" in rules
    assert {v.rule for v in check_record({**good, "conversations": good["conversations"][::-1]})} >= {"roles"}
    two_tokens = {**good, "conversations": [{"from": "human", "value": "<image><image>"}, good["conversations"][1]]}
    assert any(v.rule == "image token" for v in check_record(two_tokens))
    long = {**good, "conversations": [good["conversations"][0], {"from": "gpt", "value": "word " * 2000}]}
    assert any(v.rule == "too long" for v in check_record(long, count_tokens=estimate))
    assert [v.rule for v in check_file([good, good])] == ["duplicate id"]



@pytest.mark.parametrize("count_tokens", [estimate, None, lambda text: len(text.split())])
def test_the_exports_fast_check_agrees_with_the_contract(count_tokens):
    prompts = ["What?", "<image>\nWhat?", "What?\n<image>", "<image><image> What?", "Is 3 < 5?", "<image>\nIs 3 < 5?",
               "<image>\nsay </s>", "<s> hi", "<image>\n<unk>", "Q ASSISTANT: A", "Q\nASSISTANT:x", "", "   ",
               "<image>", "<imag", "x" * 8200, "<image>\n" + "y" * 6000]
    targets = ["A cat.", "3 < 5", "A </s>", "<image>", "yes ASSISTANT: no", "ASSISTANT:", "", " \n", "<", "z" * 9000]
    check = pair_checker(count_tokens)
    for prompt in prompts:
        for target in targets:
            for has_image in (True, False):
                record = {"id": "t/1/v1", "conversations": [{"from": "human", "value": prompt},
                                                             {"from": "gpt", "value": target}]}
                if has_image:
                    record["image"] = "x.png"
                expected = check_record(record, count_tokens=count_tokens)
                assert check("t/1/v1", prompt, target, has_image) == expected, (prompt, target, has_image)


def test_json_is_ascii_escaped_and_still_the_same_json():
    value = {"text": "café ✓ \U0001f600 \u2028 line"}
    data = ascii_json(value)
    assert data.isascii() and json.loads(data) == value
    assert b"\\ud83d\\ude00" in data  # outside the BMP: a surrogate pair


def test_a_version_is_built_as_a_job_and_its_files_are_served(app, db, settings):
    from app.services import versions as version_service
    from tests.review_helpers import signed_in

    people = team(db)
    task, _ = _approved(db, people, "JOB+built", instances=12)
    client, csrf = signed_in(app, people["author"])
    refused = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(make_qc_task(db, "NO+instr").id)})
    assert refused.status_code == 409 and "needs an approved instruction" in refused.text
    created = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(task.id), "name": "flan-v1",
                                             "per_task_cap": "10", "seed": "4", "validation_ratio": "0",
                                             "conversation_pool_id": "", "stage2_size": "0"})
    assert created.status_code == 303
    version_id = int(created.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/versions/{version_id}")
    assert page.status_code == 200 and "Building" in page.text
    built = version_service.run_build(settings, version_id=version_id)  # what the worker's job runs
    assert built.status == "ready" and built.content_hash
    detail = client.get(f"/versions/{version_id}").text
    assert 'data-task="JOB+built"' in detail
    download = client.get(f"/versions/{version_id}/files/stage1.json")
    assert download.status_code == 200 and len(json.loads(download.content)) == 10
    for escape in ("..%2Fsecret_key", "..%2F..%2Fsecret_key", "%2Fetc%2Fpasswd"):
        assert client.get(f"/versions/{version_id}/files/{escape}").status_code == 404
    assert version_service.run_build(settings, version_id=version_id).content_hash == built.content_hash


def test_stage1_loads_with_hugging_face_datasets_as_json_jsonl_and_parquet(app, db, settings, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # local files only: nothing may be downloaded
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    people = team(db)
    text_only, _ = _approved(db, people, "TEXT+questions", instances=5, kind="short")
    _build(app, settings, ExportSpec(task_ids=[shapes.id, text_only.id]))
    out = settings.data_dir / "exports" / "out"
    expected = json.loads((out / "stage1.json").read_text())
    for kind, name in (("json", "stage1.json"), ("json", "stage1.jsonl"), ("parquet", "stage1.parquet")):
        loaded = load_dataset(kind, data_files=str(out / name), split="train", cache_dir=str(tmp_path / "cache"))
        assert loaded.num_rows == len(expected), name
        assert loaded[0]["conversations"] == expected[0]["conversations"]
        images = [row["image"] for row in loaded]
        assert sum(image is None for image in images) == 5  # the text-only records: no image, one column type


def test_stage2_is_a_seeded_sample_of_a_conversation_pool_with_new_unique_ids(app, db, settings, tmp_path):
    from PIL import Image as PILImage

    from app.ingest.conversations import ConversationImporter, PoolOptions
    from app.models import ConversationPool

    (tmp_path / "imgs").mkdir()
    PILImage.new("RGB", (16, 16), "white").save(tmp_path / "imgs" / "1.jpg")
    rows = [{"id": "000000000001", "image": "1.jpg",  # LLaVA-Instruct's ids repeat: they are image ids
             "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": f"A {k}."},
                               {"from": "human", "value": "And then?"}, {"from": "gpt", "value": "Nothing."}]}
            for k in range(30)] + [{"id": "text", "conversations": [{"from": "human", "value": "Write a haiku."},
                                                                    {"from": "gpt", "value": "Autumn moon."}]}]
    (tmp_path / "pool.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    ConversationImporter(app.state.engine, MediaStore(settings.media_dir),
                         PoolOptions(pool="instruct", image_root=tmp_path / "imgs")).run(tmp_path / "pool.jsonl")
    pool_id = db.exec(select(ConversationPool.id)).one()
    people = team(db)
    task, _ = _approved(db, people, "VQA+stage1", instances=3)
    spec = ExportSpec(task_ids=[task.id], conversation_pool_id=pool_id, stage2_size=12, seed=5,
                      stage2_unreviewed=True)
    manifest = _build(app, settings, spec, folder="a")
    stage2 = json.loads((settings.data_dir / "exports" / "a" / "stage2.json").read_text())
    assert len(stage2) == manifest["files"]["stage2.json"]["records"] == 12
    assert len({record["id"] for record in stage2}) == 12  # new, unique ids; the source ids repeat
    assert all(len(record["conversations"]) in (2, 4) for record in stage2)
    assert list(validate_version(settings.data_dir / "exports" / "a")) == []
    again = _build(app, settings, spec, folder="b")
    assert again["files"]["stage2.json"] == manifest["files"]["stage2.json"]  # the seed decides the sample
    assert "train_stage2.sh" in manifest["files"]
    import yaml  # LLaVA-OneVision's data YAML names the same files

    onevision = yaml.safe_load((settings.data_dir / "exports" / "a" / "onevision_stage2.yaml").read_text())
    assert onevision == {"datasets": [{"json_path": "stage2.json", "sampling_strategy": "all"}]}
    assert "--learning_rate 1e-5" in (settings.data_dir / "exports" / "a" / "train_stage2.sh").read_text()


def test_images_can_ship_as_one_deterministic_tar(app, db, settings):
    import tarfile

    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    spec = ExportSpec(task_ids=[shapes.id], images_as_tar=True)
    first, second = _build(app, settings, spec, folder="a"), _build(app, settings, spec, folder="b")
    out = settings.data_dir / "exports" / "a"
    assert not (out / "images").exists() and first["files"]["images.tar"] == second["files"]["images.tar"]
    with tarfile.open(out / "images.tar") as archive:
        assert len(archive.getnames()) == first["images"] and all(n.startswith("images/") for n in archive.getnames())
    assert list(validate_version(out)) == []


def test_two_versions_compare_task_by_task(app, db, settings):
    from app.services import versions as version_service
    from tests.review_helpers import signed_in

    people = team(db)
    kept, _ = _approved(db, people, "KEPT+task", instances=8)
    dropped, _ = _approved(db, people, "DROPPED+task", instances=4)
    added, _ = _approved(db, people, "ADDED+task", instances=3)
    ids = []
    for name, tasks, cap in (("one", [kept.id, dropped.id], 8), ("two", [kept.id, added.id], 5)):
        version = version_service.create(db, spec=ExportSpec(task_ids=tasks, per_task_cap=cap), name=name,
                                         actor_id=None, enqueue=False)
        version_service.run_build(settings, version_id=version.id)
        ids.append(version.id)
    client, _ = signed_in(app, people["author"])
    page = client.get(f"/versions/diff?a={ids[0]}&b={ids[1]}")
    kinds = {row["data-task"]: row["data-kind"] for row in soup(page).select("#diff tbody tr")}
    assert kinds == {"ADDED+task": "added", "DROPPED+task": "removed", "KEPT+task": "count changed"}
    assert soup(client.get(f"/versions/{ids[1]}")).select_one("#compare") is not None


def test_the_versions_api_creates_follows_and_serves_a_version(app, db, settings):
    from app.services import versions as version_service
    from tests.review_helpers import signed_in

    people = team(db)
    task, _ = _approved(db, people, "API+export", instances=6)
    client, csrf = signed_in(app, people["author"])
    token = client.post("/api/v1/me/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    api = {"Authorization": f"Bearer {token}"}
    bad = client.post("/api/v1/versions", headers=api, json={"spec": {"task_ids": []}})
    assert bad.status_code == 422
    created = client.post("/api/v1/versions", headers=api, json={"name": "api-v1", "spec": {"task_ids": [task.id]}})
    assert created.status_code == 201 and created.json()["status"] == "building" and created.json()["job_id"]
    version_id = created.json()["id"]
    version_service.run_build(settings, version_id=version_id)  # what the worker does with the job
    ready = client.get(f"/api/v1/versions/{version_id}", headers=api).json()
    assert ready["status"] == "ready" and ready["manifest"]["counts"]["API+export"]["train"] == 6
    manifest = client.get(f"/api/v1/versions/{version_id}/files/manifest.json", headers=api).json()
    assert manifest == ready["manifest"]
    assert [v["name"] for v in client.get("/api/v1/versions", headers=api).json()] == ["api-v1"]
    assert client.delete(f"/api/v1/versions/{version_id}", headers=api).status_code == 403  # admins only


def test_a_task_with_several_approved_instructions_draws_one_per_instance_and_records_which(app, db, settings):
    people = team(db)
    task, first = _approved(db, people, "MULTI+instruct", instances=60)
    _, second, review = submit_instruction(db, task, people["author"], text="Say what the answer is.")
    approve(db, review)
    manifest = _build(app, settings, ExportSpec(task_ids=[task.id], seed=2))
    used = manifest["instruction_versions"]["MULTI+instruct"]
    assert set(used) == {str(first.id), str(second.id)} and all(count > 10 for count in used.values())
    records = json.loads((settings.data_dir / "exports" / "out" / "stage1.json").read_text())
    by_version = {record["id"].rsplit("/v", 1)[1] for record in records}
    assert by_version == {str(first.id), str(second.id)}
    texts = {record["id"].rsplit("/v", 1)[1]: record["conversations"][0]["value"].split("\n\n")[0]
             for record in records}
    assert texts[str(second.id)] == "Say what the answer is."  # each record rendered with its own version


def test_an_exported_record_traces_back_to_its_instance_version_and_reviews(app, db, settings):
    from tests.review_helpers import signed_in

    people = team(db)
    task, version = _approved(db, people, "TRACE+me", instances=3)
    _build(app, settings, ExportSpec(task_ids=[task.id]))
    record = json.loads((settings.data_dir / "exports" / "out" / "stage1.json").read_text())[0]
    client, _ = signed_in(app, people["author"])
    page = soup(client.get("/versions/trace", params={"id": record["id"]}))
    origin = page.select_one("#origin")
    assert "TRACE+me" in origin.text and f"/instructions/{version.instruction_id}" in str(origin)
    assert "approve" in page.select_one("#reviews").text
    assert client.get("/versions/trace", params={"id": "nonsense"}).status_code == 422
    assert client.get("/versions/trace", params={"id": "TRACE+me/999999/v1"}).status_code == 404


def test_a_version_created_in_the_browser_is_built_by_the_worker(app, db, settings):
    from app.models import DatasetVersion, Job
    from tests.review_helpers import signed_in
    from worker.__main__ import Worker

    people = team(db)
    task, _ = _approved(db, people, "WORKER+built", instances=5)
    client, csrf = signed_in(app, people["author"])
    created = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(task.id), "per_task_cap": "10000",
                                             "seed": "0", "validation_ratio": "0.2", "stage2_size": "1000"})
    version_id = int(created.headers["location"].rsplit("/", 1)[1])
    assert Worker(settings).run_once() is True  # the real worker loop, one job
    db.expire_all()
    version = db.get(DatasetVersion, version_id)
    job = db.get(Job, version.job_id)
    assert (version.status, job.status) == ("ready", "succeeded") and job.result["version_id"] == version_id
    assert list(validate_version(settings.export_dir / str(version_id))) == []
    page = soup(client.get(f"/versions/{version_id}"))
    assert page.select_one("#files") is not None and page.select_one('#per-task tr[data-task="WORKER+built"]')


@pytest.mark.parametrize("as_tar", [False, True], ids=["folder", "tar"])
def test_validate_checks_every_exported_image_against_its_name_and_the_set_against_the_manifest(
        app, db, settings, as_tar):
    import io
    import tarfile

    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    manifest = _build(app, settings, ExportSpec(task_ids=[shapes.id], seed=1, images_as_tar=as_tar))
    out = settings.data_dir / "exports" / "out"
    assert manifest["images"] > 1 and len(manifest["images_digest"]) == 64
    assert list(validate_version(out)) == []
    if as_tar:  # one image's bytes swapped inside the archive
        with tarfile.open(out / "images.tar") as archive:
            members = [(member, archive.extractfile(member).read()) for member in archive if member.isfile()]
        (out / "images.tar").unlink()
        with tarfile.open(out / "images.tar", "w") as archive:
            for k, (member, data) in enumerate(members):
                data = data[::-1] if k == 0 else data
                archive.addfile(member, io.BytesIO(data))
        problems = {(violation.rule, violation.detail.split(" ")[0]) for violation in validate_version(out)}
        assert ("changed image", "its") in problems
        return
    images = sorted((out / "images").iterdir())
    first = images[0].read_bytes()
    images[0].unlink()  # a hard link into the media store: replaced, not written through
    images[0].write_bytes(first[::-1])
    images[1].unlink()
    rules = sorted(violation.rule for violation in validate_version(out) if violation.record.startswith("images"))
    assert rules == ["changed image", "image set differs"]
