"""How fast the worker picks a job up, and what a preview costs beyond the model's own generation.

    OMP_NUM_THREADS=1 .venv/bin/python bench/worker_bench.py
    .venv/bin/python bench/worker_bench.py --model /models/llava-1.5-7b --device cuda   # a real model

1. Pickup: a worker loop runs in a thread (polling every STUDIO_WORKER_POLL_S); one-instance previews are
   queued one at a time; pickup = the job's start minus its creation, from the database's own timestamps.
2. Overhead: --rounds preview jobs over --instances instances each (the demo's shapes task grown to that
   size; the tiny random LLaVA unless --model), each followed by the bare loop on the same instances, prompts,
   images and batches, with the model already loaded for both. The bare loop times `prepare` (image decode,
   chat template, processor) and `answer` (model.generate, decode) apart, so two figures come out:
   overhead_ratio = (job time - bare prepare - bare generate) / (bare prepare + bare generate): what the worker
   adds to the bare model call on the same inputs (the target: < 5%);
   beyond_generate_ratio = (job time - bare generate) / bare generate: everything beyond model.generate,
   the processor's image preprocessing included, which on the tiny model is ~15% of its generation.
   The job's own phase times (its result's `seconds`) are printed too.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session, select

from app.core.config import Settings
from app.core.migrate import upgrade
from app.core.storage import MediaStore
from app.demo.workspace import load_demo
from app.main import create_app
from app.models import Instance, InstructionVersion, Job, Task
from app.prompts.specs import render_instance, spec_of_version
from app.schemas import PreviewIn
from app.services import previews
from app.services import registered_models as model_service
from app.services.sampling import sample_instances
from app.services.tasks import refresh_instance_counts
from tests.scratch import throwaway_folder
from worker.__main__ import Worker
from worker.loading import load
from worker.preview import answer, open_rgb, prepare
from worker.tiny_model import build_tiny_model


def wait_for(session: Session, job_id: int, timeout: float = 120, every_s: float = 0.1) -> Job:
    """The job once it has ended. Its timings come from its own timestamps, so how often this looks does not
    change them; looking less often disturbs the worker thread less (this process's GIL is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        session.expire_all()
        job = session.get(Job, job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not end"
        time.sleep(every_s)


def grow(session: Session, task: Task, size: int) -> None:
    """More instances for the demo task (its 24 are a small preview): copies of them with new source ids."""
    rows = session.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)).all()
    rng = random.Random(7)
    session.add_all([Instance(task_id=task.id, source_id=f"bench-{k}", image_id=row.image_id, options=row.options,
                              input_text=row.input_text, raw_output=row.raw_output, rkey=rng.getrandbits(31))
                     for k, row in zip(range(size - len(rows)), itertools.cycle(rows))])
    session.commit()
    refresh_instance_counts(session, task_ids=[task.id])
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local model folder (default: the tiny random LLaVA)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--instances", type=int, default=120, help="per preview (the demo task is grown to it)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--pickups", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="preview jobs timed against the bare loop")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    workdir = throwaway_folder("studio-worker-bench-")
    settings = Settings(mode="test", data_dir=workdir, database_url=f"sqlite:///{workdir / 'studio.db'}",
                        log_level="warning", _env_file=None)
    upgrade(settings.resolved_database_url, "head")
    app = create_app(settings)
    model_path = args.model or str(build_tiny_model(workdir / "tiny-llava"))
    with Session(app.state.engine, expire_on_commit=False) as session:
        load_demo(session, data_dir=workdir)
        task = session.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
        grow(session, task, args.instances)
        model = model_service.register(session, name="bench", path=model_path, device=args.device, actor_id=None)
        loaded = load(model_path, "float32", args.device)  # both sides below run with the model in memory

        worker = Worker(settings)
        thread = threading.Thread(target=worker.run_forever, kwargs={"handle_signals": False}, daemon=True)
        thread.start()
        pickups = []
        for k in range(args.pickups):
            time.sleep(0.05 + (k % 5) * 0.05)  # arrive at different points of the worker's polling
            job = previews.start(session, task_id=task.id, actor_id=None, data=PreviewIn(
                model_id=model.id, size=1, seed=k, batch_size=1, max_new_tokens=1))
            done = wait_for(session, job.id)
            pickups.append((done.started_at - done.created_at).total_seconds())

        # Overhead: each round a preview job, then the bare loop on the same instances, prompts, images and
        # batches: `prepare` (image decode, chat template, processor) and `answer` (generate, decode) timed apart.
        media, spec = MediaStore(settings.media_dir), None
        job_s = bare_prepare_s = bare_generate_s = 0.0
        phases: Counter = Counter()
        instances = 0
        for round_ in range(args.rounds):
            job = previews.start(session, task_id=task.id, actor_id=None, data=PreviewIn(
                model_id=model.id, size=args.instances, seed=round_, batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens))
            done = wait_for(session, job.id, every_s=0.5)
            assert done.status == "succeeded", done.error
            job_s += (done.finished_at - done.started_at).total_seconds()
            phases.update(done.result["seconds"])
            spec = spec or spec_of_version(session.get(InstructionVersion, done.payload["instruction_version_id"]))
            work = []
            for instance, image in sample_instances(session, task_id=task.id, seed=round_, size=args.instances):
                rendered, _ = render_instance(spec, instance, has_image=image is not None)
                work.append((rendered.prompt, media.path_for(image.sha256)))
            instances += len(work)
            for start in range(0, len(work), args.batch_size):
                batch = work[start:start + args.batch_size]
                started = time.perf_counter()
                inputs = prepare(loaded, [prompt for prompt, _ in batch], [open_rgb(path) for _, path in batch])
                bare_prepare_s += time.perf_counter() - started
                started = time.perf_counter()
                answer(loaded, inputs, max_new_tokens=args.max_new_tokens)
                bare_generate_s += time.perf_counter() - started
        worker.stopping = True
        thread.join(timeout=5)
    pickups.sort()
    figures = {"model": "tiny-llava (random)" if not args.model else args.model, "device": loaded.device,
               "pickups": len(pickups), "poll_s": settings.worker_poll_s,
               "pickup_p50_s": round(statistics.median(pickups), 3),
               "pickup_p95_s": round(pickups[int(0.95 * (len(pickups) - 1))], 3),
               "rounds": args.rounds, "instances": instances, "batch_size": args.batch_size,
               "max_new_tokens": args.max_new_tokens, "job_s": round(job_s, 3),
               "job_phases_s": {name: round(seconds, 3) for name, seconds in sorted(phases.items())},
               "bare_prepare_s": round(bare_prepare_s, 3), "bare_generate_s": round(bare_generate_s, 3),
               # what the worker adds to the bare model call on the same inputs (made by the processor, as any
               # caller of generate must): sampling, rendering, batching, progress, storing, the job's own upkeep
               "overhead_ratio": round((job_s - bare_prepare_s - bare_generate_s)
                                       / (bare_prepare_s + bare_generate_s), 3),
               # everything beyond model.generate itself, the processor included (on a tiny model it is large)
               "beyond_generate_ratio": round((job_s - bare_generate_s) / bare_generate_s, 3)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
