"""a2a-sdk's stores for tasks and push configs, kept in Agora's database.

Each caller's tasks with one agent are its own: the owner is ``<caller>><agent>``, so a
task is read, listed, cancelled or subscribed to only by the caller that opened it, at
the agent it opened it with. Listing filters and pages as a2a-sdk's in-memory store
does (it is given the owner's tasks and does the rest), so ``ListTasks`` reads the same
whichever store serves it.
"""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, PushNotificationConfigStore, TaskStore
from a2a.server.tasks.push_notification_config_store import normalize_push_notification_config
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskPushNotificationConfig
from google.protobuf.json_format import MessageToDict, ParseDict

from persistence import A2ATaskRepository, Database


def owner_of(context: ServerCallContext) -> str:
    """Who owns what a call makes or reads: the caller, at the agent it called."""
    return f"{context.state.get('caller', '')}>{context.state.get('agent_id', '')}"


def _as_dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=False)


class AgoraTaskStore(TaskStore):
    def __init__(self, database: Database) -> None:
        self._repository = A2ATaskRepository(database)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self._repository.put(owner_of(context), task.id, task.context_id, _as_dict(task))

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        stored = await self._repository.get(owner_of(context), task_id)
        return None if stored is None else ParseDict(stored, Task(), ignore_unknown_fields=True)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        owner = owner_of(context)
        scratch = InMemoryTaskStore(owner_resolver=lambda _: owner)
        for stored in await self._repository.owned(owner, params.context_id or None):
            await scratch.save(ParseDict(stored, Task(), ignore_unknown_fields=True), context)
        return await scratch.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self._repository.delete(owner_of(context), task_id)


class AgoraPushConfigStore(PushNotificationConfigStore):
    def __init__(self, database: Database) -> None:
        self._repository = A2ATaskRepository(database)

    @staticmethod
    def _parse(stored: dict) -> TaskPushNotificationConfig:
        return ParseDict(stored, TaskPushNotificationConfig(), ignore_unknown_fields=True)

    async def set_info(
        self,
        task_id: str,
        notification_config: TaskPushNotificationConfig,
        context: ServerCallContext,
    ) -> TaskPushNotificationConfig:
        stored = normalize_push_notification_config(task_id, notification_config)
        await self._repository.put_push(owner_of(context), task_id, stored.id, _as_dict(stored))
        return stored

    async def get_info(
        self, task_id: str, context: ServerCallContext
    ) -> list[TaskPushNotificationConfig]:
        return [self._parse(c) for c in await self._repository.pushes(task_id, owner_of(context))]

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        return [self._parse(c) for c in await self._repository.pushes(task_id)]

    async def delete_info(
        self, task_id: str, context: ServerCallContext, config_id: str | None = None
    ) -> None:
        await self._repository.delete_push(owner_of(context), task_id, config_id)
