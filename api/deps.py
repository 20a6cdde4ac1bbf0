"""Dependencies: the clients on ``app.state`` and the permission checks, written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.credentials import CredentialCache
from api.errors import ServiceUnavailable
from bus import EventBus
from core.logging import correlation_id
from core.names import PLATFORM
from core.security import InvalidToken, TokenClaims, TokenCodec, same_secret
from core.settings import Settings
from models.agents import FOCUS_PREFIX, AgentManifest, AgentStatus, public_view
from models.chats import RANK, ChatPublic, Role, a, can_read
from persistence import (
    AgentRepository,
    ChatRepository,
    CredentialRepository,
    Database,
    store_is_away,
)

# ---- the declared requirements --------------------------------------------------------

ACCESS: dict[Callable[..., Any], str] = {}
"""Each access dependency and the requirement it stands for; ``declare_access`` writes
the requirements of every route into the OpenAPI (``x-agora-access``)."""


def requirement(label: str):
    """Register a dependency as an access requirement."""

    def register(dependency: Callable[..., Any]) -> Callable[..., Any]:
        ACCESS[dependency] = label
        return dependency

    return register


def _requirements(dependant: Dependant) -> list[str]:
    found = [ACCESS[dependant.call]] if dependant.call in ACCESS else []
    for sub in dependant.dependencies:
        found += _requirements(sub)
    return found


def declare_access(router: APIRouter) -> APIRouter:
    """Write each route's declared requirements into its OpenAPI operation (call before
    the router is included). A route without one gets none, and the suite's OpenAPI
    walk fails on it."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            labels = sorted(set(_requirements(route.dependant)))
            if labels:
                route.openapi_extra = (route.openapi_extra or {}) | {"x-agora-access": labels}
    return router


@requirement("public")
async def public() -> None:
    """No credential: health, readiness, metrics and the A2A agent card."""


Public = Depends(public)


# The dependencies are coroutines, also where they only read ``app.state``: FastAPI runs a
# plain function in its thread pool, a hop to another thread for each dependency of each
# request (the README's Performance section has what those hops cost).


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_temporal(request: Request) -> Client:
    client = request.app.state.deps.temporal
    if client is None:
        raise ServiceUnavailable("temporal")
    return client


def database_of(request: Request) -> Database:
    """The store's client (503 while it is away), outside a dependency."""
    database = request.app.state.deps.database
    if database is None:
        raise ServiceUnavailable("mongodb")
    return database


async def get_database(request: Request) -> Database:
    return database_of(request)


async def get_bus(request: Request) -> EventBus:
    bus = request.app.state.deps.bus
    if bus is None:
        raise ServiceUnavailable("rabbitmq")
    return bus


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BusDep = Annotated[EventBus, Depends(get_bus)]


async def get_correlation_id() -> str | None:
    return correlation_id.get()


