"""The media store: content-addressed, atomic, and confined to its root."""

from __future__ import annotations

import hashlib

import pytest

from app.core.storage import MediaStore, PathOutsideRoot, confined


def test_put_stores_bytes_once_under_their_sha256(tmp_path):
    store = MediaStore(tmp_path / "media")
    digest = store.put(b"pixels")
    assert digest == hashlib.sha256(b"pixels").hexdigest()
    assert store.path_for(digest).read_bytes() == b"pixels"
    assert store.put(b"pixels") == digest
    files = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert files == [store.path_for(digest)]  # no temporary files left behind


def test_path_for_refuses_anything_but_a_digest(tmp_path):
    store = MediaStore(tmp_path)
    for bad in ("../../etc/passwd", "A" * 64, "ab", "a" * 63 + "/"):
        with pytest.raises(ValueError):
            store.path_for(bad)


def test_confined_refuses_paths_that_leave_the_root(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("x")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    assert confined(root, "sub/a.png") == (root / "sub" / "a.png").resolve()
    for hostile in ("../secret.txt", "/etc/passwd", "sub/../../secret.txt", "escape"):
        with pytest.raises(PathOutsideRoot):
            confined(root, hostile)


def test_files_stored_without_an_fsync_each_are_whole_and_made_durable_at_once(tmp_path):
    store = MediaStore(tmp_path / "media")
    digests = [store.put(f"image {k}".encode(), durable=False) for k in range(3)]
    store.make_durable()  # one syncfs for the three; raises if the kernel refuses
    assert [store.path_for(d).read_bytes() for d in digests] == [f"image {k}".encode() for k in range(3)]
    assert not list((tmp_path / "media").rglob(".incoming-*"))  # no temporary file left behind


def test_a_folder_image_source_refuses_what_is_not_a_regular_file_inside_its_root(tmp_path):
    import os

    from app.ingest.image_sources import FolderSource
    from app.ingest.images import ImageRejected

    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"jpeg bytes")
    os.mkfifo(root / "pipe.jpg")  # opening it for reading would wait for a writer for ever
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    source = FolderSource(root)
    assert source.read("a.jpg", 100) == b"jpeg bytes"
    for name, reason in [("pipe.jpg", "is not a file"), ("sub", "is not a file"), ("nope.jpg", "does not exist"),
                         ("link.jpg", "outside the image root"), ("../secret.jpg", "outside the image root")]:
        with pytest.raises(ImageRejected, match=reason):
            source.read(name, 100)
    with pytest.raises(ImageRejected, match="more than the 4 allowed"):
        source.read("a.jpg", 4)
