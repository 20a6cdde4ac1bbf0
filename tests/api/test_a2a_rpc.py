"""A2A JSON-RPC per agent, driven by a2a-sdk's own client: a message lands in the direct
chat of caller and agent, and the task ends with the agent's answer."""

from __future__ import annotations

import asyncio
import contextlib
from uuid import uuid4

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.client.errors import A2AClientError
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from google.protobuf.json_format import ParseDict

from api.loopback import reason
from tests.conftest import eventually
from tests.helpers import introduce, served_on_loopback


@contextlib.asynccontextmanager
async def push_receiver():
    """A webhook on 127.0.0.1 that keeps what is pushed to it: (headers, body)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from cli.stack import free_port

    got: list[tuple[dict, dict]] = []

    async def hook(request):
        got.append((dict(request.headers), await request.json()))
        return Response(status_code=204)

    port = free_port()
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with served_on_loopback(app, port):
        yield f"http://127.0.0.1:{port}/hook", got


@contextlib.asynccontextmanager
async def a2a_client(server: str, agent_id: str, token: str | None, streaming: bool = False):
    """a2a-sdk's client for an Agora agent, from its card, as the token's agent."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        raw = (await http.get(f"{server}/a2a/{agent_id}/.well-known/agent-card.json")).json()
        card = ParseDict(raw, AgentCard(), ignore_unknown_fields=True)
        for interface in card.supported_interfaces:  # the suite's server, not api_url's
            interface.url = f"{server}/a2a/{agent_id}"
        client = await create_client(
            card, client_config=ClientConfig(httpx_client=http, streaming=streaming)
        )
        try:
            yield client
        finally:
            await client.close()


def say(*parts: Part, context_id: str = "", task_id: str = "") -> SendMessageRequest:
    message = Message(
        role=Role.ROLE_USER,
        message_id=str(uuid4()),
        parts=list(parts) or [Part(text="hello")],
        context_id=context_id,
        task_id=task_id,
    )
    return SendMessageRequest(message=message)


async def the_task(client, request: SendMessageRequest):
    """Blocking SendMessage: the task it answers with."""
    [response] = [r async for r in client.send_message(request=request)]
    assert response.HasField("task"), response
    return response.task


def text_of(task) -> str:
    return " ".join(p.text for p in task.status.message.parts)


async def messages(api, chat_id: str, agent) -> list[dict]:
    page = await api.get(f"/v1/chats/{chat_id}/messages", headers=agent.headers)
    return page.json()["items"]


async def test_a_message_to_a_hosted_agent_completes_with_its_reply_in_their_direct_chat(
    server, admin
):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada = await introduce(api, admin, "Ada")
        bob = await introduce(api, admin, "Bob")
        host = await introduce(api, admin, "Host", brain={"turns_per_hour": 1000})
        async with a2a_client(server, host.agent_id, ada.token) as client:
            task = await the_task(client, say(Part(text="hello, host")))
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            assert "(offline model)" in text_of(task)
            chat_id = task.context_id
            said = await messages(api, chat_id, ada)
            assert [(m["from"], m["content"][:11]) for m in said] == [
                (ada.agent_id, "hello, host"),
                (host.agent_id, "(offline mo"),
            ]
            assert task.artifacts[0].parts[0].text == said[1]["content"]

            # the same dialogue again, by its contextId; a context that is not theirs is refused
            again = await the_task(client, say(Part(text="and again"), context_id=chat_id))
            assert again.context_id == chat_id and again.id != task.id
            with pytest.raises(InvalidParamsError, match="contextId"):
                await the_task(client, say(context_id="direct-someone-else"))
            # a file part is not carried: the error names it, and nothing is posted
            file_part = Part(url="https://example.com/x.pdf", media_type="application/pdf")
            with pytest.raises(ContentTypeNotSupportedError, match=r"parts\[1\].*url"):
                await the_task(client, say(Part(text="see attached"), file_part))
            assert len(await messages(api, chat_id, ada)) == 4

            fetched = await client.get_task(request=GetTaskRequest(id=task.id))
            assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
            listed = await client.list_tasks(request=ListTasksRequest())
            assert {t.id for t in listed.tasks} == {task.id, again.id}

        # another caller sees none of ada's tasks
        async with a2a_client(server, host.agent_id, bob.token) as other:
            assert len((await other.list_tasks(request=ListTasksRequest())).tasks) == 0
            with pytest.raises(TaskNotFoundError):
                await other.get_task(request=GetTaskRequest(id=task.id))
        # and a caller without a token gets HTTP 401
        async with a2a_client(server, host.agent_id, None) as anonymous:
            with pytest.raises(A2AClientError, match="401"):
                await the_task(anonymous, say())