CorrelationId = Annotated[str | None, Depends(get_correlation_id)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the platform admin, an operator or one agent."""

    role: Literal["admin", "operator", "agent"]
    agent_id: str | None = None
    operator_id: str | None = None
    token_id: str | None = None

    @property
    def name(self) -> str:
        """How the audit log names the caller."""
        if self.role == "admin":
            return "admin"
        return f"agent:{self.agent_id}" if self.agent_id else f"operator:{self.operator_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_bearer = HTTPBearer(auto_error=False, description="An agent or operator JWT, or the admin token.")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_tokens(request: Request) -> TokenCodec:
    return request.app.state.tokens


TokensDep = Annotated[TokenCodec, Depends(get_tokens)]


async def get_credentials(request: Request) -> CredentialCache:
    return request.app.state.credentials


async def token_is_live(
    credentials: CredentialCache, database: Database, token_id: str, subject: str, role: str
) -> bool:
    """Whether a token id is live: from the process's cache, else one store read."""
    return await credentials.is_live(
        token_id, subject, role, CredentialRepository(database).is_live, store_is_away
    )


VERIFIED = "verified_token"
"""The request state's key for ``(token, claims)`` of a bearer token already verified in
this request (``api.limits`` verifies it to count the caller's rate)."""


async def authenticate(
    token: str,
    settings: Settings,
    database: Database,
    tokens: TokenCodec,
    credentials: CredentialCache,
    verified: TokenClaims | None = None,
) -> Principal:
    """The principal a bearer token stands for; ``InvalidToken`` with the reason if none.

    The admin token is the bootstrap secret from settings. Every other token is a JWT
    this server signed (one algorithm, its issuer and audience, inside ``nbf``..``exp``)
    whose id is still live in ``credentials`` (rotation and retirement revoke it; the
    process's ``CredentialCache`` hears of it over the bus). ``verified``: this token's
    claims, verified earlier in the same request (the request limits did)."""
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    if admin and same_secret(token, admin):
        return Principal("admin")
    claims = verified or tokens.verify(token)
    if not await token_is_live(credentials, database, claims.token_id, claims.subject, claims.role):
        raise InvalidToken("token revoked")
    if claims.role == "agent":
        return Principal("agent", agent_id=claims.subject, token_id=claims.token_id)
    return Principal("operator", operator_id=claims.subject, token_id=claims.token_id)


@requirement("authenticated")
async def current_principal(
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer token; 401 with the reason (never the token) otherwise."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing bearer token")
    token = credentials.credentials
    verified = getattr(request.state, VERIFIED, None)
    try:
        principal = await authenticate(
            token,
            settings,
            database_of(request),
            request.app.state.tokens,
            request.app.state.credentials,
            verified[1] if verified and verified[0] == token else None,
        )
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@requirement("role:agent")
async def require_agent(principal: CurrentPrincipal) -> Principal:
    if principal.agent_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an agent may do this")
    return principal


AgentPrincipal = Annotated[Principal, Depends(require_agent)]


@requirement("role:admin")
async def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


@requirement("role:admin|operator")
async def require_admin_or_operator(principal: CurrentPrincipal) -> Principal:
    if principal.role not in ("admin", "operator"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins and operators introduce agents")
    return principal


IntroducerPrincipal = Annotated[Principal, Depends(require_admin_or_operator)]

PathAgentId = Annotated[str, Path(min_length=1, max_length=63)]


@requirement("object:agent-exists")
async def existing_agent(agent_id: PathAgentId, database: DatabaseDep) -> AgentManifest:
    manifest = await AgentRepository(database).get(agent_id)
    if manifest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    return manifest


ExistingAgent = Annotated[AgentManifest, Depends(existing_agent)]


async def _own(agent_id: str, principal: Principal, database: Database) -> AgentManifest:
    """The agent if the caller may act on it: the agent itself, the operator who introduced
    it, or an admin. Another agent gets 403 whether or not the id exists; an operator or
    admin gets 404 for an unknown one."""
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may act only on itself")
    manifest = await existing_agent(agent_id, database)
    if principal.role == "operator" and manifest.operator_id != principal.operator_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an operator acts on its own agents")
    return manifest


@requirement("object:own-agent (itself, its operator, admin)")
async def live_agent(
    agent_id: PathAgentId, principal: CurrentPrincipal, database: DatabaseDep
) -> AgentManifest:
    """An agent the caller may act on (``_own``) that is not retired (409)."""
    manifest = await _own(agent_id, principal, database)
    if manifest.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {manifest.agent_id} is retired")
    return manifest


LiveOwnAgent = Annotated[AgentManifest, Depends(live_agent)]


@requirement("object:own-agent (itself, its operator, admin)")
async def own_agent(
    agent_id: PathAgentId, principal: CurrentPrincipal, database: DatabaseDep
) -> AgentManifest:
    """Like ``live_agent``, and a retired agent is still readable (its account, say)."""
    return await _own(agent_id, principal, database)


OwnAgent = Annotated[AgentManifest, Depends(own_agent)]


@requirement("object:self (the agent itself)")
async def self_agent(
    agent_id: PathAgentId, principal: CurrentPrincipal, database: DatabaseDep
) -> AgentManifest:
    """Only the agent itself, live: paying from an account is not its operator's or an
    admin's to do."""
    if principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the agent itself may do this")
    manifest = await existing_agent(agent_id, database)
    if manifest.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {agent_id} is retired")
    return manifest


SelfAgent = Annotated[AgentManifest, Depends(self_agent)]


# ---- chats ---------------------------------------------------------------------------

PathChatId = Annotated[str, Path(min_length=1, max_length=80)]


@dataclass(frozen=True)
class ChatView:
    """A chat the caller may see, and the caller's role in it (None: not a member)."""

    chat: ChatPublic
    role: Role | None
    principal: Principal

    @property
    def actor(self) -> str:
        return actor_of(self.principal)


def actor_of(principal: Principal) -> str:
    """Who acts in a chat workflow: the agent, the platform (an admin), or an operator
    (which is never a member, so it can only read public chats)."""
    if principal.is_admin:
        return PLATFORM
    return principal.agent_id or f"operator:{principal.operator_id}"


@dataclass(frozen=True)
class ChatTarget:
    """A chat named in the path whose rights the chat workflow checks (no store read):
    the hot path's view of a chat."""

    chat_id: str
    principal: Principal

    @property
    def actor(self) -> str:
        return actor_of(self.principal)


@requirement("chat-role:member, chat:open (the chat workflow checks both)")
async def posting_target(chat_id: PathChatId, principal: CurrentPrincipal) -> ChatTarget:
    return ChatTarget(chat_id, principal)


PostingTarget = Annotated[ChatTarget, Depends(posting_target)]


async def refuse_from_store(request: Request, target: ChatTarget, database: Database) -> None:
    """The precise refusal for a chat whose workflow is not running (it never existed, or
    it ended when the chat closed): 404 unless the caller may see it, then 409 closed."""
    view = await visible_chat(request, target.chat_id, target.principal, database)
    await open_chat(view)


def _hidden(request: Request) -> HTTPException:
    """A chat the caller may not see is answered as missing, and audited as denied."""
    request.state.denied = True
    return HTTPException(status.HTTP_404_NOT_FOUND, "chat not found")


async def public_pages(manifests: list[AgentManifest], database: Database) -> list[AgentManifest]:
    """The manifests as any other agent (or the public: an A2A card) sees them: of their
    rooms and focus, only public group chats (one store read for them all)."""
    rooms = [r for m in manifests for r in m.room_participation]
    rooms += [
        a.removeprefix(FOCUS_PREFIX)
        for m in manifests
        for a in m.current_activities
        if a.startswith(FOCUS_PREFIX)
    ]
    public = await ChatRepository(database).public_groups(rooms) if rooms else set()
    return [public_view(m, public) for m in manifests]


@requirement("chat:visible (member, or a public chat)")
async def visible_chat(
    request: Request, chat_id: PathChatId, principal: CurrentPrincipal, database: DatabaseDep
) -> ChatView:
    """404 for a chat the caller cannot see, whether or not it exists."""
    chat = await ChatRepository(database).get(chat_id)
    if chat is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "chat not found")
    if principal.is_admin:
        return ChatView(chat, Role.OWNER, principal)
    role = next((m.role for m in chat.members if m.agent_id == principal.agent_id), None)
    if role is None and not (chat.join_rule == "public" and not chat.closed):
        raise _hidden(request)
    return ChatView(chat, role, principal)


VisibleChat = Annotated[ChatView, Depends(visible_chat)]


@requirement("chat-role:guest")
async def readable_chat(view: VisibleChat) -> ChatView:
    """Members (guests included) read; a visible public chat asks a non-member to join."""
    if not can_read(view.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "join the chat to read it")
    return view


ReadableChat = Annotated[ChatView, Depends(readable_chat)]


def chat_role(least: Role, refusal: str):
    """A dependency: the caller's role in the chat is ``least`` or above (403 otherwise),
    declared as ``chat-role:<least>``. The chat workflow checks again; this answers early."""

    @requirement(f"chat-role:{least}")
    async def at_least(view: ReadableChat) -> ChatView:
        if RANK[view.role] < RANK[least]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal.format(role=a(view.role)))
        return view

    return Annotated[ChatView, Depends(at_least)]


@requirement("chat:open")
async def open_chat(view: VisibleChat) -> ChatView:
    """409 for a closed chat: its history stays readable, nothing in it changes."""
    if view.chat.closed:
        raise HTTPException(status.HTTP_409_CONFLICT, f"chat {view.chat.chat_id} is closed")
    return view


OpenChat = Annotated[ChatView, Depends(open_chat)]


@requirement("chat-role:owner (either member of a direct chat)")
async def closable_chat(view: OpenChat) -> ChatView:
    """The owner closes a group; either member closes their direct chat."""
    if view.chat.type == "direct" and view.role is not None:
        return view
    if view.role != Role.OWNER:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the owner closes the chat")
    return view


ClosableChat = Annotated[ChatView, Depends(closable_chat)]

PostingChat = chat_role(Role.MEMBER, "{role} may only read")
ModeratingChat = chat_role(
    Role.MODERATOR, "only a moderator (or an admin, or the owner) may do this"
)
ManagedChat = chat_role(Role.ADMIN, "only the owner and admins may do this")
OwnedChat = chat_role(Role.OWNER, "only the chat's owner moves tokens in and out of its account")
