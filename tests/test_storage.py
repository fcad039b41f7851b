"""The media store: content-addressed, atomic, and confined to its root."""

from __future__ import annotations

import hashlib

import pytest

from app.storage import MediaStore, PathOutsideRoot, confined


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
