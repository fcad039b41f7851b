"""An OpenAI-compatible chat-completions server for the tests and the bench, started on a free port.

It checks each request as a real server would take it (the model's name, system then user messages, image data URLs
that decode to images, a max_tokens) and records what is wrong in `problems`; it answers with a conversation about
the subject's words, after `delay_s`, unless the test scripted the next answers: "429", "500", "echo_500" (a 500
that repeats the Authorization header), "timeout" (answers after the client gave up), "garbage" (a 200 that is
not a chat completion), "not_json", "refusal", "ok"."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from PIL import Image

from tests.serving import serving


@dataclass
class Behaviour:
    model: str = "test-vlm"
    delay_s: float = 0.0
    timeout_s: float = 5.0  # how long a "timeout" answer sleeps: longer than the client waits
    script: deque[str] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0


def _check(body: dict[str, Any], behaviour: Behaviour) -> list[str]:
    problems = []
    if body.get("model") != behaviour.model:
        problems.append(f"model {body.get('model')!r}")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("no max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or [m.get("role") for m in messages] != ["system", "user"]:
        return [*problems, "messages are not system then user"]
    content = messages[1]["content"]
    parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
    for part in parts:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            head, _, data = url.partition(",")
            if not (head.startswith("data:image/") and head.endswith(";base64")):
                problems.append(f"image URL {head[:40]!r} is not a base64 data URL")
                continue
            try:
                Image.open(io.BytesIO(base64.b64decode(data, validate=True))).verify()
            except Exception as error:  # noqa: BLE001 - any decoding failure is the finding
                problems.append(f"image data does not decode: {error}")
        elif part.get("type") != "text" or not isinstance(part.get("text"), str):
            problems.append(f"unexpected content part {part.get('type')!r}")
    return problems


def _completion(model: str, text: str, prompt_tokens: int) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4,
                      "total_tokens": prompt_tokens + len(text) // 4}}


def conversation_text(subject_words: str) -> str:
    """A well-formed reply about the subject's words (their last line: the dataset's answer)."""
    answer = subject_words.strip().splitlines()[-1] if subject_words.strip() else "a picture"
    return orjson.dumps({"turns": [
        {"question": "What does the image show?", "answer": f"It shows {answer}."},
        {"question": "Where is it?", "answer": "In the middle of the picture."}]}).decode()


def make_app(behaviour: Behaviour) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request):
        body = orjson.loads(await request.body())
        behaviour.requests.append(body)
        behaviour.authorizations.add(request.headers.get("authorization", ""))
        behaviour.problems += _check(body, behaviour)
        behaviour.in_flight += 1
        behaviour.most_in_flight = max(behaviour.most_in_flight, behaviour.in_flight)
        try:
            scripted = behaviour.script.popleft() if behaviour.script else None
            if scripted == "timeout":
                await asyncio.sleep(behaviour.timeout_s)
            elif behaviour.delay_s:
                await asyncio.sleep(behaviour.delay_s)
            if scripted == "echo_500":  # a server that repeats the request's headers in its error
                return JSONResponse({"error": {"message": f"upstream refused {request.headers.get('authorization')}"}},
                                    status_code=500)
            if scripted in ("429", "500"):
                return JSONResponse({"error": {"message": f"scripted {scripted}", "type": "test"}},
                                    status_code=int(scripted))
            if scripted == "garbage":
                return JSONResponse({"surprise": True})
            if scripted == "not_json":
                return PlainTextResponse("<html>proxy error</html>")
            content = body["messages"][1]["content"]
            words = content if isinstance(content, str) else next(p["text"] for p in content if p["type"] == "text")
            text = "I'm sorry, I cannot help with that." if scripted == "refusal" else conversation_text(words)
            return _completion(behaviour.model, text, prompt_tokens=len(str(content)) // 4)
        finally:
            behaviour.in_flight -= 1

    return app


class OpenAIServer:
    """`with OpenAIServer() as server:` serves on `server.base_url` (…/v1) until the block ends."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self._stack = ExitStack()

    def __enter__(self) -> OpenAIServer:
        self.base_url = self._stack.enter_context(serving(make_app(self.behaviour))) + "/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def main() -> None:
    """`python -m tests.openai_server --port P --delay-s 0.05`: serve until killed (the synthesis bench runs it in
    its own process, so that the client's time is not the server's)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-s", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(make_app(Behaviour(delay_s=args.delay_s)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
