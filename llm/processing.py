"""The processing step a posted message passes through before it reaches attention.

A LangChain runnable reads each message and returns its mentions, an importance
estimate (0-1) and a short intent label. The default analyser is deterministic (no
network); it is a ``Runnable``, so a model-backed chain can take its place.
"""

from __future__ import annotations

import re

from langchain_core.runnables import RunnableLambda

URGENT = re.compile(r"\b(urgent|asap|now|immediately|deadline|help|blocked)\b", re.IGNORECASE)
GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|evening|afternoon))\b", re.IGNORECASE)
REQUEST = re.compile(r"\b(please|could you|can you|would you|let's|lets)\b", re.IGNORECASE)


def _analyse(item: dict) -> dict:
    text: str = item["content"]
    members: list[str] = item["members"]
    mentions = sorted({m for m in members if m != item["sender"] and m in text})
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


ANALYSER = RunnableLambda(_analyse, name="agora_message_analyser")


async def analyse_messages(items: list[dict]) -> list[dict]:
    """``items``: ``{"content", "sender", "members"}`` each; one result per item, in order."""
    return await ANALYSER.abatch(items)
