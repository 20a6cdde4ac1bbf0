"""/healthz and /readyz: ready only when every dependency answers; 503 names the one down."""

from __future__ import annotations

import httpx

from api.app import create_app
from cli.stack import free_port


async def test_ready_when_every_dependency_answers(api):
    assert (await api.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "rabbitmq": "ok", "temporal": "ok"}


async def test_readiness_names_the_dependency_that_is_down(settings):
    dead = free_port()
    broken = settings.model_copy(
        update={"mongodb_uri": f"mongodb://127.0.0.1:{dead}/", "readiness_timeout_seconds": 0.5}
    )
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agora.test") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["mongodb"].startswith("unavailable")
            assert checks["rabbitmq"] == "ok" and checks["temporal"] == "ok"
            assert (await client.get("/healthz")).status_code == 200
            # a route that needs the store answers 503 too, never 500
            listed = await client.get(
                "/v1/agents",
                headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
            )
            assert listed.status_code == 503
            assert "mongodb" in listed.json()["detail"]


async def test_openapi_is_served(api):
    schema = (await api.get("/openapi.json")).json()
    assert "/v1/agents" in schema["paths"]
    assert (await api.get("/docs")).status_code == 200


async def test_the_openapi_describes_every_event_payload_a_stream_carries(api):
    """The streams are WebSockets; what their events' payloads hold is in the document's
    components, each schema named by its event type and open to fields added later."""
    from models.events import catalogue

    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
    published = {s["x-event-type"]: s for s in schemas.values() if "x-event-type" in s}
    assert set(published) == set(catalogue())
    sent = published["message.sent"]
    assert sent["properties"]["message"] == {"$ref": "#/components/schemas/Message"}
    assert "from" in schemas["Message"]["properties"]  # by its name on the wire
    assert "price" not in published["task.assigned"]["required"]  # the others are not told
    assert not any("additionalProperties" in s for s in published.values())
