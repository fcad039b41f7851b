"""Stage 2 at LLaVA-Instruct's size: writing conversations, and reading them.

    OMP_NUM_THREADS=1 .venv/bin/python bench/synthesis_bench.py
    .venv/bin/python bench/synthesis_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

1. batched_speedup: the tiny random LLaVA writes --local conversations through the worker's own batch function
   (`worker.synthesize.write_batch`: chat template, images, generate, decode), --batch at a time, against one at
   a time; the same prompts, images and token budget, greedy.
2. concurrency_speedup: --requests requests through the endpoint backend (`Sender`, the OpenAI client, real bodies
   with images as data URLs) to an OpenAI-compatible server in its own process that answers each after 50 ms, at
   the default concurrency (8) against one request at a time.
3. review_next_p95_ratio: a pool of --conversations conversations (158,000: LLaVA-Instruct's three files
   together), each waiting for its review; a reviewer takes the next one and judges it, --repeat times; the
   next item's server time (claimed and rendered) against /healthz's, taken just before each next.
Parts 1 and 2 run in a process of their own, as the worker does: peak_rss_mb is the larger of its peak and this
process's (the web app with the pool). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.core.config import Settings
from app.core.migrate import alembic_config
from app.core.storage import MediaStore
from app.main import create_app
from app.models import ConversationPool, Image, Role, utcnow
from app.schemas.stage2 import Sampling
from app.services.bulk_rows import insert_conversation_items, stable_rkey
from app.services.synthesis.endpoints import Endpoint
from app.services.synthesis.prompts import SHIPPED
from app.services.synthesis.requests import Subject, chat_body, messages
from app.services.synthesis.subjects import Drawn
from bench.peak_memory import own_peak_mb
from bench.review_bench import free_port, percentile, server_ms, shown_item, wait_until_listening
from tests.factories import login, make_user
from tests.scratch import scratch_database, throwaway_folder
from worker.endpoint_client import Sender

PROMPT = SHIPPED["conversation"]


def picture(k: int) -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (64 + k % 7, 48), ((k * 40) % 255, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def subjects(media: MediaStore, count: int) -> list[tuple[str, Drawn]]:
    work = []
    for k in range(count):
        sha = media.put(picture(k))
        work.append((f"p1-i{k}-s0", Drawn(Subject(k, "VQA-E+visual_qa", f"What colour is object {k}?",
                                                  f"red number {k}", sha, "JPEG"), k)))
    return work


def local_batches(workdir: Path, model: Path, count: int, batch: int) -> dict:
    import torch

    from app.services.synthesis.endpoints import Tally
    from worker.loading import load
    from worker.synthesize import write_batch

    torch.set_num_threads(1)
    media = MediaStore(workdir / "media")
    work = subjects(media, count)
    loaded = load(str(model), "float32", "cpu")
    sampling = Sampling(temperature=0, max_tokens=64)

    def run(size: int) -> float:
        started = time.perf_counter()
        for start in range(0, len(work), size):
            chunk = work[start:start + size]
            images = [media.read(item.subject.image_sha256) for _, item in chunk]
            write_batch(loaded, "tiny", PROMPT, chunk, images, sampling, seed=start, tally=Tally())
        return time.perf_counter() - started

    run(batch)  # warm up
    batched, single = run(batch), run(1)
    return {"local_conversations": count, "local_batch": batch, "local_batched_s": round(batched, 2),
            "local_one_at_a_time_s": round(single, 2), "batched_speedup": round(single / batched, 2)}


def endpoint_concurrency(workdir: Path, count: int) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.openai_server", "--port", str(port), "--delay-s", "0.05"],
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        wait_until_listening(port, server, "the test server")
        media = MediaStore(workdir / "endpoint-media")
        bodies = [(key, chat_body("test-vlm", messages(PROMPT, item.subject, image=picture(k)), Sampling()))
                  for k, (key, item) in enumerate(subjects(media, count))]
        endpoint = Endpoint(name="bench", base_url=f"http://127.0.0.1:{port}/v1", model="test-vlm")

        def run(concurrency: int) -> float:
            replies = []
            started = time.perf_counter()
            Sender(endpoint, replies.append, concurrency=concurrency).run(bodies)
            assert len(replies) == count and all(reply.text for reply in replies)
            return time.perf_counter() - started

        run(8)  # warm up
        concurrent, single = run(endpoint.concurrency), run(1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"endpoint_requests": count, "endpoint_concurrency": endpoint.concurrency,
            "endpoint_concurrent_s": round(concurrent, 2), "endpoint_one_at_a_time_s": round(single, 2),
            "concurrency_speedup": round(single / concurrent, 2)}


def fill_pool(session: Session, size: int) -> None:
    """`size` conversations of LLaVA-Instruct's shape (three exchanges about an image, ~700 characters)."""
    session.execute(insert(Image), [{"sha256": f"{k:064x}", "width": 640, "height": 480, "format": "JPEG",
                                     "bytes": 90_000, "created_at": utcnow()} for k in range(2_000)])
    pool = ConversationPool(name="llava-instruct-158k", source="llava_instruct_158k.json", created_at=utcnow())
    session.add(pool)
    session.commit()
    rng = random.Random(4)
    connection = session.connection()
    for start in range(0, size, 5_000):
        rows = []
        for position in range(start, min(size, start + 5_000)):
            turns = [{"from": "human", "value": "<image>\nWhat is the man doing in the picture?"},
                     {"from": "gpt", "value": f"The man is riding a bicycle down a busy street ({position})."}]
            for _ in range(2):
                turns += [{"from": "human", "value": "What colour is the bus behind him, and why might it stop?"},
                          {"from": "gpt", "value": "The bus is red; it is likely stopping to let passengers on, "
                                                   "as there is a shelter at the kerb beside it." * 2}]
            rows.append({"pool_id": pool.id, "position": position, "source_id": str(rng.getrandbits(40)),
                         "image_id": 1 + position % 2_000, "conversations": turns, "kind": "conversation",
                         "rkey": stable_rkey(pool.name, position)})
        insert_conversation_items(connection, rows)
        session.commit()
        connection = session.connection()


