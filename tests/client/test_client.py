"""The external-agent client against a served API: register, heartbeat, floor, post, stream."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from client import AgoraClient, AgoraError


async def test_an_external_agent_does_its_day_with_the_client(server, settings):
    admin = AgoraClient(server, settings.admin_token.get_secret_value())
    me = await admin.register("Ext", agent_id=f"ext-{uuid.uuid4().hex[:8]}")
    other = await admin.register("Oth", agent_id=f"oth-{uuid.uuid4().hex[:8]}")
    await admin.close()

    async with AgoraClient(server, me.token) as agent, AgoraClient(server, other.token) as peer:
        await agent.heartbeat(me.agent_id)
        room = await agent.open_group([other.agent_id], speaker_policy="fifo")
        granted = await agent.request_floor(room.chat_id, reason="hello")
        assert granted.you_hold_the_floor
        with pytest.raises(AgoraError) as refused:
            await peer.post(room.chat_id, "not my turn")
        assert refused.value.status == 409

        heard = []

        async def listen() -> None:
            async for event in peer.stream(other.agent_id):
                heard.append(event)
                if event.type == "message.sent":
                    return

        listening = asyncio.create_task(listen())
        posted = await agent.post(room.chat_id, "hello from outside", key="k1")
        again = await agent.post(room.chat_id, "hello from outside", key="k1")
        assert again == posted
        await asyncio.wait_for(listening, timeout=20)
        assert heard[-1].payload["message"]["content"] == "hello from outside"
        assert len({e.event_id for e in heard}) == len(heard)

        attention = await peer.attention(other.agent_id)
        assert attention.dialogues[0].entry.chat_id == room.chat_id
        page = await peer.messages(room.chat_id)
        assert [m.content for m in page.items] == ["hello from outside"]
        assert await peer.mark_read(room.chat_id, posted.seq) == 1
