"""The instance browser and the image routes: keyset grid, filters, thumbnails made once and cached."""

from __future__ import annotations

import io
import os
import time

from PIL import Image as PILImage
from sqlmodel import select

from app.core.storage import MediaStore
from app.models import Image, Instance, Role
from app.services.images import add_image
from app.services.tasks import refresh_instance_counts
from tests.factories import login, make_task, make_user, soup


def _png(colour: str, size=(640, 480)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _task_with_images(db, settings, count: int = 7):
    task = make_task(db, "SHAPES+grid")
    store = MediaStore(settings.media_dir)
    colours = ["red", "green", "blue"]
    for k in range(count):
        image = add_image(db, store, _png(colours[k % 3]))
        db.add(Instance(task_id=task.id, source_id=f"s{k}", image_id=image.id, raw_output=colours[k % 3],
                        input_text=f"Which colour is shape {k}?", options=colours if k % 2 else None,
                        split="validation" if k >= 5 else "train", status="flagged" if k == 6 else "active",
                        rkey=k))
    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    return task


def _source_ids(response) -> list[str]:
    return [card.select_one(".source-id a").text for card in soup(response).select(".instance-card")]


def test_the_grid_pages_by_keyset_and_filters(client, db, settings):
    task = _task_with_images(db, settings)
    login(client, make_user(db, Role.reviewer).email)
    first = client.get(f"/tasks/{task.id}/instances")
    assert _source_ids(first) == ["s0", "s1", "s2"]
    following = soup(first).select_one("a[rel=next]")["href"]
    assert _source_ids(client.get(following)) == ["s3", "s4", "s5"]
    assert _source_ids(client.get(f"/tasks/{task.id}/instances?split=validation")) == ["s5", "s6"]
    assert _source_ids(client.get(f"/tasks/{task.id}/instances?status=flagged")) == ["s6"]
    assert _source_ids(client.get(f"/tasks/{task.id}/instances?q=shape 4")) == ["s4"]
    assert _source_ids(client.get(f"/tasks/{task.id}/instances?q=green&split=train")) == ["s1", "s4"]
    fragment = client.get(f"/tasks/{task.id}/instances?status=flagged", headers={"HX-Request": "true"})
    assert soup(fragment).select_one("html") is None and _source_ids(fragment) == ["s6"]
    card = soup(first).select(".instance-card")[1]
    assert [li.text for li in card.select("ol.options li")] == ["red", "green", "blue"]
    assert client.get("/tasks/999/instances").status_code == 404


def test_an_instance_page_shows_the_full_image_and_fields(client, db, settings):
    _task_with_images(db, settings)
    login(client, make_user(db, Role.author).email)
    instance = db.exec(select(Instance).where(Instance.source_id == "s1")).one()
    page = soup(client.get(f"/instances/{instance.id}"))
    image = db.get(Image, instance.image_id)
    assert page.select_one("img.full-image")["src"] == f"/media/{image.sha256}"
    assert page.select_one("#raw-output").text == "green"
    assert client.get("/instances/999999").status_code == 404


def test_thumbnails_are_made_once_and_cached_for_good(client, db, settings):
    _task_with_images(db, settings, count=1)
    login(client, make_user(db, Role.reviewer).email)
    sha = db.exec(select(Image.sha256)).one()
    response = client.get(f"/media/{sha}/thumb")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert "immutable" in response.headers["cache-control"] and "private" in response.headers["cache-control"]
    with PILImage.open(io.BytesIO(response.content)) as thumb:
        assert thumb.size == (256, 192)
    path = settings.thumbnail_dir / sha[:2] / f"{sha}.jpg"
    made = path.stat().st_mtime_ns
    time.sleep(0.01)
    assert client.get(f"/media/{sha}/thumb").content == response.content
    assert path.stat().st_mtime_ns == made  # served from disk, not made again
    full = client.get(f"/media/{sha}")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert full.content == MediaStore(settings.media_dir).path_for(sha).read_bytes()


def test_unknown_or_malformed_digests_are_404(client, db):
    login(client, make_user(db, Role.reviewer).email)
    assert client.get(f"/media/{'a' * 64}").status_code == 404
    assert client.get("/media/..%2F..%2Fsecret_key").status_code == 404
    assert client.get(f"/media/{'A' * 64}/thumb").status_code == 404
    assert not any(name.startswith(".incoming") for name in os.listdir(client.app.state.settings.data_dir))
