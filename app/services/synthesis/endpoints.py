"""The OpenAI-compatible endpoints synthesis may send to, and the client that sends.

Nothing leaves the studio unless an admin named the endpoint in the file `STUDIO_SYNTHESIS_ENDPOINTS` points at:

    vllm-qwen:
      base_url: http://gpu-01:8000/v1     # `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`
      model: Qwen/Qwen2.5-VL-7B-Instruct
      vision: true                        # sees the image (sent as a data URL); false: the dataset's words only
      api_key_env: VLLM_API_KEY           # or api_key_file: /run/secrets/vllm; neither: no key
      concurrency: 8
      max_retries: 4
      timeout_s: 120

The key is read from the environment (or the file) by the worker when a job starts, and is never stored, shown or
logged (the OpenAI client redacts it from its own debug logs). Requests run concurrently up to the endpoint's
limit; the OpenAI client retries 429, 5xx, timeouts and dropped connections with exponential backoff (honouring
Retry-After), and a request that still fails stops the job: nothing new is sent, what is in flight is finished
and kept, and the error names the endpoint."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class EndpointConfigError(ValueError):
    """The endpoints file cannot be used; the message says where."""


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    base_url: str
    model: str = Field(min_length=1, max_length=200)
    vision: bool = True
    api_key_env: str | None = None
    api_key_file: Path | None = None
    concurrency: int = Field(8, ge=1, le=256)
    max_retries: int = Field(4, ge=0, le=20)
    timeout_s: float = Field(120, gt=0, le=3600)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. http://gpu-01:8000/v1")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: name the key with api_key_env or api_key_file")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        """What a job page names: the endpoint's host and port, never its path or key."""
        return urlsplit(self.base_url).netloc

    def api_key(self) -> str:
        """The key, read now from where the settings say; a placeholder when none is named (vLLM needs none)."""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EndpointConfigError(f"endpoint {self.name}: the environment variable {self.api_key_env} is "
                                          "not set")
            return key
        if self.api_key_file:
            try:
                return self.api_key_file.read_text().strip()
            except OSError as error:
                raise EndpointConfigError(f"endpoint {self.name}: cannot read its key file ({error.strerror})") \
                    from None
        return "no-key"


def load_endpoints(path: Path | None) -> dict[str, Endpoint]:
    """The endpoints an admin configured, by name; none when the settings name no file."""
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise EndpointConfigError(f"{path}: cannot read the endpoints file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise EndpointConfigError(f"{path}: not YAML ({error})") from None
    if not isinstance(document, dict):
        raise EndpointConfigError(f"{path}: must map endpoint names to their settings")
    endpoints = {}
    for name, values in document.items():
        if not isinstance(name, str) or not name or set(name) - NAME_CHARS:
            raise EndpointConfigError(f"{path}: endpoint name {name!r} must be lowercase letters, digits, - _ .")
        try:
            endpoints[name] = Endpoint(name=name, **(values if isinstance(values, dict) else {}))
        except ValidationError as error:
            where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise EndpointConfigError(f"{path}: endpoint {name}: {where}") from None
        except TypeError:
            raise EndpointConfigError(f"{path}: endpoint {name}: its settings must be a mapping") from None
    return endpoints


class EndpointFailed(RuntimeError):
    """A request failed after its retries; the job stops, keeping what it has."""


@dataclass(frozen=True)
class Reply:
    key: str
    text: str | None  # None: the endpoint answered with something that is not a chat completion
    model: str | None  # as the endpoint names itself in the answer
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    problem: str | None = None


@dataclass(frozen=True)
class Caps:
    """Where a job stops sending, cleanly: requests, and prompt plus completion tokens (what is in flight when
    the cap is reached still finishes)."""

    max_requests: int | None = None
    max_tokens: int | None = None


@dataclass
class Tally:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    capped: str | None = None  # which cap stopped the job

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def reached(self, caps: Caps) -> str | None:
        if caps.max_requests is not None and self.requests >= caps.max_requests:
            return f"the cap of {caps.max_requests:,} requests"
        if caps.max_tokens is not None and self.tokens >= caps.max_tokens:
            return f"the cap of {caps.max_tokens:,} tokens"
        return None


def reply_of(key: str, completion: Any, seconds: float) -> Reply:
    usage = getattr(completion, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    try:
        text = completion.choices[0].message.content
        if not isinstance(text, str):
            raise TypeError
    except (AttributeError, IndexError, TypeError, KeyError):
        return Reply(key, None, None, prompt_tokens, completion_tokens, seconds,
                     problem="the endpoint's answer is not a chat completion with a message")
    return Reply(key, text, getattr(completion, "model", None), prompt_tokens, completion_tokens, seconds)


@dataclass
class Sender:
    """Sends chat-completions bodies to one endpoint, `concurrency` at a time, calling `on_reply` (in the caller's
    thread, between awaits) with each answer as it comes."""

    endpoint: Endpoint
    on_reply: Callable[[Reply], None]
    caps: Caps = field(default_factory=Caps)
    concurrency: int | None = None  # the endpoint's own, unless a job asks for fewer
    tally: Tally = field(default_factory=Tally)

    def run(self, bodies: Iterable[tuple[str, dict[str, Any]]]) -> Tally:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the worker's case: no loop in this thread
            asyncio.run(self._run(iter(bodies)))
        else:  # called from code that runs a loop (a notebook, a test driving a browser): a loop of its own
            with ThreadPoolExecutor(max_workers=1) as own:
                own.submit(asyncio.run, self._run(iter(bodies))).result()
        return self.tally

    async def _run(self, bodies) -> None:
        from openai import APIError, AsyncOpenAI  # the worker's dependency; the web app never sends

        limit = min(self.concurrency or self.endpoint.concurrency, self.endpoint.concurrency)
        client = AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key(),
                             max_retries=self.endpoint.max_retries, timeout=self.endpoint.timeout_s)
        failure: BaseException | None = None
        pending: set[asyncio.Task] = set()
        try:
            async with client:
                while True:
                    while failure is None and len(pending) < limit and not self._capped():
                        item = next(bodies, None)
                        if item is None:
                            break
                        self.tally.requests += 1
                        pending.add(asyncio.create_task(self._send(client, *item)))
                    if not pending:
                        break
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        try:
                            reply = task.result()
                        except APIError as error:
                            failure = failure or error
                            continue
                        self.tally.prompt_tokens += reply.prompt_tokens
                        self.tally.completion_tokens += reply.completion_tokens
                        self.on_reply(reply)
        finally:
            for task in pending:  # the caller stopped (cancelled, or its storing failed): nothing half-sent stays
                task.cancel()
        if failure is not None:
            raise EndpointFailed(f"endpoint {self.endpoint.name} ({self.endpoint.host}, model {self.endpoint.model}) "
                                 f"failed after {self.endpoint.max_retries} retries: {_words(failure)}") from None

    def _capped(self) -> bool:
        self.tally.capped = self.tally.capped or self.tally.reached(self.caps)
        return self.tally.capped is not None

    async def _send(self, client, key: str, body: dict[str, Any]) -> Reply:
        started = time.perf_counter()
        completion = await client.chat.completions.create(**body)
        return reply_of(key, completion, time.perf_counter() - started)


def _words(error: BaseException) -> str:
    """The error as a person reads it: the status and the server's message, or what happened to the connection."""
    status = getattr(error, "status_code", None)
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    message = message or getattr(error, "message", None) or str(error) or type(error).__name__
    return f"HTTP {status}: {message}" if status else message
