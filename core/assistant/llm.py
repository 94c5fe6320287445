"""An optional language model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

Off unless ``ORFEAS_LLM_URL`` names the endpoint. It does two things, and is trusted with
neither: it maps a question the rules do not recognise to one of the assistant's intents (any
reply that is not exactly an intent's name is ignored), and it rephrases a grounded answer.
A rephrasing is kept only if every number in it is one the grounded answer already holds and
it names no operation the answer does not offer: the model can make the words friendlier, never
add a figure or an action. Any error, timeout or refusal falls back to the rules' answer.
The endpoint is not trusted to behave either: the whole exchange (connecting, a reply trickled
a byte at a time) has one deadline, a reply is read only up to :data:`MAX_REPLY_BYTES`, and a
reply PostgreSQL could not store (a NUL, a lone surrogate) or too deep to parse is no reply.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from core.assistant import intents
from core.assistant.answers import Answer

TIMEOUT_S = 5.0
MAX_REPLY_CHARS = 4000
MAX_REPLY_BYTES = 256 * 1024
"""A chat completion of ``max_tokens=600`` is a few kilobytes; a bigger body is not read."""
_NUMBER = re.compile("(?<![\\w.])[-\u2212]?\\d+(?:[.,]\\d+)?")
_OPERATION_WORDS = re.compile(
    r"\b(repair\w*|reorient\w*|thicken\w*|hollow\w*|scal(?:e|ed|ing)|styl(?:e|ed|ing)|"
    r"material\w*|analys\w*|analyz\w*|subdivid\w*|smooth\w*|enlarg\w*)\b", re.IGNORECASE)


@dataclass(frozen=True)
class LanguageModel:
    url: str
    model: str = "default"
    api_key: str | None = None
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LanguageModel | None:
        url = env.get("ORFEAS_LLM_URL", "").strip()
        if not url:
            return None
        return cls(url=url, model=env.get("ORFEAS_LLM_MODEL", "default").strip() or "default",
                   api_key=env.get("ORFEAS_LLM_API_KEY") or None,
                   timeout_s=_seconds(env.get("ORFEAS_LLM_TIMEOUT_S"), TIMEOUT_S))

    async def _complete(self, system: str, user: str) -> str | None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "temperature": 0, "max_tokens": 600,
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": user}]}
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self._post(body, headers)
            content = json.loads(raw)["choices"][0]["message"]["content"]
            if not isinstance(content, str) or "\x00" in content:
                return None
            content.encode("utf-8")  # a lone surrogate cannot be stored: UnicodeEncodeError
        except (TimeoutError, httpx.HTTPError, ValueError, KeyError, IndexError, TypeError,
                RecursionError):
            return None
        return content.strip()

    async def _post(self, body: dict[str, object], headers: dict[str, str]) -> bytes:
        """The reply's body, given up on (``ValueError``) as soon as it passes
        :data:`MAX_REPLY_BYTES`."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client, \
                client.stream("POST", self.url, json=body, headers=headers) as response:
            response.raise_for_status()
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > MAX_REPLY_BYTES:
                    raise ValueError("the language model's reply is too large")
            return bytes(received)

    async def intent(self, question: str) -> str | None:
        """One of the assistant's intents for ``question``, or None."""
        names = [name for name, _ in intents.CAPABILITIES]
        system = ("Classify the user's question about a 3D design studio project. Reply with "
                  "exactly one of these words and nothing else: " + ", ".join(names) +
                  f", {intents.UNKNOWN}. Examples: " +
                  "; ".join(f"{example} -> {name}" for name, example in intents.CAPABILITIES))
        reply = await self._complete(system, question)
        found = reply.strip().strip(".`'\"").lower() if reply else None
        return found if found in names else None

    async def phrase(self, question: str, answer: Answer) -> str | None:
        """``answer`` said in friendlier words, or None where the reply adds anything."""
        facts = "\n".join(f"- {f['name']}: {f['value']} {f['unit'] or ''} ({f['source']})"
                          for f in answer.facts)
        actions = "\n".join(f"- {s['title']}: {s['reason']}" for s in answer.suggestions)
        system = ("You rephrase a 3D-printing assistant's answer for the user. Use ONLY the "
                  "facts and actions given; do not add numbers, actions or advice of your own. "
                  "Keep it under 120 words.")
        user = (f"Question: {question}\nAnswer to rephrase: {answer.text}\nFacts:\n"
                f"{facts or '- none'}\nActions offered:\n{actions or '- none'}")
        reply = await self._complete(system, user)
        if not reply or len(reply) > MAX_REPLY_CHARS or not grounded(reply, answer):
            return None
        return reply


def _seconds(raw: str | None, default: float) -> float:
    """``ORFEAS_LLM_TIMEOUT_S`` as a positive number of seconds; anything else is the default."""
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


def _numbers(text: str) -> set[float]:
    found = set()
    for raw in _NUMBER.findall(text):
        try:
            found.add(round(float(raw.replace("\u2212", "-").replace(",", ".")), 1))
        except ValueError:
            continue
    return found


def _values(answer: Answer) -> set[float]:
    known = _numbers(answer.text)
    for item in (*answer.facts, *(c for s in answer.suggestions for c in s["expected"])):
        for value in (item.get("value"), item.get("before"), item.get("after")):
            if isinstance(value, int | float) and not isinstance(value, bool):
                known |= {round(float(value), 1), float(round(float(value)))}
            elif isinstance(value, str):
                known |= _numbers(value)
    return known


def grounded(reply: str, answer: Answer) -> bool:
    """Whether ``reply`` holds no number and names no operation beyond ``answer``'s."""
    if not _numbers(reply) <= _values(answer):
        return False
    offered = " ".join([answer.text, *(f"{s['title']} {s['operation']} {s['reason']}"
                                        for s in answer.suggestions)]).lower()
    return all(word.lower()[:5] in offered for word in _OPERATION_WORDS.findall(reply))

