"""The `hf` layout: a version as a Hugging Face dataset with the images inside, which `datasets.load_dataset(folder)`
opens offline and TRL's vision-language collators take as they are.

    hf/README.md                               the dataset card, its YAML `configs` naming the splits
    hf/stage1/stage1-00000-of-00002.parquet    stage 1, sharded by size
    hf/stage2/..., hf/validation/...           stage 2 (when the version has one), the validation split

Each row: `id`, `task_name` (null in stage 2), `images` (a list of {bytes, path}: the picture's bytes in the file,
as `push_to_hub` writes an `Image()` column) and `messages` in TRL's format: `{role, content}` turns whose content
is a list of `{type: "image"}` and `{type: "text", text}` parts, the image part where the record's `<image>` token
was. The column types are declared in each file's schema metadata (`huggingface`), as `datasets` writes them.

It is written from the `llava` layout's files once they are built (`llava_records`), a row group at a time, so the
memory it takes does not grow with the version; the images' bytes come from the version's images
folder or, for a version kept on object storage (whose images are not copied), from the media bucket, a row group's
worth at a time over several connections."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import Any

from app.exports import llava_records
from app.exports.contract import IMAGE_TOKEN
from app.exports.files import HashingFile, hash_file

FOLDER = "hf"
SHARD_BYTES = 256 << 20  # about what `push_to_hub` cuts at (its default is 500 MB), a little for memory's sake
ROWS_PER_GROUP = 500  # a Parquet row group: what a reader decodes at once, images included
BUCKET_READERS = 16  # images fetched at once from a bucket, which answers each in a round trip
FEATURES = {
    "id": {"dtype": "string", "_type": "Value"},
    "task_name": {"dtype": "string", "_type": "Value"},
    "images": {"feature": {"_type": "Image"}, "_type": "List"},
    "messages": {"feature": {
        "role": {"dtype": "string", "_type": "Value"},
        "content": {"feature": {"type": {"dtype": "string", "_type": "Value"},
                                "text": {"dtype": "string", "_type": "Value"}}, "_type": "List"}}, "_type": "List"},
}


def schema():
    import pyarrow as pa

    part = pa.struct([("type", pa.string()), ("text", pa.string())])
    turn = pa.struct([("role", pa.string()), ("content", pa.list_(part))])
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema([("id", pa.string()), ("task_name", pa.string()), ("images", pa.list_(image)),
                      ("messages", pa.list_(turn))],
                     metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})})


def messages(conversations: list[dict[str, str]]) -> list[dict[str, Any]]:
    """LLaVA's turns as TRL's messages: each `<image>` token becomes an image part, in its place; the newline that
    joins the token to the text is the chat template's to write, not the text's."""
    turns = []
    for turn in conversations:
        pieces = turn["value"].split(IMAGE_TOKEN)
        content: list[dict[str, Any]] = []
        for k, piece in enumerate(pieces):
            if k:
                content.append({"type": "image", "text": None})
            text = piece.removeprefix("\n") if k else piece
            text = text.removesuffix("\n") if k < len(pieces) - 1 else text
            if text:
                content.append({"type": "text", "text": text})
        turns.append({"role": llava_records.role(turn), "content": content})
    return turns


ImageReader = Callable[[str], bytes]  # an image's bytes by its name in the version (<sha256>.<format>)
BatchReader = Callable[[list[str]], list[bytes]]  # a row group's images, in order


def row(record: dict[str, Any], picture: bytes | None) -> dict[str, Any]:
    """The record as a row, with its image's bytes (None: a text-only record)."""
    name = record.get("image")
    return {"id": record["id"], "task_name": record.get("task_name"),
            "images": [{"bytes": picture, "path": name}] if name else [],
            "messages": messages(record["conversations"])}


def write(work: Path, *, images: ImageReader, card: str, readers: int = 1, shard_bytes: int = SHARD_BYTES,
          rows_per_group: int = ROWS_PER_GROUP) -> dict[str, dict[str, Any]]:
    """Writes the layout under `work/hf` from the llava files in `work`; the manifest's entries of its files.
    `images` reads an image's bytes by its name, `readers` of them at once (1: in this thread, as for a folder,
    where a pool of threads only costs time). A shard ends at the row group that takes it past `shard_bytes`."""
    folder = work / FOLDER
    folder.mkdir()
    files: dict[str, dict[str, Any]] = {}
    splits = []
    with ThreadPoolExecutor(readers) if readers > 1 else nullcontext() as pool:
        read = (lambda names: list(pool.map(images, names))) if pool else (lambda names: [images(n) for n in names])
        for split, records in llava_records.splits(work).items():
            for path, count in _shards(folder / split, split, records, read, shard_bytes, rows_per_group):
                files[path.relative_to(work).as_posix()] = {**hash_file(path), "records": count}
                splits.append(split)
    readme = HashingFile(folder / "README.md")
    readme.write(readme_text(card, list(dict.fromkeys(splits))).encode("utf-8"))
    files[f"{FOLDER}/README.md"] = readme.close()
    return dict(sorted(files.items()))


def readme_text(card: str, splits: list[str]) -> str:
    """The card under the YAML header `datasets` reads the splits from."""
    header = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        header += [f"  - split: {split}", f"    path: {split}/*.parquet"]
    return "\n".join([*header, "---", "", card])


def _shards(folder: Path, split: str, records: Iterable[dict], read: BatchReader, shard_bytes: int,
            rows_per_group: int) -> Iterator[tuple[Path, int]]:
    """Parquet files of about `shard_bytes` each, named `<split>-NNNNN-of-MMMMM.parquet` once their number is
    known; (path, records) for each. A split without records has no file (and no entry in the card's configs):
    `datasets` cannot read an empty split."""
    pending = iter(records)
    written: list[tuple[Path, int]] = []
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".shard-{len(written)}.parquet"
        count, more = _write_shard(path, pending, read, shard_bytes, rows_per_group)
        if count:
            written.append((path, count))
        else:
            path.unlink()
        if not more:
            break
    if not written:
        folder.rmdir()
    for k, (path, count) in enumerate(written):
        final = folder / f"{split}-{k:05d}-of-{len(written):05d}.parquet"
        path.rename(final)
        yield final, count


def _write_shard(path: Path, records: Iterator[dict], read: BatchReader, shard_bytes: int, rows_per_group: int
                 ) -> tuple[int, bool]:
    """Rows into one Parquet file until it holds about `shard_bytes` or the records end: (rows, whether any
    record may be left). A row group at a time: its images read together, Arrow fed by columns (several times
    faster than rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout = schema()
    count, size = 0, 0
    with pq.ParquetWriter(path, layout, compression="zstd") as writer:
        for group in _groups(records, rows_per_group):
            names = [record["image"] for record in group if record.get("image")]
            pictures = dict(zip(names, read(names), strict=True))
            columns: dict[str, list] = {name: [] for name in layout.names}
            for record in group:
                for name, value in row(record, pictures.get(record.get("image", ""))).items():
                    columns[name].append(value)
            writer.write_table(pa.Table.from_pydict(columns, layout))
            count += len(group)
            size += sum(len(picture) for picture in pictures.values()) + sum(
                len(turn["value"]) for record in group for turn in record["conversations"])
            if size >= shard_bytes:
                return count, True
    return count, False


def _groups(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while group := list(islice(records, size)):
        yield group

