"""Sending chat-completions requests to an OpenAI-compatible endpoint (app/services/synthesis/endpoints.py says
which may be used): the `openai` client's async calls, `concurrency` at a time.

The OpenAI client retries 429, 5xx, timeouts and dropped connections with exponential backoff (honouring
Retry-After) and redacts the key from its own debug logs; a request that still fails stops the job: nothing new is
sent, what is in flight is finished and kept, and the error names the endpoint (with the key taken out, should the
server have repeated it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.services.synthesis.endpoints import Caps, Endpoint, Reply, Tally, reply_of


class EndpointFailed(RuntimeError):
    """A request failed after its retries; the job stops, keeping what it has."""


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
        from openai import APIError, AsyncOpenAI

        limit = min(self.concurrency or self.endpoint.concurrency, self.endpoint.concurrency)
        key = self.endpoint.api_key()
        client = AsyncOpenAI(base_url=self.endpoint.base_url, api_key=key, max_retries=self.endpoint.max_retries,
                             timeout=self.endpoint.timeout_s)
        failure: BaseException | None = None
        pending: set[asyncio.Task] = set()
        try:
            async with client:
                while True:
                    while failure is None and self.tally.capped is None and len(pending) < limit:
                        item = next(bodies, None)
                        if item is None or self._capped():  # a cap counts only if something is left to send
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
            words = _words(failure).replace(key, "[its key]")  # a server that echoes the request's headers
            raise EndpointFailed(f"endpoint {self.endpoint.name} ({self.endpoint.host}, model {self.endpoint.model}) "
                                 f"failed after {self.endpoint.max_retries} retries: {words[:2000]}") from None

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
