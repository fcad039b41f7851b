"""Instruction authoring speed: the live preview (8 instances) and the lint of a 10,000-instance task.

    .venv/bin/python bench/authoring_bench.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Preview: POSTs to the editor's preview endpoint through the real app (in-process ASGI, real database),
p50/p95 over --repeat requests; the floor measured in the same run is /healthz. Lint: every instance of the
task rendered and checked by `rendering.lint_on_instances`, rows read from the database. Records are
realistic (bench/filling.py), or the old thin ones with --thin. Targets: preview p95
< 100 ms, lint of 10k < 2 s. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from task_pages import measure

from app.core.config import Settings
from app.core.migrate import upgrade
from app.main import create_app
from app.models import Instance, Role, Task
from app.prompts.rendering import InstructionSpec, lint_on_instances
from app.schemas import UserCreate
from app.services import instructions as instruction_service
from app.services import users as user_service
from bench.filling import fill
from tests.scratch import scratch_database, throwaway_folder

SPEC = InstructionSpec(text="Answer the question about the chart. {% if options %}Choose one option.{% endif %}",
                       output_template="The answer is {{ raw_output }}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/filling.py)")
    args = parser.parse_args()
    workdir = throwaway_folder("studio-authoring-bench-")
    with scratch_database(args.database_url, workdir) as url:
        upgrade(url)
        fill(url, 1, args.instances, seed=0, media=workdir / "media", thin=args.thin)  # one task, with options
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning",
                                  _env_file=None))
        with Session(app.state.engine, expire_on_commit=False) as session:
            task = session.exec(select(Task)).one()
            author, _ = user_service.create_user(session, data=UserCreate(
                email="a@example.org", display_name="a", roles=[Role.author], password="bench password"), actor_id=None)
            instruction = instruction_service.create_instruction(session, task_id=task.id, label="main",
                                                                 author_id=author.id)
            _, token = user_service.create_token(session, user_id=author.id, name="bench", actor_id=None)
        client = TestClient(app)
        auth = {"Authorization": f"Bearer {token}"}
        floor = measure(client, "/healthz", args.repeat)
        form = {"lock_version": "1", "text": SPEC.text, "input_template": "", "output_template": SPEC.output_template,
                "options_style": "paren_letters", "image_placement": "before"}
        timings = []
        for k in range(args.repeat + 1):
            started = time.perf_counter()
            response = client.post(f"/instructions/{instruction.id}/preview", data={**form, "seed": str(k)},
                                   headers=auth)
            assert response.status_code == 200 and response.text.count('class="sample"') == 8
            if k:
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        started = time.perf_counter()
        with Session(app.state.engine) as session:
            rows = session.exec(select(Instance.source_id, Instance.input_text, Instance.options, Instance.raw_output,
                                       Instance.image_id).where(Instance.task_id == task.id))
            instances = ((sid, {"input_text": text, "options": options, "raw_output": raw}, bool(image))
                         for sid, text, options, raw, image in rows)
            issues = lint_on_instances(SPEC, instances, token_budget=2048)
        lint_s = time.perf_counter() - started
        app.state.engine.dispose()
    figures = {"database": url.split(":")[0].split("+")[0], "records": "thin" if args.thin else "realistic",
               "instances": args.instances,
               "baseline_healthz": floor, "preview_p50_ms": round(timings[len(timings) // 2], 2),
               "preview_p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2),
               "lint_10k_s": round(lint_s * 10_000 / args.instances, 3), "lint_issues": len(issues)}
    print(f"  preview p50 {figures['preview_p50_ms']} ms, p95 {figures['preview_p95_ms']} ms (floor p50 "
          f"{floor['p50_ms']} ms); lint of {args.instances:,} in {lint_s:.2f} s", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
