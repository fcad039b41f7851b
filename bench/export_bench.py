"""How fast a full stage-1 export is at Vision-Flan scale (187 tasks, 1.66M instances), and its peak memory.

    .venv/bin/python bench/export_bench.py                 # SQLite file in a temp dir
    .venv/bin/python bench/export_bench.py --instances 300000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Fills the database through the real migration (bench/filling.py: realistic records with their images in the
media store, or the old thin ones with --thin; every task with an approved, plain instruction, as most
Vision-Flan instructions are), then builds a version with `python -m app export` in its own process (its
peak RSS is that process's).

Baselines, in the same run, both bare loops on one core that stream the same rows with the bare driver
(`sqlite3`, or `psycopg` on PostgreSQL), format the prompt with `str.format` and the options with their
letters, and hard-link each image once into an images folder:
- `same_files` (the ratio's): writes the files the version's records are in, stage1.json and stage1.jsonl in
  ASCII JSON hashed as they are written, and stage1.parquet with the export's schema and writer;
- `one_file` (`one_file_ratio`, the bench's earlier baseline): one JSON lines file and nothing else.
Neither samples, checks the trainer's contract, splits off val.json, or writes the manifest and card: that is
the export's own cost. The build writes its records with one process per core (`cores` below) and stitches the
files from the parts. Targets: ratio >= 0.6 on SQLite and >= 0.5 on PostgreSQL, peak RSS < 500 MB. The last
line is one JSON object.

`--layout hf` builds the hf layout too, and adds a third bare loop (`hf`: each image's bytes read and embedded,
the turns as TRL's messages, Arrow fed by columns, the layout's schema and row groups, one core); `ratio` is then
against `same_files` and `hf` together, and `hf_load_dataset_s` is how long `datasets.load_dataset` takes to open
the result (its first open converts the Parquet to its cache). Target: ratio >= 0.6, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from app.core.migrate import alembic_config
from app.exports import hf_layout
from app.exports.files import (
    ARRAY_FIRST_LEAD,
    ARRAY_LEAD,
    ARRAY_OPENING,
    PARQUET_ROWS_PER_GROUP,
    HashingFile,
    ascii_json,
    hash_file,
    stage1_parquet_writer,
    stage1_schema,
)
from app.exports.validate import validate_version
from app.models import Instruction, InstructionVersion, utcnow
from bench.filling import fill
from tests.scratch import bare_postgres, scratch_database, throwaway_folder

INSTRUCTION = "Look at the image and answer the question. Choose the best option if options are given."


def approve_every_task(url: str) -> None:
    engine = create_engine(url)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(text("UPDATE task SET status = 'verified'"))
        task_ids = [row[0] for row in connection.execute(text("SELECT id FROM task ORDER BY id"))]
        connection.execute(insert(Instruction.__table__), [
            {"task_id": task_id, "label": "main", "status": "approved", "draft_text": INSTRUCTION,
             "draft_input_template": "", "draft_output_template": "", "draft_options_style": "paren_letters",
             "draft_image_placement": "before", "lock_version": 1, "created_at": now} for task_id in task_ids])
        instruction_ids = [row[0] for row in connection.execute(text("SELECT id FROM instruction ORDER BY id"))]
        connection.execute(insert(InstructionVersion.__table__), [
            {"instruction_id": instruction_id, "number": 1, "text": INSTRUCTION, "input_template": "",
             "output_template": "", "options_style": "paren_letters", "image_placement": "before",
             "status": "approved", "created_at": now} for instruction_id in instruction_ids])
    engine.dispose()


BASELINE_ROWS = ("SELECT i.id, i.input_text, i.options, i.raw_output, m.sha256, m.format FROM instance i "
                 "LEFT JOIN image m ON m.id = i.image_id WHERE i.task_id = {p} AND i.status = 'active' "
                 "ORDER BY i.rkey LIMIT {p}")


def bare_records(url: str, media: Path, images: Path, cap: int) -> Iterator[dict]:
    """Each task's active instances streamed with the bare driver, formatted as records, each image hard-linked
    once into `images`."""
    if url.startswith("postgresql"):
        connection = bare_postgres(url)
        cursor = connection.cursor(name="rows")  # server-side: streamed, not fetched whole; declared anew each task
        query, decode = BASELINE_ROWS.format(p="%s"), lambda options: options
    else:
        connection = sqlite3.connect(make_url(url).database)
        cursor = connection.cursor()
        query, decode = BASELINE_ROWS.format(p="?"), lambda options: options and orjson.loads(options)
    images.mkdir()
    linked = set()
    for task_id, task_name in connection.execute("SELECT id, name FROM task ORDER BY name").fetchall():
        cursor.execute(query, (task_id, cap))
        for instance_id, input_text, options, raw_output, sha256, image_format in cursor:
            options = decode(options)
            choices = " ".join(f"({chr(97 + k)}) {option}" for k, option in enumerate(options or ()))
            prompt = "{}\n\n{}\n{}".format(INSTRUCTION, input_text or "", choices).strip()
            conversations = [{"from": "human", "value": prompt}, {"from": "gpt", "value": raw_output}]
            if sha256 is None:
                yield {"id": f"{task_name}/{instance_id}", "task_name": task_name, "conversations": conversations}
                continue
            name = f"{sha256}.{image_format}"
            conversations[0]["value"] = "<image>\n" + prompt
            if name not in linked:
                os.link(media / sha256[:2] / sha256, images / name)
                linked.add(name)
            yield {"id": f"{task_name}/{instance_id}", "image": name, "task_name": task_name,
                   "conversations": conversations}
    connection.close()


def one_file_baseline(url: str, media: Path, out: Path, cap: int) -> tuple[int, float]:
    """The bare loop writing one JSON lines file: the records and nothing else."""
    started, count = time.perf_counter(), 0
    with open(out / "stage1.jsonl", "wb") as sink:
        for record in bare_records(url, media, out / "images", cap):
            sink.write(orjson.dumps(record) + b"\n")
            count += 1
    return count, time.perf_counter() - started


def same_files_baseline(url: str, media: Path, out: Path, cap: int) -> tuple[int, float]:
    """The bare loop writing the files a version's records are in: stage1.json (an array) and stage1.jsonl in
    ASCII, each hashed as it is written, and stage1.parquet as the export writes it, on one core."""
    import pyarrow as pa

    started, count, schema = time.perf_counter(), 0, stage1_schema()
    columns = {name: [] for name in schema.names}  # Arrow is fed columns: 4x faster than a list of records
    array, lines = HashingFile(out / "stage1.json"), HashingFile(out / "stage1.jsonl")
    with stage1_parquet_writer(out / "stage1.parquet") as parquet:
        def flush() -> None:
            parquet.write_table(pa.Table.from_pydict(columns, schema), row_group_size=PARQUET_ROWS_PER_GROUP)
            for values in columns.values():
                values.clear()

        array.write(ARRAY_OPENING)
        for record in bare_records(url, media, out / "images", cap):
            encoded = ascii_json(record)
            array.write((ARRAY_LEAD if count else ARRAY_FIRST_LEAD) + encoded)
            lines.write(encoded + b"\n")
            for name, values in columns.items():
                values.append(record.get(name))
            count += 1
            if count % PARQUET_ROWS_PER_GROUP == 0:
                flush()
        if count % PARQUET_ROWS_PER_GROUP:
            flush()
    array.write(b"\n]\n")
    array.close()
    lines.close()
    hash_file(out / "stage1.parquet")
    return count, time.perf_counter() - started


def hf_baseline(url: str, media: Path, out: Path, cap: int) -> tuple[int, float]:
    """The bare loop writing the hf layout's Parquet: each record's image bytes read and embedded, its turns as
    TRL's messages, fed to Arrow by columns, in the export's schema and row groups, one file, on one core."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema, started, count = hf_layout.schema(), time.perf_counter(), 0
    columns: dict[str, list] = {name: [] for name in schema.names}
    with pq.ParquetWriter(out / "stage1.parquet", schema, compression="zstd") as parquet:
        def flush() -> None:
            parquet.write_table(pa.Table.from_pydict(columns, schema))
            for values in columns.values():
                values.clear()

        for record in bare_records(url, media, out / "images", cap):
            name = record.get("image")
            columns["id"].append(record["id"])
            columns["task_name"].append(record["task_name"])
            columns["images"].append([{"bytes": (out / "images" / name).read_bytes(), "path": name}] if name else [])
            human, gpt = record["conversations"]
            text = human["value"].removeprefix("<image>\n")
            columns["messages"].append([
                {"role": "user", "content": ([{"type": "image", "text": None}] if name else [])
                 + [{"type": "text", "text": text}]},
                {"role": "assistant", "content": [{"type": "text", "text": gpt["value"]}]}])
            count += 1
            if count % hf_layout.ROWS_PER_GROUP == 0:
                flush()
        if count % hf_layout.ROWS_PER_GROUP:
            flush()
    hash_file(out / "stage1.parquet")
    return count, time.perf_counter() - started


