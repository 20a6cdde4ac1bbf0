"""The processing step a posted message passes through before it reaches attention.

A LangChain runnable reads each message and returns its mentions, an importance
estimate (0-1) and a short intent label. The default analyser is deterministic (no
network); it is a ``Runnable``, so a model-backed chain can take its place.
"""

from __future__ import annotations

import re
import time
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from models.chats import MessageContext

URGENT = re.compile(r"\b(urgent|asap|now|immediately|deadline|help|blocked)\b", re.IGNORECASE)
GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|evening|afternoon))\b", re.IGNORECASE)
REQUEST = re.compile(r"\b(please|could you|can you|would you|let's|lets)\b", re.IGNORECASE)


def find_mentions(text: str, sender: str, members: dict[str, str | None]) -> list[str]:
    """The members (not the sender) a text names: by their id as a word (``ada-1``,
    ``@ada-1``), or by ``@`` and their display name in any case (``@Ada``, ``@ada lovelace``)."""
    folded = text.casefold()
    found = set()
    for agent_id, name in members.items():
        if agent_id == sender:
            continue
        by_id = re.search(rf"(?<![\w-]){re.escape(agent_id)}(?![\w-])", text)
        by_name = name and re.search(rf"@{re.escape(name.casefold())}(?!\w)", folded)
        if by_id or by_name:
            found.add(agent_id)
    return sorted(found)


def _analyse(item: dict) -> dict:
    text: str = item["content"]
    members = item["members"]
    if not isinstance(members, dict):
        members = dict.fromkeys(members)
    mentions = find_mentions(text, item["sender"], members)
    if GREETING.search(text):
        intent = "greeting"
    elif text.rstrip().endswith("?"):
        intent = "question"
    elif REQUEST.search(text):
        intent = "request"
    else:
        intent = "statement"
    importance = 0.2
    importance += 0.3 if intent in ("question", "request") else 0.0
    importance += 0.3 if URGENT.search(text) else 0.0
    importance += 0.2 if mentions else 0.0
    return {"mentions": mentions, "importance": round(min(importance, 1.0), 2), "intent": intent}


async def _analyse_here(item: dict) -> dict:
    return _analyse(item)


class MessageAnalyser(Runnable[dict, dict]):
    """The offline reader as a LangChain runnable: a pure function of its input, called
    on the event loop. It opens a callback run only when the caller passes callbacks:
    as a ``RunnableLambda`` every call inspected the function's signature and set up a
    run that nobody listened to, on the worker's one event loop that every delivery
    passes through."""

    name: str = "agora_message_analyser"

    def invoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> dict:
        if config and config.get("callbacks"):
            return self._call_with_config(_analyse, input, config)
        return _analyse(input)

    async def ainvoke(
        self, input: dict, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict:
        if config and config.get("callbacks"):
            return await self._acall_with_config(_analyse_here, input, config)
        return _analyse(input)

    def batch(self, inputs: list[dict], config=None, *, return_exceptions=False, **_) -> list:
        if config:
            return super().batch(inputs, config, return_exceptions=return_exceptions)
        read: list = []
        for item in inputs:
            try:
                read.append(_analyse(item))
            except Exception as error:
                if not return_exceptions:
                    raise
                read.append(error)
        return read

    async def abatch(self, inputs: list[dict], config=None, *, return_exceptions=False, **_):
        if config:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions)
        return self.batch(inputs, return_exceptions=return_exceptions)


ANALYSER = MessageAnalyser()


async def analyse_messages(items: list[dict]) -> list[dict]:
    """``items``: ``{"content", "sender", "members"}`` each (members: id to display name);
    one result per item, in order."""
    return await ANALYSER.abatch(items)


NAMES_TTL_SECONDS = 300.0


class MessageReader:
    """The processing step over a batch of messages, with the members' display names (for
    ``@name`` mentions) from a cache refreshed every few minutes: a name change shows in
    mentions soon after, not at once. ``directory`` answers ``names(agent_ids)``."""

    def __init__(self, directory, analyser=None) -> None:
        self._directory = directory
        self._analyser = analyser or ANALYSER
        self.quick = analyser is None
        """The offline reader answers in microseconds: worth reading inline, in the store;
        a model given here reads after delivery, on the LLM queue."""
        self._names: dict[str, str | None] = {}
        self._read_at = 0.0

    async def names(self, members: list[str]) -> dict[str, str | None]:
        now = time.monotonic()
        if now - self._read_at > NAMES_TTL_SECONDS or len(self._names) > 50_000:
            self._names, self._read_at = {}, now
        missing = [m for m in members if m not in self._names]
        if missing:
            found = await self._directory.names(missing)
            self._names.update({m: found.get(m) for m in missing})
        return {m: self._names.get(m) for m in members}

    async def analyse(self, messages: list, members: list[str]) -> dict[int, MessageContext]:
        """By seq: what the processing step reads in each message."""
        names = await self.names(members)
        items = [{"content": m.content, "sender": m.from_, "members": names} for m in messages]
        read = await self._analyser.abatch(items)
        return {m.seq: MessageContext(**r) for m, r in zip(messages, read, strict=True)}
