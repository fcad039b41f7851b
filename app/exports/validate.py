"""Checking a built version as a trainer will meet it: every record against the contract, every file
against the manifest. Used by `python -m app validate` and the tests; reads the files, not the database."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from PIL import Image as PILImage

from app.exports.contract import Violation, check_file
from app.exports.files import hash_file, images_digest
from app.exports.image_tokens import counter_for
from app.exports.layout_checks import chat_layout_problems, hf_layout_problems

RECORD_FILES = ("stage1.json", "val.json", "stage2.json")


def read_array(path: Path) -> Iterator[dict]:
    """The records of a JSON array file, streamed when it has the exporter's layout (a record per line, so
    1.66M records never sit in memory at once), else parsed whole. Refuses a byte-order mark or non-ASCII
    bytes: the trainer reads with the platform's default encoding."""
    with open(path, "rb") as source:
        head = source.read(3)
        if head.startswith(b"\xef\xbb\xbf"):
            raise ValueError("starts with a byte-order mark")
        source.seek(0)
        if source.readline().strip() == b"[":
            return _lines(path)
    data = path.read_bytes()
    if not data.isascii():
        raise ValueError("has non-ASCII bytes: write ASCII-escaped JSON")
    records = json.loads(data)
    if not isinstance(records, list):
        raise ValueError("is not a JSON array")
    return iter(records)


def _lines(path: Path) -> Iterator[dict]:
    with open(path, "rb") as source:
        source.readline()  # "["
        for number, line in enumerate(source, start=2):
            line = line.rstrip(b"\n")
            if line in (b"]", b""):
                continue
            if not line.isascii():
                raise ValueError(f"line {number} has non-ASCII bytes: write ASCII-escaped JSON")
            yield json.loads(line[:-1] if line.endswith(b",") else line)


def _images(folder: Path) -> Iterator[tuple[str, int, str]]:
    """(name, size, sha256 of the bytes) of each image of a version, from images/ or images.tar."""
    if (folder / "images.tar").is_file():
        with tarfile.open(folder / "images.tar") as archive:
            for member in archive:
                if member.isfile() and "/" in member.name:
                    digest = hashlib.sha256(archive.extractfile(member).read()).hexdigest()
                    yield member.name.split("/", 1)[1], member.size, digest
    elif (folder / "images").is_dir():
        for path in sorted((folder / "images").iterdir()):
            if path.is_file():
                entry = hash_file(path)
                yield path.name, entry["bytes"], entry["sha256"]


def _image_problems(folder: Path, manifest: dict) -> Iterator[Violation]:
    """Each image's bytes against its content name, and the set of images against the manifest's count and
    digest (versions built before the digest was recorded are checked image by image only)."""
    seen = []
    for name, size, digest in _images(folder):
        seen.append((name, size))
        if name.split(".", 1)[0] != digest:
            yield Violation(f"images/{name}", "changed image", "its bytes no longer hash to its name")
    if "images_digest" in manifest and (len(seen) != manifest.get("images")
                                        or images_digest(seen) != manifest["images_digest"]):
        yield Violation("images", "image set differs",
                        f"{len(seen):,} images where the manifest lists {manifest.get('images', 0):,}, or their "
                        "names or sizes differ from the manifest's digest")


def _image_token_counter(folder: Path, manifest: dict, archive: tarfile.TarFile | None
                         ) -> Callable[[str], int] | None:
    """For a version built for a model family: an image's tokens by its name, its size read from the image's header
    in the folder or the archive (an image that cannot be read counts as 0 here: the image rule reports it)."""
    count = counter_for(manifest.get("spec", {}).get("model_family"))
    if count is None:
        return None

    def tokens(name: str) -> int:
        try:
            if archive is None:
                opened = PILImage.open(folder / "images" / name)
            elif (member := archive.extractfile(f"images/{name}")) is not None:
                opened = PILImage.open(member)
            else:
                return 0
            with opened as image:
                return count(*image.size)
        except (OSError, ValueError, KeyError):  # KeyError: no such member in the archive
            return 0

    return tokens


def validate_version(folder: Path, *, count_tokens: Callable[[str], int] | None = None, max_tokens: int = 2048,
                     image_tokens: int = 576) -> Iterator[Violation]:
    """Every problem in the version at `folder` (nothing: a trainer can use it as it is)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        yield Violation("manifest.json", "missing", "not a built version (or one still building)")
        return
    manifest = json.loads(manifest_path.read_text(encoding="ascii"))
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            yield Violation(name, "missing file", "listed in the manifest")
        elif hash_file(path) != {"bytes": entry["bytes"], "sha256": entry["sha256"]}:
            yield Violation(name, "changed file", "its size or sha256 differs from the manifest")
    with ExitStack() as opened:  # the archive, when the images are in one, stays open while records are checked
        archive = opened.enter_context(tarfile.open(folder / "images.tar")) \
            if (folder / "images.tar").is_file() else None
        image_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name} if archive else None
        yield from _image_problems(folder, manifest)
        tokens_of_image = _image_token_counter(folder, manifest, archive)
        for name in RECORD_FILES:
            path = folder / name
            if not path.is_file():
                continue
            try:  # a file that stops being JSON half-way is reported where it stops
                for problem in check_file(read_array(path), image_folder=folder / "images", image_names=image_names,
                                          count_tokens=count_tokens, max_tokens=max_tokens,
                                          image_tokens=image_tokens, tokens_of_image=tokens_of_image):
                    yield Violation(f"{name}: {problem.record}", problem.rule, problem.detail)
            except ValueError as error:
                yield Violation(name, "not readable", str(error))
    for layout, problems in (("hf", hf_layout_problems), ("llamafactory", chat_layout_problems),
                             ("swift", chat_layout_problems)):
        if (folder / layout).is_dir():
            yield from problems(folder / layout)
