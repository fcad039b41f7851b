"""The command line, run as a user runs it: `python -m app ...` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.core.db import make_engine
from app.demo.source_files import TASKS

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [[], ["migrate"], ["demo"], ["serve"], ["users"], ["users", "create"], ["users", "list"],
            ["users", "reset-password"], ["tokens"], ["tokens", "create"], ["import"], ["import", "unified"],
            ["import", "llava"], ["import", "conversations"],
            ["import", "metadata"], ["import", "table"], ["import", "instructions"], ["import", "corrections"],
            ["export"], ["validate"],
            ["models"],
            ["models", "add"], ["models", "list"], ["synthesis"], ["synthesis", "requests"], ["synthesis", "import"]]


# The commands' wiring does not depend on the database, and the services they call are tested on both: besides
# setting a database up (test_migrate_users_and_tokens), the commands run on one.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    return {**env, "STUDIO_DATABASE_URL": database_url, "STUDIO_DATA_DIR": str(tmp_path / "data"),
            "STUDIO_MODE": "test"}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "app")
def test_every_command_has_help(command):
    result = run([*command, "--help"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--help" in result.stdout


def test_migrate_users_and_tokens(cli_env, database_url):
    assert run(["migrate"], cli_env).returncode == 0
    engine = make_engine(database_url)
    assert "instance" in inspect(engine).get_table_names()
    engine.dispose()

    created = run(["users", "create", "--email", "Lead@Lab.org", "--role", "admin", "--role", "reviewer"], cli_env)
    assert created.returncode == 0, created.stderr
    assert "created user lead@lab.org" in created.stdout
    password = created.stdout.split("password (shown once): ")[1].strip()
    assert len(password) >= 12

    duplicate = run(["users", "create", "--email", "lead@lab.org"], cli_env)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_role = run(["users", "create", "--email", "x@lab.org", "--role", "boss"], cli_env)
    assert bad_role.returncode == 1 and "--role" in bad_role.stderr and "Traceback" not in bad_role.stderr
    short = run(["users", "create", "--email", "y@lab.org", "--password-stdin"], cli_env, stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    chosen = run(["users", "create", "--email", "z@lab.org", "--password-stdin"], cli_env,
                 stdin="a long enough secret\n")
    assert chosen.returncode == 0 and "shown once" not in chosen.stdout

    listing = run(["users", "list"], cli_env).stdout
    assert "lead@lab.org" in listing and "admin, reviewer" in listing

    token = run(["tokens", "create", "--email", "lead@lab.org", "--name", "ci"], cli_env)
    assert token.returncode == 0 and token.stdout.strip().startswith("fst_")
    missing = run(["tokens", "create", "--email", "ghost@lab.org", "--name", "ci"], cli_env)
    assert missing.returncode == 1 and "no user" in missing.stderr

    reset = run(["users", "reset-password", "--email", "lead@lab.org"], cli_env)
    assert reset.returncode == 0 and password not in reset.stdout


@ONE_DATABASE
def test_demo_prints_where_to_sign_in_and_is_idempotent(cli_env):
    assert run(["migrate"], cli_env).returncode == 0
    first = run(["demo"], cli_env)
    assert first.returncode == 0, first.stderr
    assert "Demo workspace loaded" in first.stdout and "http://127.0.0.1:8000/login" in first.stdout
    accounts = [line.split() for line in first.stdout.splitlines() if "@studio.local" in line]
    assert [email for email, _ in accounts] == ["admin@studio.local", "author@studio.local",
                                                "reviewer@studio.local", "reviewer2@studio.local"]
    assert len({password for _, password in accounts}) == 4
    again = run(["demo"], cli_env)
    assert again.returncode == 0 and "Demo workspace loaded" not in again.stdout
    assert [line.split() for line in again.stdout.splitlines() if "@studio.local" in line] == accounts


@ONE_DATABASE
def test_export_builds_a_version_of_the_demo_from_the_command_line(cli_env):
    import json

    assert run(["migrate"], cli_env).returncode == 0
    assert run(["demo"], cli_env).returncode == 0
    refused = run(["export"], cli_env)
    assert refused.returncode == 1 and "No task is verified yet" in refused.stderr
    built = run(["export", "--task", "SHAPES+shape_classification", "--name", "demo-v1", "--validation", "0.25"],
                cli_env)
    assert built.returncode == 0, built.stderr
    assert "version demo-v1:" in built.stdout and "left out" in built.stdout
    folder = Path(built.stdout.split("files: ", 1)[1].strip())
    manifest = json.loads((folder / "manifest.json").read_text())
    shapes = TASKS["SHAPES+shape_classification"][2]
    assert sum(manifest["counts"]["SHAPES+shape_classification"].values()) == shapes - 1  # one was flagged
    again = run(["export", "--task", "SHAPES+shape_classification", "--name", "demo-v1"], cli_env)
    assert again.returncode == 1 and "already a version called 'demo-v1'" in again.stderr
    valid = run(["validate", str(folder)], cli_env)
    assert valid.returncode == 0 and "every record the trainer's contract" in valid.stdout
    records = json.loads((folder / "stage1.json").read_text())
    records[1]["conversations"].reverse()  # a hand edit the trainer would silently mask
    (folder / "stage1.json").write_text(json.dumps(records))
    broken = run(["validate", str(folder)], cli_env)
    assert broken.returncode == 1
    assert "stage1.json: changed file" in broken.stdout and f"stage1.json: {records[1]['id']}: roles" in broken.stdout


@ONE_DATABASE
def test_models_are_registered_and_listed_from_the_command_line(cli_env):
    assert run(["migrate"], cli_env).returncode == 0
    added = run(["models", "add", "tiny", "/models/tiny", "--dtype", "bfloat16"], cli_env)
    assert added.returncode == 0 and "model tiny registered" in added.stdout
    assert "tiny" in run(["models", "list"], cli_env).stdout
    refused = run(["models", "add", "tiny", "/elsewhere"], cli_env)
    assert refused.returncode == 1 and "already a model called 'tiny'" in refused.stderr
    assert run(["models", "add", "x", "/m", "--dtype", "int3"], cli_env).returncode == 1


@ONE_DATABASE
def test_serve_says_clearly_when_its_port_is_taken(cli_env):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve"], {**cli_env, "STUDIO_PORT": str(port)})
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr and "STUDIO_PORT" in result.stderr


@ONE_DATABASE
def test_import_prints_a_report_and_can_save_it(cli_env, tmp_path):
    import json

    from PIL import Image as PILImage

    assert run(["migrate"], cli_env).returncode == 0
    (tmp_path / "imgs").mkdir()
    PILImage.new("RGB", (8, 8), "red").save(tmp_path / "imgs" / "a.png")
    rows = [{"instance_id": k, "img_path": "a.png", "raw_output": "red", "dataset_name": "COLORS",
             "task_name": "name_it"} for k in range(3)]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n{oops\n")
    result = run(["import", "unified", str(source), "--image-root", str(tmp_path / "imgs"),
                  "--report", str(tmp_path / "report.json")], cli_env)
    assert result.returncode == 1, result.stderr  # a record was refused: the report says which, exit 1
    assert "1 records were refused" in result.stderr
    assert "imported 3, skipped 0 duplicates, rejected 1" in result.stdout
    assert "new tasks: COLORS+name_it" in result.stdout
    assert "rejected in.jsonl:4: record: not valid JSON" in result.stdout
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["imported"] == 3 and saved["rejected"][0]["line"] == 4
    again = run(["import", "unified", str(source), "--image-root", str(tmp_path / "imgs")], cli_env)
    assert "imported 0, skipped 3 duplicates" in again.stdout
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert run(["import", "unified", str(clean), "--image-root", str(tmp_path / "imgs")], cli_env).returncode == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    nothing = run(["import", "unified", str(empty)], cli_env)
    assert nothing.returncode == 2 and "empty.jsonl:1: holds no records" in nothing.stderr
    assert "Exit status: 0" in run(["import", "--help"], cli_env).stdout

    broken = tmp_path / "broken.json"
    broken.write_text('[{"instance_id": 1},\n{oops')
    failed = run(["import", "unified", str(broken)], cli_env)
    assert failed.returncode == 2 and "broken.json:2: not valid JSON" in failed.stderr  # unreadable: exit 2


@ONE_DATABASE
def test_import_table_maps_columns_and_refuses_unusable_mappings(cli_env, tmp_path):
    assert run(["migrate"], cli_env).returncode == 0
    source = tmp_path / "qa.csv"
    source.write_text("id,q,a\n1,What?,That\n2,Who?,Them\n")
    result = run(["import", "table", str(source), "--map", "q->input_text", "--map", "a->raw_output",
                  "--map", "id->instance_id", "--dataset", "DOCS", "--task", "qa"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "imported 2" in result.stdout and "new tasks: DOCS+qa" in result.stdout
    refused = run(["import", "table", str(source), "--map", "q=input_text"], cli_env)
    assert refused.returncode == 2 and "write it as 'source column->field'" in refused.stderr


@ONE_DATABASE
def test_import_table_joins_a_second_file_from_the_command_line(cli_env, tmp_path):
    import json

    assert run(["migrate"], cli_env).returncode == 0
    (tmp_path / "questions.json").write_text(json.dumps({"info": {}, "questions": [
        {"question_id": 1, "image_id": 7, "question": "What?"},
        {"question_id": 2, "image_id": 7, "question": "Who?"}]}))
    (tmp_path / "annotations.json").write_text(json.dumps({"annotations": [
        {"question_id": 1, "multiple_choice_answer": "that"}, {"question_id": 2, "multiple_choice_answer": "them"}]}))
    args = ["import", "table", str(tmp_path / "questions.json"), "--records", "questions",
            "--join", str(tmp_path / "annotations.json"), "--join-records", "annotations", "--on", "question_id",
            "--map", "question_id->instance_id", "--map", "question->input_text",
            "--map", "multiple_choice_answer->raw_output", "--dataset", "VQAv2", "--task", "vqa"]
    result = run(args, cli_env)
    assert result.returncode == 0, result.stderr
    assert "imported 2" in result.stdout
    missing = run([*args[:3], "--records", "answers", *args[5:]], cli_env)
    assert missing.returncode == 2
    assert "questions.json:1: the top-level object has no key 'answers' (its keys: info, questions)" in missing.stderr


@ONE_DATABASE
def test_import_instructions_from_the_command_line_exits_by_what_happened(cli_env, tmp_path):
    assert run(["migrate"], cli_env).returncode == 0
    (tmp_path / "qa.csv").write_text("id,q,a\n1,What?,That\n")
    assert run(["import", "table", str(tmp_path / "qa.csv"), "--map", "q->input_text", "--map", "a->raw_output",
                "--map", "id->instance_id", "--dataset", "DOCS", "--task", "qa"], cli_env).returncode == 0
    assert run(["users", "create", "--email", "ada@lab.org", "--role", "author"], cli_env).returncode == 0
    good = tmp_path / "good.yaml"
    good.write_text("- task: DOCS+qa\n  instruction: Answer the question.\n")
    done = run(["import", "instructions", str(good), "--author", "ada@lab.org", "--submit"], cli_env)
    assert done.returncode == 0, done.stderr
    assert "instructions: 1 created, 0 updated, 0 unchanged, 1 submitted for review" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("- task: DOCS+qa\n  instruction: Fine.\n  label: two\n- task: DOCS+nope\n  instruction: x\n")
    refused = run(["import", "instructions", str(bad), "--author", "ada@lab.org"], cli_env)
    assert refused.returncode == 1
    assert "nothing was imported" in refused.stderr
    assert "bad.yaml:4: task: there is no task named DOCS+nope" in refused.stderr
    nobody = run(["import", "instructions", str(good), "--author", "who@lab.org"], cli_env)
    assert nobody.returncode == 2 and "no user with email who@lab.org" in nobody.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("- task: [\n")
    assert run(["import", "instructions", str(broken), "--author", "ada@lab.org"], cli_env).returncode == 2


@ONE_DATABASE
def test_import_corrections_from_the_command_line_proposes_all_or_nothing(cli_env, tmp_path):
    assert run(["migrate"], cli_env).returncode == 0
    (tmp_path / "qa.csv").write_text("id,q,a\n1,What?,That\n2,Who?,Them\n")
    assert run(["import", "table", str(tmp_path / "qa.csv"), "--map", "q->input_text", "--map", "a->raw_output",
                "--map", "id->instance_id", "--dataset", "DOCS", "--task", "qa"], cli_env).returncode == 0
    assert run(["users", "create", "--email", "ada@lab.org", "--role", "reviewer"], cli_env).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("task,source_id,field,value,reason\nDOCS+qa,1,raw_output,This,typo\nDOCS+qa,9,raw_output,x,y\n"
                   "DOCS+qa,2,colour,red,z\n")
    refused = run(["import", "corrections", str(bad), "--author", "ada@lab.org"], cli_env)
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    assert "bad.csv:3: source_id: no instance '9' in task 'DOCS+qa'" in refused.stderr
    assert "bad.csv:4: field: 'colour' is not one of" in refused.stderr
    good = tmp_path / "good.csv"
    good.write_text("task,source_id,field,value,reason\nDOCS+qa,1,raw_output,This,typo\n")
    done = run(["import", "corrections", str(good), "--author", "ada@lab.org"], cli_env)
    assert done.returncode == 0, done.stderr
    assert "good.csv: 1 fixes proposed for a second person to accept" in done.stdout
    again = run(["import", "corrections", str(good), "--author", "ada@lab.org"], cli_env)
    assert again.returncode == 1 and "already waiting for review" in again.stderr
    assert run(["import", "corrections", str(good), "--author", "who@lab.org"], cli_env).returncode == 2
    (tmp_path / "empty.csv").write_text("field,value\n")
    assert run(["import", "corrections", str(tmp_path / "empty.csv"), "--author", "ada@lab.org"],
               cli_env).returncode == 2
