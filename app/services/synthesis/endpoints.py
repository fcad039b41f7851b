"""The OpenAI-compatible endpoints synthesis may send to, and what a request gives back (the worker's
`worker/endpoint_client.py` sends: the web app never does).

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
logged."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    model = getattr(completion, "model", None)
    return Reply(key, text, model[:200] if isinstance(model, str) else None, prompt_tokens, completion_tokens,
                 seconds)
