"""The optional language model's request and response contract.

The server here is a PROTOCOL FAKE, NOT A MODEL: a few lines of ``http.server`` that speak the
OpenAI-compatible ``/v1/chat/completions`` protocol and answer with canned replies, so the
client's requests, its parsing and its refusal of anything ungrounded are tested for real over
HTTP without any model weights.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.assistant import answers, intents
from core.assistant.figures import change, fact
from core.assistant.llm import LanguageModel, grounded


@dataclass
class ProtocolFake:
    """Answers each POST with the next canned (status, body, delay); records each request."""

    replies: list[tuple[int, Any, float]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _completion(content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}


@pytest.fixture
def fake() -> Iterator[ProtocolFake]:
    state = ProtocolFake()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append({"path": self.path, "body": body,
                                   "authorization": self.headers.get("Authorization")})
            status, reply, delay = state.replies.pop(0)
            time.sleep(delay)
            data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _answer() -> answers.Answer:
    return answers.Answer(
        intents.WILL_IT_PRINT, "Not as it is: part.stl scores 75/100.",
        [fact("printability score", 75.0, "points", "analysis")],
        [{"title": "Repair the mesh", "operation": "repair", "params": {},
          "reason": "the mesh is open", "expected": [change("printability score", 75.0, 100.0)]}])


def test_the_request_follows_the_chat_completions_protocol(fake: ProtocolFake) -> None:
    fake.replies.append((200, _completion("will_it_print"), 0.0))
    model = LanguageModel.from_env({"ORFEAS_LLM_URL": fake.url, "ORFEAS_LLM_MODEL": "tiny",
                                    "ORFEAS_LLM_API_KEY": "k"})
    assert model is not None
    assert asyncio.run(model.intent("could a printer manage this thing")) == "will_it_print"
    [sent] = fake.requests
    assert sent["path"] == "/v1/chat/completions" and sent["authorization"] == "Bearer k"
    body = sent["body"]
    assert body["model"] == "tiny" and body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "could a printer manage this thing"
    assert "will_it_print" in body["messages"][0]["content"]


def test_an_answer_that_is_no_intent_is_ignored(fake: ProtocolFake) -> None:
    fake.replies.append((200, _completion("delete_everything"), 0.0))
    assert asyncio.run(LanguageModel(fake.url).intent("hmm")) is None


def test_a_grounded_phrasing_is_kept(fake: ProtocolFake) -> None:
    said = "As it stands it scores 75 of 100 points; repairing the mesh should bring 100."
    fake.replies.append((200, _completion(said), 0.0))
    assert asyncio.run(LanguageModel(fake.url).phrase("will it print?", _answer())) == said
    prompt = fake.requests[0]["body"]["messages"][1]["content"]
    assert "printability score: 75.0 points (analysis)" in prompt
    assert "Repair the mesh" in prompt


@pytest.mark.parametrize("invented", [
    "It scores 75; with a repair it would reach 97 points.",  # a figure nobody measured
    "It scores 75. Hollow it out and it will print.",  # an action not offered
    "It scores 75. Try scaling it down.",
])
def test_a_phrasing_that_adds_a_figure_or_an_action_is_refused(fake: ProtocolFake,
                                                               invented: str) -> None:
    fake.replies.append((200, _completion(invented), 0.0))
    assert not grounded(invented, _answer())
    assert asyncio.run(LanguageModel(fake.url).phrase("will it print?", _answer())) is None


@pytest.mark.parametrize(("status", "reply", "delay"), [
    (500, {"error": "overloaded"}, 0.0),
    (200, "not json at all", 0.0),
    (200, {"choices": []}, 0.0),
    (200, {"choices": [{"message": {"content": None}}]}, 0.0),
    (200, _completion("will_it_print"), 1.0),  # slower than the client waits
])
def test_any_failure_falls_back_to_the_rules(fake: ProtocolFake, status: int, reply: Any,
                                             delay: float) -> None:
    fake.replies.append((status, reply, delay))
    model = LanguageModel(fake.url, timeout_s=0.3)
    assert asyncio.run(model.intent("could a printer manage this")) is None


def test_off_unless_configured() -> None:
    assert LanguageModel.from_env({}) is None
    assert LanguageModel.from_env({"ORFEAS_LLM_URL": "  "}) is None
