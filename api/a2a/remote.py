"""Reading a remote agent's A2A card when it is introduced.

The card's URL, and the JSON-RPC URL it names, must be on a host of the
``a2a_allowed_hosts`` setting (none by default), so an introduction cannot make the
platform call internal addresses. A card that cannot be fetched, is not an A2A card,
names no JSON-RPC interface, or is unsigned where ``a2a_require_signed_cards`` is set,
refuses the introduction with the reason.
"""

from __future__ import annotations

import httpx
from a2a.types import AgentCard
from a2a.utils.constants import TransportProtocol
from google.protobuf.json_format import ParseDict, ParseError

from core.settings import Settings

CARD_BYTES = 256 * 1024


class CardRefused(ValueError):
    """Why a remote agent's card cannot be used."""


def allowed(url: str, settings: Settings) -> bool:
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return False
    return bool(host) and host in settings.a2a_allowed_hosts


async def read_card(url: str, settings: Settings) -> tuple[AgentCard, str]:
    """The remote agent's card and its JSON-RPC URL; ``CardRefused`` with the reason."""
    if not allowed(url, settings):
        raise CardRefused(f"{httpx.URL(url).host or url} is not in a2a_allowed_hosts")
    try:
        async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise CardRefused(f"the card could not be fetched: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise CardRefused(f"the card could not be fetched: HTTP {response.status_code}")
    if len(response.content) > CARD_BYTES:
        raise CardRefused(f"the card is over {CARD_BYTES} bytes")
    try:
        raw = response.json()
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        card = ParseDict(raw, AgentCard(), ignore_unknown_fields=True)
    except (ValueError, ParseError) as exc:
        raise CardRefused(f"not an A2A agent card: {str(exc)[:120]}") from None
    if not card.name:
        raise CardRefused("not an A2A agent card: it has no name")
    if settings.a2a_require_signed_cards and not card.signatures:
        raise CardRefused("the card is unsigned, and a2a_require_signed_cards is set")
    rpc = next(
        (
            i.url
            for i in card.supported_interfaces
            if i.protocol_binding == TransportProtocol.JSONRPC.value
        ),
        None,
    )
    if not rpc:
        raise CardRefused("the card names no JSON-RPC interface (the binding Agora speaks)")
    if len(rpc) > 190:
        raise CardRefused("its JSON-RPC URL is over 190 characters")
    if not allowed(rpc, settings):
        raise CardRefused(f"its JSON-RPC URL's host {httpx.URL(rpc).host} is not allowed")
    return card, rpc