def loads_with_datasets(path: Path, cache: Path) -> int | None:
    """Rows Hugging Face `datasets` reads from the Parquet file (offline), or None without `datasets`."""
    os.environ.update(HF_DATASETS_OFFLINE="1", HF_HOME=str(cache))
    try:
        from datasets import load_dataset
    except ImportError:
        return None
    return load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(cache)).num_rows


def opens_hf_layout(folder: Path, cache: Path) -> dict[str, int] | None:
    """Rows per split as `datasets.load_dataset(folder)` opens the hf layout (offline), or None without it."""
    os.environ.update(HF_DATASETS_OFFLINE="1", HF_HOME=str(cache))
    try:
        from datasets import load_dataset
    except ImportError:
        return None
    return {split: rows.num_rows for split, rows in load_dataset(str(folder), cache_dir=str(cache)).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--cap", type=int, default=10_000_000, help="per task (default: everything)")
    parser.add_argument("--database-url", help="default: an SQLite file in a temporary folder")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (bench/filling.py)")
    parser.add_argument("--layout", choices=["hf"], help="also write this layout (and its bare loop for the ratio)")
    args = parser.parse_args()

    workdir = throwaway_folder("studio-export-bench-")
    with scratch_database(args.database_url, workdir) as url:
        from alembic import command

        command.upgrade(alembic_config(url, configure_logging=False), "head")
        print(f"filling {args.tasks} tasks with {args.instances:,} instances", file=sys.stderr)
        fill(url, args.tasks, args.instances, seed=1, media=workdir / "media", thin=args.thin)
        approve_every_task(url)
        baselines = {}
        loops = [("same_files", same_files_baseline), ("one_file", one_file_baseline)]
        for name, loop in loops + ([("hf", hf_baseline)] if args.layout == "hf" else []):
            folder = workdir / f"baseline-{name}"
            folder.mkdir()
            baselines[name] = loop(url, workdir / "media", folder, args.cap)
            shutil.rmtree(folder)
            os.sync()  # neither the export nor the next loop waits for this one's writes
            print(f"  baseline ({name}): {baselines[name][0]:,} records in {baselines[name][1]:.1f} s",
                  file=sys.stderr)
        base_count, base_s = baselines["same_files"]
        if args.layout == "hf":  # the export writes both layouts: its ratio is against both loops
            base_s += baselines["hf"][1]
        env = {**os.environ, "STUDIO_DATABASE_URL": url, "STUDIO_DATA_DIR": str(workdir), "STUDIO_MODE": "dev",
               "OMP_NUM_THREADS": "1"}
        started = time.perf_counter()
        peak_file = workdir / "export-peak.json"
        built = subprocess.run([sys.executable, str(Path(__file__).parent / "peak_memory.py"), str(peak_file), "-m",
                                "app", "export", "--cap", str(args.cap), "--name", "bench",
                                *(["--layout", args.layout] if args.layout else [])],
                               env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        total_s = time.perf_counter() - started
        if built.returncode != 0:
            raise SystemExit(built.stderr)
        peak_mb = json.loads(peak_file.read_text())["peak_mb"]  # the export's own (bench/peak_memory.py)
        manifest = json.loads((workdir / "exports" / "1" / "manifest.json").read_text())
        records = manifest["files"]["stage1.json"]["records"] + manifest["files"]["val.json"]["records"]
        print(f"  export: {records:,} records in {total_s:.1f} s, peak RSS {peak_mb:.0f} MB", file=sys.stderr)
        excluded = manifest["excluded"]["records"]  # over the trainer's length: the contract leaves them out
        assert records + excluded == base_count, (records, excluded, base_count)
        started = time.perf_counter()
        problems = list(validate_version(workdir / "exports" / "1"))
        validate_s = time.perf_counter() - started
        print(f"  validator: {len(problems)} problems in {validate_s:.1f} s", file=sys.stderr)
        loaded = loads_with_datasets(workdir / "exports" / "1" / "stage1.parquet", workdir / "hf")
        print(f"  datasets.load_dataset(parquet): {loaded:,} rows", file=sys.stderr)
        hf_figures = {}
        if args.layout == "hf":
            started = time.perf_counter()
            opened = opens_hf_layout(workdir / "exports" / "1" / "hf", workdir / "hf-layout-cache")
            hf_figures = {"layout": "hf", "hf_bare_s": round(baselines["hf"][1], 1),
                          "hf_load_dataset_s": round(time.perf_counter() - started, 1), "hf_rows": opened,
                          "hf_mb": round(sum(entry["bytes"] for name, entry in manifest["files"].items()
                                             if name.startswith("hf/")) / 1e6, 1)}
            print(f"  datasets.load_dataset(hf/): {opened} rows in {hf_figures['hf_load_dataset_s']} s",
                  file=sys.stderr)
        figures = {"database": make_url(url).get_backend_name(), "data": "thin" if args.thin else "realistic",
                   "tasks": args.tasks, "instances": args.instances, "records": records, "excluded": excluded,
                   "cores": len(os.sched_getaffinity(0)),  # the build writes with one process per core
                   "total_s": round(total_s, 1), "records_per_s": round(records / total_s),
                   "baseline_per_s": round(base_count / base_s), "ratio": round(base_s / total_s, 2),
                   "one_file_baseline_per_s": round(base_count / baselines["one_file"][1]),
                   "one_file_ratio": round(baselines["one_file"][1] / total_s, 2),
                   "peak_rss_mb": round(peak_mb, 1),
                   "stage1_json_mb": round(manifest["files"]["stage1.json"]["bytes"] / 1e6, 1),
                   "validator_problems": len(problems), "validate_s": round(validate_s, 1),
                   "datasets_rows": loaded, **hf_figures}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
