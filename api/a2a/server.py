"""A2A JSON-RPC for each agent, on a2a-sdk's server pieces.

``POST /a2a/{agent_id}`` is a2a-sdk's JSON-RPC dispatcher over its default request
handler, with Agora's executor and stores. A message from an authenticated agent lands
in the direct chat of the caller and the agent: the task's ``contextId`` is that chat's
id (leave it out and the pair's chat is opened or reused). The task is submitted when
the post is accepted, working while the agent thinks, and ends with the agent's reply
(a hosted agent's, or an external agent's post in that chat): completed, or
input-required when the reply asks back (a question, by the processing step's rule);
failed when the agent could not answer or did not in time; rejected when Agora refused
the post (the reason is the API's); canceled by ``CancelTask``.

Every post and chat opened is one REST call with the caller's token (``api.loopback``),
so A2A is authorised, rate-limited and audited as REST is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta

import httpx
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.tasks import BasePushNotificationSender, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    Message,
    Part,
    SendMessageRequest,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    InvalidRequestError,
)
from google.protobuf.json_format import MessageToDict, ParseDict
from pydantic import ValidationError
from starlette.requests import Request

from api.a2a.cards import json_rpc_interface
from api.a2a.events import BusTaskEventStream
from api.a2a.remote import allowed
from api.a2a.replies import ReplyWatch
from api.a2a.store import AgoraPushConfigStore, AgoraTaskStore
from api.loopback import as_caller, reason
from core.settings import Settings
from llm.processing import ANALYSER
from models.chats import MessagePost
from persistence import A2ATaskRepository, Database

log = logging.getLogger("agora.api.a2a")


class AgoraCallContext(DefaultServerCallContextBuilder):
    """The call's context: the caller (set by the route), the agent called, its header."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        headers = context.state.get("headers", {})
        context.state["authorization"] = headers.pop("authorization", "")  # kept apart
        context.state["agent_id"] = request.path_params["agent_id"]
        context.state["caller"] = request.scope.get("agora.caller")
        return context


