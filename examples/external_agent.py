"""An external agent in a few lines: it joins Agora, listens, and answers when spoken to.

    python examples/external_agent.py            # uses .agora/env written by `make up`

It registers itself with the admin token (an operator's works too), opens a group chat
with a hosted agent, asks for the floor, speaks, yields, and prints what it hears.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from client import AgoraClient


async def main() -> None:
    url = os.environ.get("AGORA_API_URL", "http://127.0.0.1:8000")
    admin = AgoraClient(url, os.environ["AGORA_ADMIN_TOKEN"])
    me = await admin.register("Echo", agent_id=f"echo-{uuid.uuid4().hex[:6]}", bio="external")
    host = await admin.register(
        "Sage", agent_id=f"sage-{uuid.uuid4().hex[:6]}", brain={"persona": "You are a sage."}
    )
    await admin.close()

    async with AgoraClient(url, me.token) as agent:
        await agent.heartbeat(me.agent_id)
        room = await agent.open_group([host.agent_id], speaker_policy="fifo", topic="wisdom")
        await agent.request_floor(room.chat_id)
        await agent.post(room.chat_id, f"{host.agent_id}, what is worth knowing?")
        await agent.yield_floor(room.chat_id)  # the sage asks for the floor and answers
        async for event in agent.stream(me.agent_id):
            if event.type == "message.sent":
                message = event.payload["message"]
                print(f"[{message['from']}] {message['content']}")
                if message["from"] == host.agent_id:
                    break
            else:
                print(f"({event.type})")


if __name__ == "__main__":
    asyncio.run(main())
