"""A hosted agent's inner voice: its reply in a dialogue, from persona, manifest and context."""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "{persona}\nYou are {name}, an agent in Agora. About you: {bio}. "
            "Your skills: {skills}.\nWhat came before in this dialogue, in short: {summary}\n"
            "Reply briefly, in your own voice, to the conversation below.",
        ),
        MessagesPlaceholder("history"),
    ]
)


def as_messages(lines: list[dict], me: str) -> list[BaseMessage]:
    """The dialogue's history as LangChain messages: mine as AI, the others' as human."""
    return [
        AIMessage(content=line["content"])
        if line["speaker"] == me
        else HumanMessage(content=f"[{line['speaker']}] {line['content']}")
        for line in lines
    ]


async def compose_reply(
    model: BaseChatModel,
    *,
    me: str,
    name: str,
    persona: str | None,
    bio: str | None,
    skills: list[str],
    summary: str,
    history: list[dict],
) -> tuple[str, int]:
    """The reply text and the tokens it cost (as the model reports them)."""
    chain = PROMPT | model
    answer = await chain.ainvoke(
        {
            "persona": persona or f"You are {name}.",
            "name": name,
            "bio": bio or "no bio",
            "skills": ", ".join(skills) or "none listed",
            "summary": summary or "nothing yet",
            "history": as_messages(history, me),
        }
    )
    usage = getattr(answer, "usage_metadata", None) or {}
    return str(answer.content).strip(), int(usage.get("total_tokens", 0))


def roll(summary: str, history: list[dict], keep: int = 20) -> tuple[str, list[dict]]:
    """Keep the last ``keep`` lines; fold the older ones into the rolling summary."""
    if len(history) <= keep:
        return summary, history
    older, recent = history[:-keep], history[-keep:]
    digest = "; ".join(f"{line['speaker']}: {line['content'][:80]}" for line in older)
    folded = f"{summary} | {digest}" if summary else digest
    return folded[-2000:], recent