def _content(message: Message) -> MessagePost:
    """One Agora message from an A2A message's parts: text parts as they are, a data
    part as its JSON (a lone data part is a ``json`` message). Files are not carried."""
    texts, kinds = [], []
    for index, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            texts.append(json.dumps(MessageToDict(part.data), separators=(",", ":")))
        else:
            raise ContentTypeNotSupportedError(
                message=f"message.parts[{index}]: Agora carries text and data parts, "
                f"not {kind or 'an empty part'}"
            )
        kinds.append(kind)
    if not texts:
        raise InvalidParamsError(message="message.parts: at least one text or data part")
    try:
        return MessagePost(
            content="\n".join(texts), message_type="json" if kinds == ["data"] else "text"
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidParamsError(message=f"message.parts: {first['msg']}") from None


class AgoraRequestHandler(DefaultRequestHandler):
    """a2a-sdk's handler; a message is checked first, and its dialogue opened."""

    def __init__(self, *args, app, max_bytes: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._app = app
        self._max_bytes = max_bytes

    async def _dialogue(self, params: SendMessageRequest, context: ServerCallContext) -> None:
        post = _content(params.message)
        if len(post.content.encode()) > self._max_bytes:
            raise InvalidParamsError(
                message=f"message.parts: over {self._max_bytes} bytes (Agora's message limit)"
            )
        agent_id = context.state["agent_id"]
        body = {"type": "direct", "participants": [agent_id]}
        async with as_caller(self._app, context.state["authorization"]) as api:
            opened = await api.post("/v1/chats", json=body)
        if opened.status_code >= 400:
            raise InvalidRequestError(message=reason(opened))
        chat_id = opened.json()["chat_id"]
        given = params.message.context_id
        if given and given != chat_id:
            raise InvalidParamsError(
                message=f"message.contextId: not your open dialogue with {agent_id} "
                f"(that is {chat_id}; leave it out to use it)"
            )
        params.message.context_id = chat_id

    async def on_get_extended_agent_card(self, params, context: ServerCallContext):
        """None: an agent's card is public and whole (not the handler's generic one)."""
        raise ExtendedAgentCardNotConfiguredError(
            message="an agent's card is public and whole: "
            f"/a2a/{context.state['agent_id']}/.well-known/agent-card.json"
        )

    async def resume_if_left(self, task: Task, context: ServerCallContext) -> None:
        """A working task that no live process waits for is resumed here: its executor
        runs again without posting (see ``AgoraExecutor``), and its events reach this
        process's subscribers and the store as a2a-sdk's own runs do."""
        registry = self._active_task_registry
        if await registry.get(task.id) is not None or not await self.agent_executor.take_up(task):
            return
        active = await registry.get_or_create(
            task.id, call_context=context, context_id=task.context_id
        )
        again = RequestContext(
            call_context=context, task_id=task.id, context_id=task.context_id, task=task
        )
        await active.enqueue_request(again)
        log.info("resumed A2A task %s left by another process", task.id)

    async def on_get_task(self, params, context: ServerCallContext):
        task = await super().on_get_task(params, context)
        if task is not None:
            await self.resume_if_left(task, context)
        return task

    async def on_subscribe_to_task(self, params, context: ServerCallContext) -> AsyncGenerator:
        task = await self.task_store.get(params.id, context)
        if task is not None:
            await self.resume_if_left(task, context)
        async for event in super().on_subscribe_to_task(params, context):
            yield event

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext):
        await self._dialogue(params, context)
        return await super().on_message_send(params, context)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator:
        await self._dialogue(params, context)
        async for event in super().on_message_send_stream(params, context):
            yield event


LEASE_SECONDS = 5.0
"""How long an API process holds a working task's wait without renewing it (it renews
every third of that): a task whose process died is taken up by another this soon."""


class AgoraExecutor(AgentExecutor):
    """Post the caller's message in the dialogue, then wait for the agent's answer.

    The wait is recorded with the task (the ``seq`` posted, until when, and a lease of
    the process that waits): a task whose API process died is resumed by the process a
    caller next asks (``GetTask``, ``SubscribeToTask``), which reads the dialogue from
    that ``seq`` and finishes the task as the first would have."""

    def __init__(self, app, watch: ReplyWatch, reply_seconds: float, database: Database) -> None:
        self._app = app
        self._watch = watch
        self._reply_seconds = reply_seconds
        self._tasks = A2ATaskRepository(database)
        self.holder = uuid.uuid4().hex
        """This process, as the holder of the waits it runs."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        state = context.call_context.state
        agent_id, authorization = state["agent_id"], state["authorization"]
        task_id, chat_id = context.task_id or "", context.context_id or ""
        message = context.message
        updater = TaskUpdater(event_queue, task_id, chat_id)
        await self._watch.start(self._app.state.deps.bus)
        with self._watch.expect(chat_id, agent_id) as waiter:
            async with as_caller(self._app, authorization) as api:
                read = _reader(api, chat_id)
                if message is None:  # resumed: the first process posted and then died
                    asked = await self._tasks.asked(task_id)
                    if asked is None:
                        return
                    seq, until = asked["seq"], asked["until"]
                    waiter.heard += [m for m in await read(seq) if m["from"] == agent_id]
                else:
                    if context.current_task is None:
                        await event_queue.enqueue_event(
                            Task(
                                id=task_id,
                                context_id=chat_id,
                                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                                history=[message],
                            )
                        )
                    post = _content(message)
                    key = f"a2a/{task_id}/{message.message_id}"[:200]
                    posted = await api.post(
                        f"/v1/chats/{chat_id}/messages",
                        json=post.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                        headers={"Idempotency-Key": key},
                    )
                    if posted.status_code >= 400:
                        text = reason(posted)
                        await updater.reject(updater.new_agent_message([Part(text=text)]))
                        return
                    seq = posted.json()["seq"]
                    until = datetime.now(UTC) + timedelta(seconds=self._reply_seconds)
                    await self._tasks.ask(task_id, seq, agent_id, until, self.holder, LEASE_SECONDS)
                    await updater.start_work()
                renewing = asyncio.create_task(self._renew(task_id))
                try:
                    left = (until - datetime.now(UTC)).total_seconds()
                    answer = await self._watch.wait(waiter, seq, max(left, 0.0), read)
                finally:
                    renewing.cancel()
        if answer.failed:
            text = f"{agent_id} could not answer (agent.reply_failed)"
            await updater.failed(updater.new_agent_message([Part(text=text)]))
        elif answer.message is None:
            text = f"no answer from {agent_id} within {self._reply_seconds:g} s"
            await updater.failed(updater.new_agent_message([Part(text=text)]))
        else:
            reply = answer.message
            parts = [Part(text=reply["content"])]
            meta = {"agora": {"seq": reply["seq"], "message_id": reply["message_id"]}}
            await updater.add_artifact(parts, name="reply", metadata=meta, last_chunk=True)
            said = updater.new_agent_message(parts, metadata=meta)
            if _asks_back(reply, agent_id):
                await updater.requires_input(said)
            else:
                await updater.complete(said)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()

    async def _renew(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                await self._tasks.claim(task_id, self.holder, LEASE_SECONDS)
            except Exception as exc:  # the store is away: the next round tries again
                log.warning("lease of A2A task %s not renewed: %s", task_id, type(exc).__name__)

    async def take_up(self, task: Task) -> bool:
        """Whether this process may resume ``task``'s wait: it is working, and the
        process that waited for it has not renewed its lease."""
        if task.status.state != TaskState.TASK_STATE_WORKING:
            return False
        return await self._tasks.claim(task.id, self.holder, LEASE_SECONDS)


def _asks_back(reply: dict, agent_id: str) -> bool:
    item = {"content": reply["content"], "sender": agent_id, "members": {}}
    return ANALYSER.invoke(item)["intent"] == "question"


def _reader(api: httpx.AsyncClient, chat_id: str) -> Callable:
    async def read(after_seq: int) -> list[dict]:
        page = await api.get(f"/v1/chats/{chat_id}/messages", params={"after_seq": after_seq})
        return page.json().get("items", []) if page.status_code == 200 else []

    return read


def handler_card(settings: Settings) -> AgentCard:
    """What the handler needs to know of every agent's card: it streams and pushes."""
    return AgentCard(
        name="Agora agent",
        description="An agent of Agora",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain"],
        supported_interfaces=[json_rpc_interface(f"{settings.api_url}/a2a/{{agent_id}}")],
        skills=[
            AgentSkill(id="dialogue", name="dialogue", description="A direct chat", tags=["chat"])
        ],
    )


def push_url_checker(settings: Settings) -> Callable:
    """A push URL must be on a host of ``a2a_allowed_hosts`` (none by default), so the
    platform cannot be turned against internal addresses."""

    async def check(url: str) -> bool:
        return allowed(url, settings)

    return check


SWEEP_SECONDS = LEASE_SECONDS
"""How often each API process looks for working tasks left by a dead process that no
caller has asked about since (a caller that only waits for pushes still hears the end)."""


async def sweep_left_tasks(app) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await _sweep(app)
        except Exception as exc:  # the next round tries again
            log.warning("A2A tasks left by other processes not swept: %s", type(exc).__name__)


async def _sweep(app) -> None:
    """Resume each lapsed task in its owner's name, reading the dialogue as the platform
    (the caller's token is not kept)."""
    deps, admin = app.state.deps, app.state.settings.admin_token
    if deps.database is None or admin is None:
        return
    lapsed = await A2ATaskRepository(deps.database).lapsed(datetime.now(UTC))
    if not lapsed:
        return
    a2a_door(app)  # the handler, built once the database is connected
    handler: AgoraRequestHandler = app.state.a2a_handler
    for owner, stored in lapsed:
        caller, agent_id = owner.rsplit(">", 1)
        state = {"caller": caller, "agent_id": agent_id, "headers": {}}
        state["authorization"] = f"Bearer {admin.get_secret_value()}"
        context = ServerCallContext(state=state)
        task = ParseDict(stored, Task(), ignore_unknown_fields=True)
        await handler.resume_if_left(task, context)


def build_dispatcher(app, settings: Settings, database: Database, watch: ReplyWatch):
    """The JSON-RPC dispatcher of every agent's A2A endpoint, with its handler."""
    pushes = AgoraPushConfigStore(database)
    checker = push_url_checker(settings)
    app.state.a2a_push_http = httpx.AsyncClient(timeout=10)  # closed with the app
    sender = BasePushNotificationSender(app.state.a2a_push_http, pushes, push_url_validator=checker)
    handler = AgoraRequestHandler(
        AgoraExecutor(app, watch, settings.a2a_reply_seconds, database),
        AgoraTaskStore(database),
        handler_card(settings),
        push_config_store=pushes,
        push_sender=sender,
        push_url_validator=checker,
        # a caller subscribed through another API process hears the task live
        event_stream=BusTaskEventStream(lambda: app.state.deps.bus, A2ATaskRepository(database)),
        app=app,
        max_bytes=settings.max_message_bytes,
    )
    app.state.a2a_handler = handler
    return JsonRpcDispatcher(request_handler=handler, context_builder=AgoraCallContext())


def a2a_door(app):
    """The app's A2A dispatcher, built once the database is connected."""
    door = getattr(app.state, "a2a_door", None)
    if door is None:
        database = app.state.deps.database
        if database is None:
            from api.errors import ServiceUnavailable

            raise ServiceUnavailable("database")
        door = build_dispatcher(app, app.state.settings, database, app.state.a2a_watch)
        app.state.a2a_door = door
    return door
