"""The ``llm`` speaker-selection policy: a prompt over the recent transcript."""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You moderate a group chat about {topic}. Read the conversation and choose who "
            "should speak next, from the candidates only. Answer with the candidate's id "
            "and nothing else.",
        ),
        ("human", "Conversation so far:\n{transcript}\n\nCandidates: {candidates}\nNext speaker:"),
    ]
)


async def choose_speaker(
    model: BaseChatModel, topic: str, transcript: list[tuple[str, str]], candidates: list[str]
) -> str:
    """The model's raw answer; the workflow accepts it only if it names a candidate."""
    lines = "\n".join(f"[{speaker}] {text}" for speaker, text in transcript) or "(nothing yet)"
    chain = PROMPT | model
    answer = await chain.ainvoke(
        {"topic": topic or "anything", "transcript": lines, "candidates": ", ".join(candidates)}
    )
    return str(answer.content).strip()
