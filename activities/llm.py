"""LangChain calls, on their own task queue with their own concurrency limit."""

from __future__ import annotations

from temporalio import activity

from llm import chat_model, choose_speaker
from models.workflow_io import ChooseSpeakerInput, SpeakerChoice


class LlmActivities:
    def __init__(self, default_model: str = "offline", base_url: str | None = None) -> None:
        self._default_model = default_model
        self._base_url = base_url

    @activity.defn(name="choose_speaker")
    async def choose_speaker(self, data: ChooseSpeakerInput) -> SpeakerChoice:
        """Ask the chat model who speaks next (the workflow checks the answer)."""
        model = chat_model(data.model or self._default_model, base_url=self._base_url)
        raw = await choose_speaker(
            model, data.topic, [(line.speaker, line.text) for line in data.transcript],
            data.candidates,
        )  # fmt: skip
        return SpeakerChoice(raw=raw[:200])
