"""The Temporal client factory and the search attributes every workflow uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings

AGENT_ID = SearchAttributeKey.for_keyword("AgoraAgentId")
CHAT_ID = SearchAttributeKey.for_keyword("AgoraChatId")
TASK_ID = SearchAttributeKey.for_keyword("AgoraTaskId")
STATUS = SearchAttributeKey.for_keyword("AgoraStatus")
KIND = SearchAttributeKey.for_keyword("AgoraKind")

SEARCH_ATTRIBUTES = (AGENT_ID, CHAT_ID, TASK_ID, STATUS, KIND)
"""Registered on the dev server at start (``--search-attribute NAME=Keyword``)."""


async def connect_temporal(settings: Settings) -> Client:
    """A client that carries pydantic models in payloads."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