def review_timings(client: TestClient, csrf: str, repeat: int) -> tuple[list[float], list[float]]:
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    nexts, floor = [], []
    for _ in range(repeat):
        floor.append(server_ms(client.get("/healthz")))
        shown = client.post("/review/conversations/next", headers=headers)
        nexts.append(server_ms(shown))
        item_id, lock = shown_item(shown)
        turns = {part.split('"', 1)[0] for part in shown.text.split('name="verdict-')[1:]}
        decided = client.post(f"/review/conversations/{item_id}", headers=headers, data={
            "lock_version": lock, "all": "correct", **{f"verdict-{turn}": "correct" for turn in turns}})
        assert decided.status_code == 200, decided.text
    return nexts, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--conversations", type=int, default=158_000)
    parser.add_argument("--repeat", type=int, default=200, help="next items to time")
    parser.add_argument("--local", type=int, default=32, help="conversations the tiny model writes each way")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--worker-part", type=Path, help=argparse.SUPPRESS)  # parts 1 and 2 with this model, alone
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    workdir = throwaway_folder("studio-synthesis-bench-")
    if args.worker_part:
        print(f"the tiny model writes {args.local} conversations, {args.batch} at a time and one at a time",
              file=sys.stderr)
        figures = local_batches(workdir, args.worker_part, args.local, args.batch)
        print(f"{args.requests} requests to a server answering after 50 ms", file=sys.stderr)
        figures.update(endpoint_concurrency(workdir, args.requests))
        print(json.dumps({**figures, "worker_peak_mb": round(own_peak_mb(), 1)}))
        return
    model = workdir / "tiny"  # built apart: a worker loads a model, it does not train a tokenizer
    subprocess.run([sys.executable, "-m", "worker", "tiny-model", str(model)], check=True, stdout=subprocess.DEVNULL,
                   cwd=Path(__file__).resolve().parent.parent)
    worker = subprocess.run([sys.executable, __file__, "--worker-part", str(model), "--local", str(args.local),
                             "--batch", str(args.batch), "--requests", str(args.requests)], stdout=subprocess.PIPE,
                            text=True, check=True)
    figures: dict = json.loads(worker.stdout.strip().splitlines()[-1])
    print(f"  {figures}", file=sys.stderr)
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        app = create_app(Settings(mode="test", data_dir=workdir, database_url=url, log_level="warning",
                                  _env_file=None))
        with Session(app.state.engine, expire_on_commit=False) as session:
            print(f"filling a pool of {args.conversations:,} conversations", file=sys.stderr)
            started = time.perf_counter()
            fill_pool(session, args.conversations)
            fill_s = time.perf_counter() - started
            reviewer = make_user(session, Role.reviewer, email="reviewer@bench.org")
        client = TestClient(app, follow_redirects=False)
        csrf = login(client, reviewer.email)
        review_timings(client, csrf, 10)  # warm up
        nexts, floor = review_timings(client, csrf, args.repeat)
        app.state.engine.dispose()
        figures.update({
            "database": make_url(url).get_backend_name(), "conversations": args.conversations,
            "fill_s": round(fill_s, 1), "review_next_p50_ms": round(statistics.median(nexts), 2),
            "review_next_p95_ms": percentile(nexts, 0.95), "healthz_p95_ms": percentile(floor, 0.95),
            "review_next_p95_ratio": round(percentile(nexts, 0.95) / max(percentile(floor, 0.95), 0.01), 2),
            "web_peak_mb": round(own_peak_mb(), 1)})
        figures["peak_rss_mb"] = max(figures["worker_peak_mb"], figures["web_peak_mb"])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
