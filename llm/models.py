"""Chat models by name; with no provider configured, a deterministic offline model."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

CANDIDATES = re.compile(r"^Candidates:\s*(.+)$", re.MULTILINE)
TRANSCRIPT_LINE = re.compile(r"^\[(?P<speaker>[^\]]+)\]\s*(?P<text>.*)$", re.MULTILINE)


class UnknownModel(ValueError):
    """A model name no installed provider serves."""


class OfflineChatModel(BaseChatModel):
    """A real LangChain chat model that needs no network and answers deterministically.

    Asked to pick a speaker (a prompt with a ``Candidates:`` line), it names the
    candidate mentioned most recently in the transcript, else the first candidate.
    Otherwise it answers from the system prompt (persona) and the last message, and
    says that it is offline.
    """

    persona: str = "an Agora agent"
    fail: bool = False
    """``offline:fail``: a model that always fails, for drills and tests of the failure path."""

    @property
    def _llm_type(self) -> str:
        return "agora-offline"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        if self.fail:
            raise ConnectionError("offline:fail model: the model is unavailable (on purpose)")
        text = "\n".join(str(m.content) for m in messages)
        listed = CANDIDATES.search(text)
        if listed:
            answer = self._pick_speaker(text, [c.strip() for c in listed.group(1).split(",")])
        else:
            last = _gist(str(messages[-1].content)) if messages else ""
            system = next((str(m.content) for m in messages if m.type == "system"), self.persona)
            earlier = max(sum(m.type in ("human", "ai") for m in messages) - 1, 0)
            answer = (
                f"(offline model) {system.splitlines()[0][:120]} I read: "
                f"\u201c{last[:200]}\u201d, and I recall {earlier} earlier lines of this "
                "dialogue. I have no model to think with, so I only acknowledge it."
            )
        message = AIMessage(
            content=answer,
            usage_metadata={
                "input_tokens": len(text.split()),
                "output_tokens": len(answer.split()),
                "total_tokens": len(text.split()) + len(answer.split()),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw):
        """The same answer on the event loop (microseconds of work): LangChain's default
        runs ``_generate`` on a thread, a hop that a hosted turn waited for under load."""
        return self._generate(messages, stop=stop, run_manager=run_manager, **kw)

    @staticmethod
    def _pick_speaker(text: str, candidates: list[str]) -> str:
        candidates = [c for c in candidates if c]
        if not candidates:
            return "nobody"
        lines = [m.group("text") for m in TRANSCRIPT_LINE.finditer(text)]
        for line in reversed(lines):
            for candidate in candidates:
                if candidate in line:
                    return candidate
        return candidates[0]


SPEAKER_TAG = re.compile(r"^\[[^\]]+\]\s*")


def _gist(text: str) -> str:
    """What a message says, without a speaker tag or other offline replies' wrapping."""
    text = SPEAKER_TAG.sub("", text.strip())
    if "(offline model)" in text and (start := text.rfind("\u201c")) >= 0:
        end = text.find("\u201d", start)
        text = SPEAKER_TAG.sub("", text[start + 1 : end if end > 0 else None].strip())
    return text[:160]


def runs_in_process(name: str | None, default_model: str = "offline") -> bool:
    """The model answers in the worker's own process, in milliseconds (the offline model,
    or the deployment's default when ``offline`` names it and it is offline too)."""
    if name in ("offline", "", None):
        return default_model in ("offline", "", None)
    return name == "offline:fail"


def chat_model(name: str, *, base_url: str | None = None, api_key: str | None = None):
    """A chat model by name: ``offline``, ``a2a:<URL>`` for a remote A2A agent (introduced
    with ``remote``), or ``provider:model`` for an installed provider
    (LangChain's ``init_chat_model``), or any model of an OpenAI-compatible server at
    ``base_url``. Retries are off: Temporal retries the activity."""
    if name in ("offline", "", None):
        return OfflineChatModel()
    if name == "offline:fail":
        return OfflineChatModel(fail=True)
    if name.startswith("a2a:"):  # a remote agent over A2A: its card's JSON-RPC URL
        from llm.remote import A2AChatModel

        url = name.removeprefix("a2a:")
        if not url.startswith(("http://", "https://")):
            raise UnknownModel(f"model {name!r}: a2a: names the remote agent's HTTP URL")
        return A2AChatModel(url=url)
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise UnknownModel(
            f"model {name!r} needs the 'langchain' package and a provider package"
        ) from exc
    options: dict[str, Any] = {"max_retries": 0}
    if base_url:
        options |= {"base_url": base_url, "model_provider": "openai"}
        if api_key:
            options["api_key"] = api_key
    try:
        return init_chat_model(name, **options)
    except (ImportError, ValueError) as exc:
        raise UnknownModel(f"model {name!r}: {exc}") from exc