async def test_an_external_agent_asks_back_then_answers_over_a_stream(server, admin):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada = await introduce(api, admin, "Ada")
        bob = await introduce(api, admin, "Bob")  # external: answers through REST

        async def bob_answers(text: str, after: int) -> None:
            async def direct():
                page = await api.get("/v1/chats", headers=bob.headers)
                return [c for c in page.json()["items"] if c["type"] == "direct"]

            [chat] = await eventually(direct, bool)
            await eventually(lambda: messages(api, chat["chat_id"], bob), lambda m: len(m) > after)
            posted = await api.post(
                f"/v1/chats/{chat['chat_id']}/messages", json={"content": text}, headers=bob.headers
            )
            assert posted.status_code == 201, posted.text

        async with a2a_client(server, bob.agent_id, ada.token, streaming=True) as client:
            answering = asyncio.create_task(bob_answers("which report do you mean?", 0))
            states = []
            async for response in client.send_message(request=say(Part(text="send the report"))):
                if response.HasField("task"):
                    states.append(response.task.status.state)
                    task_id, chat_id = response.task.id, response.task.context_id
                elif response.HasField("status_update"):
                    states.append(response.status_update.status.state)
                    last = response.status_update.status
            await answering
            assert states[0] == TaskState.TASK_STATE_SUBMITTED
            assert TaskState.TASK_STATE_WORKING in states
            assert states[-1] == TaskState.TASK_STATE_INPUT_REQUIRED
            assert last.message.parts[0].text == "which report do you mean?"

            # the follow-up continues the task; bob's answer completes it
            answering = asyncio.create_task(bob_answers("here it is.", 2))
            follow = say(Part(text="the weekly one"), context_id=chat_id, task_id=task_id)
            final = [r async for r in client.send_message(request=follow)][-1]
            await answering
            assert final.status_update.status.state == TaskState.TASK_STATE_COMPLETED
            assert final.status_update.task_id == task_id

            # leave a task's stream, then subscribe to it: bob's answer ends it there
            stream = client.send_message(request=say(Part(text="are you there")))
            open_task = (await anext(stream)).task  # submitted: leave the stream
            await stream.aclose()
            answering = asyncio.create_task(bob_answers("yes, here.", 4))
            seen = [
                r async for r in client.subscribe(request=SubscribeToTaskRequest(id=open_task.id))
            ]
            await answering
            assert seen[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
            assert seen[-1].status_update.status.message.parts[0].text == "yes, here."

            # a task nobody answers is cancelled; cancelling it again is refused
            stream = client.send_message(request=say(Part(text="one more")))
            open_task = (await anext(stream)).task
            await stream.aclose()
            cancelled = await client.cancel_task(request=CancelTaskRequest(id=open_task.id))
            assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            with pytest.raises(TaskNotCancelableError):
                await client.cancel_task(request=CancelTaskRequest(id=open_task.id))


async def test_a_failing_model_fails_the_task_and_push_configs_obey_the_allow_list(server, admin):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada = await introduce(api, admin, "Ada")
        host = await introduce(api, admin, "Broken", brain={"model": "offline:fail"})
        async with a2a_client(server, host.agent_id, ada.token) as client:
            task = await the_task(client, say(Part(text="think")))
            assert task.status.state == TaskState.TASK_STATE_FAILED
            assert "could not answer" in text_of(task)
            # the agent lives on (its model's failure once ended its life): it fails again
            again = await the_task(
                client, say(Part(text="think again"), context_id=task.context_id)
            )
            assert "could not answer" in text_of(again)
            manifest = await api.get(f"/v1/agents/{host.agent_id}", headers=admin)
            assert manifest.status_code == 200 and manifest.json()["status"] != "retired"

            outside = TaskPushNotificationConfig(task_id=task.id, url="http://10.1.2.3/hook")
            with pytest.raises(InvalidParamsError, match="push notification URL"):
                await client.create_task_push_notification_config(request=outside)
            allowed = TaskPushNotificationConfig(
                task_id=task.id, id="mine", url="http://127.0.0.1:9/hook"
            )
            made = await client.create_task_push_notification_config(request=allowed)
            assert made.id == "mine" and made.url.endswith("/hook")
            listed = await client.list_task_push_notification_configs(
                request=ListTaskPushNotificationConfigsRequest(task_id=task.id)
            )
            assert [c.id for c in listed.configs] == ["mine"]
            await client.delete_task_push_notification_config(
                request=DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="mine")
            )
            listed = await client.list_task_push_notification_configs(
                request=ListTaskPushNotificationConfigsRequest(task_id=task.id)
            )
            assert list(listed.configs) == []


