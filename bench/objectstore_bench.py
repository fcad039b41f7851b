"""Import and export against S3-compatible object storage and against the local folder, in the same run.

    .venv/bin/python bench/objectstore_bench.py                       # 30,000 realistic instances, SQLite
    .venv/bin/python bench/objectstore_bench.py --instances 100000 --distinct-images 20000

Generates the realistic dataset (bench/gen_dataset.py: an image per instance, distinct up to
--distinct-images, then reused), and starts an S3-compatible server on 127.0.0.1 (moto, tests/s3server.py: the
one the tests use; no MinIO installs from the registries here). Each side runs in processes of its own, as a
user runs it, through the command line, into a fresh SQLite database:

- import, local: `python -m app import unified` of the local file and image folder into the media folder;
- import, S3: the same command with the file and the images in a bucket (s3://) and STUDIO_MEDIA_URL on S3;
  `import_media_only_ratio` also times the local file and folder into the media bucket (only the store moved);
- export, local: `python -m app export` of every task (an approved instruction each) into the exports folder,
  images hard-linked from the media folder;
- export, S3: the same with STUDIO_EXPORTS_URL on S3: built on local disk, then published (images named in
  the media bucket, not copied);
- pull (reported, no ratio): `python -m app pull` of that version into a local folder, images included, as a
  worker's cache or a trainer gets it.

- import, bare: a loop of boto3 calls doing what the S3 import does with the object store, against the same server
  in the same run: for each image the dataset names, the GET from the source bucket and the conditional PUT of
  its bytes (named by their sha256) into a media prefix, with as many requests in flight as the studio keeps
  (objectstore.REQUESTS_IN_FLIGHT). moto serves a few hundred requests a second here, so `import_ratio` measures
  moto as much as the studio; `import_bare_ratio` (the S3 import's rate over this loop's, in instances a second)
  measures what the studio adds to the requests it must make.

Ratios are S3 rate / local rate (instances or records per second), and the S3 import's over the bare loop's;
targets: import_bare_ratio and export_ratio >= 0.5. `import_s3_cpu_ms_per_image` is the S3 import's own CPU time
(user + system, the whole process) per image stored. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.export_bench import approve_every_task
from tests.scratch import throwaway_folder

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "studio-bench"


def start_s3_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tests.s3server", str(port), BUCKET], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready", "the S3 server did not start"
    return server, f"http://127.0.0.1:{port}"


CPU_SECONDS: dict[str, float] = {}  # per command run by `studio`: its user + system time


def studio(args: list[str], environment: dict[str, str], name: str | None = None) -> float:
    """Runs `python -m app ARGS` with these settings; its wall time in seconds (its CPU time under `name`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env={**os.environ, **environment},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU_SECONDS[name] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"python -m app {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def upload_folder(folder: Path, prefix: str, environment: dict[str, str]) -> None:
    """The dataset into the bucket, as a lab's data already sits there (untimed)."""
    os.environ.update(environment)
    from concurrent.futures import ThreadPoolExecutor

    from app.core.objectstore import Bucket

    bucket = Bucket(f"s3://{BUCKET}/{prefix}")
    files = [path for path in folder.rglob("*") if path.is_file()]
    with ThreadPoolExecutor(16) as threads:
        list(threads.map(lambda path: bucket.upload_file(str(path.relative_to(folder)), path), files))


def bare_import(dataset: Path, environment: dict[str, str]) -> float:
    """The S3 import's object-store requests alone: each image's GET from the source prefix, then its conditional
    PUT by content address into a media prefix, REQUESTS_IN_FLIGHT at a time; its wall time in seconds."""
    os.environ.update(environment)
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError

    from app.core.objectstore import REQUESTS_IN_FLIGHT, Bucket
    from app.core.storage import relative_key

    names = sorted({json.loads(line)["img_path"] for line in dataset.open() if line.strip()})
    client = Bucket(f"s3://{BUCKET}").client

    def copy(name: str) -> None:
        data = client.get_object(Bucket=BUCKET, Key=f"incoming/{name}")["Body"].read()
        key = f"bare-media/{relative_key(hashlib.sha256(data).hexdigest())}"
        try:
            client.put_object(Bucket=BUCKET, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise

    started = time.perf_counter()
    with ThreadPoolExecutor(REQUESTS_IN_FLIGHT) as threads:
        list(threads.map(copy, names))
    return time.perf_counter() - started


def side(workdir: Path, name: str, aws: dict[str, str], **urls: str) -> dict[str, str]:
    """The settings of one side: its own data dir and SQLite file, and where its media and versions go."""
    data = workdir / name
    data.mkdir()
    return {**aws, "STUDIO_DATA_DIR": str(data), "STUDIO_DATABASE_URL": f"sqlite:///{data / 'studio.db'}",
            **{f"STUDIO_{key.upper()}": value for key, value in urls.items()}}


def records_of(data_dir: Path) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data_dir / 'studio.db'}")
    with engine.connect() as connection:
        manifest = connection.execute(text("SELECT manifest FROM dataset_version ORDER BY id DESC")).scalar_one()
    engine.dispose()
    files = json.loads(manifest)["files"]
    return files["stage1.json"]["records"] + files["val.json"]["records"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=30_000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--distinct-images", type=int, default=None,
                        help="distinct images (default: bench/realistic.py's, capped by --instances)")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-objectstore-bench-")
    print(f"generating {args.instances:,} instances in {workdir}", file=sys.stderr)
    generate = [sys.executable, str(ROOT / "bench" / "gen_dataset.py"), str(workdir / "data"), "--tasks",
                str(args.tasks), "--instances", str(args.instances)]
    if args.distinct_images:
        generate += ["--distinct-images", str(args.distinct_images)]
    made = json.loads(subprocess.run(generate, check=True, capture_output=True, text=True).stdout.strip()
                      .splitlines()[-1])
    dataset = workdir / "data" / "instances.jsonl"
    server, endpoint = start_s3_server()
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_REGION": "us-east-1"}
    try:
        print("uploading the dataset to the bucket (untimed)", file=sys.stderr)
        upload_folder(workdir / "data", "incoming", aws)
        local = side(workdir, "local", aws)
        on_s3 = side(workdir, "s3", aws, media_url=f"s3://{BUCKET}/media", exports_url=f"s3://{BUCKET}/versions")
        media_only = side(workdir, "media-only", aws, media_url=f"s3://{BUCKET}/media-only")
        seconds = {}
        for name, environment, source, images in (
                ("import_local", local, str(dataset), str(dataset.parent)),
                ("import_s3", on_s3, f"s3://{BUCKET}/incoming/instances.jsonl", f"s3://{BUCKET}/incoming"),
                ("import_media_only", media_only, str(dataset), str(dataset.parent))):
            print(f"{name}", file=sys.stderr)
            os.sync()
            studio(["migrate"], environment)
            seconds[name] = studio(["import", "unified", source, "--image-root", images], environment, name)
        print("import_bare", file=sys.stderr)
        seconds["import_bare"] = bare_import(dataset, aws)
        for name, environment in (("export_local", local), ("export_s3", on_s3)):
            print(f"{name}", file=sys.stderr)
            approve_every_task(environment["STUDIO_DATABASE_URL"])
            os.sync()
            seconds[name] = studio(["export", "--cap", "10000000"], environment)
        print("pull", file=sys.stderr)
        seconds["pull"] = studio(["pull", "v1", "--to", str(workdir / "pulled")], on_s3)
    finally:
        server.terminate()
    records = records_of(Path(local["STUDIO_DATA_DIR"]))
    assert records == records_of(Path(on_s3["STUDIO_DATA_DIR"])), "the two exports hold different records"
    rate = {name: round((args.instances if name.startswith("import") else records) / value)
            for name, value in seconds.items()}
    pulled_images = sum(1 for _ in (workdir / "pulled" / "images").iterdir())
    print(json.dumps({
        "server": "moto (tests/s3server.py)", "instances": args.instances, "tasks": args.tasks,
        "distinct_images": made["images"], "records": records, "cores": os.cpu_count(),
        "import_ratio": round(rate["import_s3"] / rate["import_local"], 2),
        "import_bare_ratio": round(rate["import_s3"] / rate["import_bare"], 2),
        "import_s3_cpu_ms_per_image": round(1000 * CPU_SECONDS["import_s3"] / made["images"], 2),
        "import_media_only_ratio": round(rate["import_media_only"] / rate["import_local"], 2),
        "export_ratio": round(rate["export_s3"] / rate["export_local"], 2),
        "pulled_images": pulled_images, "pull_images_per_s": round(pulled_images / seconds["pull"]),
        "rates_per_s": rate, "seconds": {name: round(value, 2) for name, value in seconds.items()},
    }))


if __name__ == "__main__":
    main()
