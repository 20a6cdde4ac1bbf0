"""A remote A2A agent as a LangChain chat model: Agora's turn machinery asks it for its
next line as it asks any model, and the answer comes back over A2A.

``a2a:<JSON-RPC URL>`` names one (the URL comes from the agent's card, checked against
the allow-list when it was introduced). Each call sends the dialogue's recent transcript
as one A2A message (a2a-sdk's client, ``SendMessage``, blocking) and returns the
agent's answer: the text of the completed task's artifacts, or of its final message.
A task that fails, is rejected or asks for input, an answer with no text, or a remote
that does not answer in time raises, and the turn is yielded as after a model failure.
The message id is derived from what is sent, so a retried call sends the same message.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    Message,
    Part,
    Role,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

PREFIX = "a2a:"


class RemoteAgentError(Exception):
    """The remote agent gave no usable answer."""


def transcript(messages: list[BaseMessage]) -> str:
    """The dialogue as the remote reads it: ``[speaker] text`` lines, its own as ``[you]``."""
    lines = []
    for message in messages:
        if message.type == "system":
            continue
        text = str(message.content)
        lines.append(f"[you] {text}" if message.type == "ai" else text)
    return "\n".join(lines)


def answer_text(response: Any) -> str:
    """The text of an A2A answer (a ``StreamResponse`` of a blocking ``SendMessage``)."""
    if response.HasField("message"):
        parts = response.message.parts
    elif response.HasField("task"):
        task = response.task
        if task.status.state != TaskState.TASK_STATE_COMPLETED:
            state = TaskState.Name(task.status.state)
            raise RemoteAgentError(f"the remote agent's task ended {state}")
        parts = [p for artifact in task.artifacts for p in artifact.parts] or list(
            task.status.message.parts
        )
    else:
        raise RemoteAgentError("the remote agent answered with neither a message nor a task")
    text = "\n".join(p.text for p in parts if p.WhichOneof("content") == "text").strip()
    if not text:
        raise RemoteAgentError("the remote agent's answer has no text")
    return text


class A2AChatModel(BaseChatModel):
    url: str
    timeout: float = 25.0

    @property
    def _llm_type(self) -> str:
        return "agora-a2a-remote"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        raise NotImplementedError("a remote A2A agent is called asynchronously")

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any):
        text = transcript(messages)
        message = Message(
            role=Role.ROLE_USER,
            message_id=hashlib.sha256(f"{self.url}\n{text}".encode()).hexdigest()[:32],
            parts=[Part(text=text)],
        )
        card = AgentCard(
            name="remote",
            capabilities=AgentCapabilities(streaming=False),
            supported_interfaces=[
                AgentInterface(
                    url=self.url,
                    protocol_binding=TransportProtocol.JSONRPC.value,
                    protocol_version=PROTOCOL_VERSION_1_0,
                )
            ],
        )
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            try:
                request = SendMessageRequest(message=message)
                responses = [r async for r in client.send_message(request)]
            finally:
                await client.close()
        if not responses:
            raise RemoteAgentError("the remote agent sent no answer")
        reply = AIMessage(content=answer_text(responses[-1]))
        return ChatResult(generations=[ChatGeneration(message=reply)])
