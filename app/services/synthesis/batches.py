"""Offline synthesis through OpenAI Batch files: the path for hundreds of thousands of conversations on a cluster.

`write_requests` writes one line per request, `{"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}`, which `vllm run-batch -i requests.jsonl -o output.jsonl --model ...` and the OpenAI Batch API both take.
`read_output` joins their output back on `custom_id` with the requests file (which keeps what the output does not:
the prompt, the sampling, whether the image was sent) and reports each line it cannot use by its number."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.services.synthesis.endpoints import Reply, reply_of

URL = "/v1/chat/completions"


class BatchFileError(ValueError):
    """A requests file that cannot be used as a whole; the message names the file and line."""


def write_requests(path: Path, requests: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Writes (custom_id, body) pairs; atomically, so a file that exists is whole. Returns the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    lines = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for custom_id, body in requests:
                out.write(orjson.dumps({"custom_id": custom_id, "method": "POST", "url": URL, "body": body}) + b"\n")
                lines += 1
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return lines


@dataclass(frozen=True)
class Request:
    line: int
    custom_id: str
    body: dict[str, Any]

    @property
    def saw_image(self) -> bool:
        return any(isinstance(message.get("content"), list) and any(
            part.get("type") == "image_url" for part in message["content"] if isinstance(part, dict))
            for message in self.body.get("messages", []) if isinstance(message, dict))


def _json_lines(path: Path) -> Iterator[tuple[int, Any | orjson.JSONDecodeError]]:
    """Each non-blank line's number and its JSON, or the error that says why it is not JSON."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    yield number, error


def read_requests(path: Path) -> dict[str, Request]:
    requests: dict[str, Request] = {}
    for number, data in _json_lines(path):
        if isinstance(data, orjson.JSONDecodeError):
            raise BatchFileError(f"{path.name}, line {number}: not JSON ({data})")
        custom_id = data.get("custom_id") if isinstance(data, dict) else None
        body = data.get("body") if isinstance(data, dict) else None
        if not isinstance(custom_id, str) or not isinstance(body, dict):
            raise BatchFileError(f"{path.name}, line {number}: needs a custom_id and a body")
        if custom_id in requests:
            raise BatchFileError(f"{path.name}, line {number}: custom_id {custom_id!r} is also on line "
                                 f"{requests[custom_id].line}")
        requests[custom_id] = Request(number, custom_id, body)
    return requests


@dataclass(frozen=True)
class BadOutputLine:
    line: int
    reason: str


def read_output(path: Path, requests: dict[str, Request]) -> Iterator[tuple[int, Request, Reply] | BadOutputLine]:
    """Each output line as its number, request and reply, or as the reason it cannot be used."""
    seen: dict[str, int] = {}
    for number, data in _json_lines(path):
        if isinstance(data, orjson.JSONDecodeError):
            yield BadOutputLine(number, f"not JSON ({data})")
            continue
        custom_id = data.get("custom_id") if isinstance(data, dict) else None
        if not isinstance(custom_id, str):
            yield BadOutputLine(number, "has no custom_id")
            continue
        request = requests.get(custom_id)
        if request is None:
            yield BadOutputLine(number, f"custom_id {custom_id!r} is not in the requests file")
            continue
        if custom_id in seen:
            yield BadOutputLine(number, f"custom_id {custom_id!r} is also on line {seen[custom_id]}")
            continue
        seen[custom_id] = number
        problem = _failed(data)
        if problem:
            yield BadOutputLine(number, f"{custom_id}: {problem}")
            continue
        yield number, request, reply_of(custom_id, _Completion(data["response"]["body"]), 0.0)


def _failed(data: dict[str, Any]) -> str | None:
    error = data.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else str(error)
        return f"the batch reports an error: {message}"
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("body"), dict):
        return "has no response body"
    status = response.get("status_code", 200)
    if status != 200:
        body_error = response["body"].get("error")
        message = body_error.get("message") if isinstance(body_error, dict) else None
        return f"HTTP {status}" + (f": {message}" if message else "")
    return None


class _Completion:
    """A chat completion's JSON read with attribute access, as the OpenAI client's objects are."""

    def __init__(self, data: Any):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if isinstance(self._data, dict) and name in self._data:
            value = self._data[name]
            if isinstance(value, list):
                return [_Completion(item) if isinstance(item, dict) else item for item in value]
            return _Completion(value) if isinstance(value, dict) else value
        raise AttributeError(name)
