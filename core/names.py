"""The names workflows and activities call each other by: workflow ids, the handlers one
workflow or activity signals or updates on another, and the platform's sender id.

A leaf: it imports nothing of Agora's. Activities and workflows address each other through
it (by name, with the result type given), so no activity module imports a workflow module
and no workflow module imports another; each workflow declares its handlers with these
names (``@workflow.update(name=ChatHandlers.POST_MESSAGE)``).
"""

from __future__ import annotations

PLATFORM = "platform"
"""The sender of the platform's own messages and acts (an admin, a task's brief)."""

AGENT_WORKFLOW = "AgentWorkflow"
CHAT_WORKFLOW = "ChatWorkflow"
TASK_WORKFLOW = "TaskWorkflow"
"""The workflow types (``@workflow.defn(name=...)``)."""


def agent_workflow_id(agent_id: str) -> str:
    return f"agent/{agent_id}"


def chat_workflow_id(chat_id: str) -> str:
    return f"chat/{chat_id}"


def task_workflow_id(task_id: str) -> str:
    return f"task/{task_id}"


class AgentHandlers:
    """``AgentWorkflow``'s handlers that other workflows and activities call."""

    DEBIT = "debit"
    DIALOGUE_NOTICE = "dialogue_notice"
    ROOM_CHANGED = "room_changed"
    TASK_ACTIVITY = "task_activity"


class ChatHandlers:
    """``ChatWorkflow``'s handlers that other workflows and activities call."""

    MEMBER_RETIRED = "member_retired"
    OPEN = "open"
    POST_MESSAGE = "post_message"
    RELEASE_FLOOR = "release_floor"
    REQUEST_FLOOR = "request_floor"
    TAIL = "tail"


class TaskHandlers:
    """``TaskWorkflow``'s handlers that activities call."""

    SUBMIT = "submit"
