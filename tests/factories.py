"""Builders for test data, through the same services the app uses."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Instance, Role, SourceDataset, Task, User
from app.schemas import UserCreate
from app.services import users as user_service
from app.services.tasks import refresh_instance_counts

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


def make_user(db: Session, *roles: Role, email: str | None = None, password: str = PASSWORD) -> User:
    email = email or f"user{next(_serial)}@example.org"
    user, _ = user_service.create_user(
        db, data=UserCreate(email=email, display_name=email.split("@")[0], roles=list(roles), password=password),
        actor_id=None)
    return user


def bearer(db: Session, user: User) -> dict[str, str]:
    """Headers carrying a new API token of `user`, as a script sends them."""
    _, token = user_service.create_token(db, user_id=user.id, name="script", actor_id=user.id)
    return {"Authorization": f"Bearer {token}"}


def make_dataset(db: Session, name: str = "GEOMETRY3K", **fields) -> SourceDataset:
    dataset = SourceDataset(name=name, **fields)
    db.add(dataset)
    db.commit()
    return dataset


def make_task(db: Session, name: str, *, dataset: SourceDataset | None = None, instances: int = 0,
              **fields) -> Task:
    task = Task(name=name, source_dataset_id=dataset.id if dataset else None, **fields)
    db.add(task)
    db.flush()
    rng = random.Random(name)
    db.add_all(Instance(task_id=task.id, source_id=f"{name}-{k}", raw_output=f"answer {k}",
                        rkey=rng.getrandbits(31)) for k in range(instances))
    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    db.refresh(task)
    return task


def csrf_from(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").select_one("input[name=csrf_token]")
    assert field is not None, "page has no CSRF field"
    return field["value"]


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs in through the login form; returns the session's CSRF token for later posts."""
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/account").text)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has ended: whoever adopted it reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