async def test_a_tasks_updates_are_pushed_to_its_webhook(server, admin):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada = await introduce(api, admin, "Ada")
        host = await introduce(api, admin, "Host", brain={"turns_per_hour": 1000})
        async with (
            push_receiver() as (url, got),
            a2a_client(server, host.agent_id, ada.token) as client,
        ):
            request = say(Part(text="tell me when done"))
            request.configuration.task_push_notification_config.CopyFrom(
                TaskPushNotificationConfig(url=url, token="ada-hook-secret")
            )
            task = await the_task(client, request)
            assert task.status.state == TaskState.TASK_STATE_COMPLETED

            def states():
                return [
                    (body.get("statusUpdate") or body.get("task") or {}).get("status", {})
                    for _, body in got
                ]

            await eventually(
                lambda: asyncio.sleep(0, states()),
                lambda s: any(x.get("state") == "TASK_STATE_COMPLETED" for x in s),
            )
            assert all(h.get("x-a2a-notification-token") == "ada-hook-secret" for h, _ in got)


async def test_every_a2a_method_a_stranger_calls_finds_nothing_and_refusals_read_as_rest(
    server, admin
):
    """One rule for every door: another agent's task is not found by any method, a
    refused post reads as REST's refusal, and A2A calls are audited as REST calls."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada, cy = await introduce(api, admin, "Ada"), await introduce(api, admin, "Cy")
        host = await introduce(api, admin, "Host", brain={"turns_per_hour": 1000})
        async with a2a_client(server, host.agent_id, ada.token, streaming=True) as mine:
            [*_, last] = [r async for r in mine.send_message(request=say())]
            task_id = last.status_update.task_id
            ours = TaskPushNotificationConfig(task_id=task_id, id="ada", url="http://127.0.0.1:9/")
            await mine.create_task_push_notification_config(request=ours)
        async with a2a_client(server, host.agent_id, cy.token, streaming=True) as stranger:
            assert list((await stranger.list_tasks(request=ListTasksRequest())).tasks) == []
            config = TaskPushNotificationConfig(task_id=task_id, url="http://127.0.0.1:9/h")
            calls = {
                "GetTask": stranger.get_task(request=GetTaskRequest(id=task_id)),
                "CancelTask": stranger.cancel_task(request=CancelTaskRequest(id=task_id)),
                "CreateTaskPushNotificationConfig": (
                    stranger.create_task_push_notification_config(request=config)
                ),
                "ListTaskPushNotificationConfigs": stranger.list_task_push_notification_configs(
                    request=ListTaskPushNotificationConfigsRequest(task_id=task_id)
                ),
                "GetTaskPushNotificationConfig": stranger.get_task_push_notification_config(
                    request=GetTaskPushNotificationConfigRequest(task_id=task_id, id="ada")
                ),
                "DeleteTaskPushNotificationConfig": (
                    stranger.delete_task_push_notification_config(
                        request=DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="ada")
                    )
                ),
            }
            for method, call in calls.items():
                with pytest.raises(TaskNotFoundError):
                    await call
                    pytest.fail(f"{method} found ada's task")
            with pytest.raises(TaskNotFoundError):
                [r async for r in stranger.subscribe(request=SubscribeToTaskRequest(id=task_id))]
            with pytest.raises(TaskNotFoundError):  # nor can it speak into ada's task
                [r async for r in stranger.send_message(request=say(task_id=task_id))]
        async with a2a_client(server, host.agent_id, ada.token) as mine:  # all still there
            assert (await mine.get_task(request=GetTaskRequest(id=task_id))).id == task_id
            kept = await mine.list_task_push_notification_configs(
                request=ListTaskPushNotificationConfigsRequest(task_id=task_id)
            )
            assert [c.id for c in kept.configs] == ["ada"]

        # a refusal reads as REST's: messaging a retired agent
        retired = await introduce(api, admin, "Gone")
        assert (await api.delete(f"/v1/agents/{retired.agent_id}", headers=admin)).status_code < 300
        rest = await api.post(
            "/v1/chats",
            json={"type": "direct", "participants": [retired.agent_id]},
            headers=cy.headers,
        )
        assert rest.status_code >= 400
        async with a2a_client(server, retired.agent_id, cy.token) as client:
            with pytest.raises(InvalidRequestError) as refused:
                await the_task(client, say())
        assert refused.value.message == reason(rest)  # "422: agent_id: agent … is retired"
        assert "retired" in refused.value.message

        audit = await api.get(
            "/v1/audit", params={"actor": f"agent:{cy.agent_id}", "limit": 100}, headers=admin
        )
        actions = {r["action"] for r in audit.json()["items"]}
        assert {"POST /a2a/{agent_id}", "POST /v1/chats"} <= actions
