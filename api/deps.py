"""Dependencies: the clients on ``app.state`` and the permission checks, written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.errors import ServiceUnavailable
from bus import EventBus
from core.logging import correlation_id
from core.security import hash_token, same_secret
from core.settings import Settings
from models.agents import AgentManifest, AgentStatus
from models.chats import ChatPublic, Role, can_read
from persistence import (
    AgentRepository,
    ChatRepository,
    CredentialRepository,
    Database,
    OperatorRepository,
)
from workflows.chat import PLATFORM


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_temporal(request: Request) -> Client:
    client = request.app.state.deps.temporal
    if client is None:
        raise ServiceUnavailable("temporal")
    return client


def get_database(request: Request) -> Database:
    database = request.app.state.deps.database
    if database is None:
        raise ServiceUnavailable("mongodb")
    return database


def get_bus(request: Request) -> EventBus:
    bus = request.app.state.deps.bus
    if bus is None:
        raise ServiceUnavailable("rabbitmq")
    return bus


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BusDep = Annotated[EventBus, Depends(get_bus)]


def get_correlation_id() -> str | None:
    return correlation_id.get()


CorrelationId = Annotated[str | None, Depends(get_correlation_id)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the platform admin or one agent."""

    role: Literal["admin", "operator", "agent"]
    agent_id: str | None = None
    operator_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_bearer = HTTPBearer(auto_error=False, description="An agent token or the admin token.")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(token: str, settings: Settings, database: Database) -> Principal | None:
    """The principal a bearer token stands for: the admin, a live agent, or nobody."""
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    if admin and same_secret(token, admin):
        return Principal("admin")
    hashed = hash_token(token, settings.token_secret.get_secret_value())
    agent_id = await CredentialRepository(database).agent_for(hashed)
    if agent_id:
        return Principal("agent", agent_id)
    operator_id = await OperatorRepository(database).operator_for(hashed)
    return Principal("operator", operator_id=operator_id) if operator_id else None


async def current_principal(
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer token: the admin token, or a live agent token."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing bearer token")
    principal = await authenticate(credentials.credentials, settings, get_database(request))
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_agent(principal: CurrentPrincipal) -> Principal:
    if principal.agent_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an agent may do this")
    return principal


AgentPrincipal = Annotated[Principal, Depends(require_agent)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


def require_admin_or_operator(principal: CurrentPrincipal) -> Principal:
    if principal.role not in ("admin", "operator"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins and operators introduce agents")
    return principal


IntroducerPrincipal = Annotated[Principal, Depends(require_admin_or_operator)]

PathAgentId = Annotated[str, Path(min_length=1, max_length=63)]


async def existing_agent(agent_id: PathAgentId, database: DatabaseDep) -> AgentManifest:
    manifest = await AgentRepository(database).get(agent_id)
    if manifest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    return manifest


ExistingAgent = Annotated[AgentManifest, Depends(existing_agent)]


async def live_agent(
    agent_id: PathAgentId, principal: CurrentPrincipal, database: DatabaseDep
) -> AgentManifest:
    """An agent that exists, is not retired, and the caller may act on: the agent itself,
    the operator who introduced it, or an admin. Another agent gets 403 whether or not
    the id exists; an operator or admin gets 404 for an unknown one."""
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may act only on itself")
    manifest = await existing_agent(agent_id, database)
    if principal.role == "operator" and manifest.operator_id != principal.operator_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an operator acts on its own agents")
    if manifest.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {manifest.agent_id} is retired")
    return manifest


LiveOwnAgent = Annotated[AgentManifest, Depends(live_agent)]


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
        """Who acts in the chat workflow: the agent, the platform (an admin), or an operator
        (which is never a member, so it can only read public chats)."""
        if self.principal.is_admin:
            return PLATFORM
        return self.principal.agent_id or f"operator:{self.principal.operator_id}"


async def visible_chat(
    chat_id: PathChatId, principal: CurrentPrincipal, database: DatabaseDep
) -> ChatView:
    """404 for a chat the caller cannot see, whether or not it exists."""
    chat = await ChatRepository(database).get(chat_id)
    if chat is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "chat not found")
    if principal.is_admin:
        return ChatView(chat, Role.OWNER, principal)
    role = next((m.role for m in chat.members if m.agent_id == principal.agent_id), None)
    if role is None and not (chat.join_rule == "public" and not chat.closed):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "chat not found")
    return ChatView(chat, role, principal)


VisibleChat = Annotated[ChatView, Depends(visible_chat)]


async def readable_chat(view: VisibleChat) -> ChatView:
    """Members (guests included) read; a visible public chat asks a non-member to join."""
    if not can_read(view.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "join the chat to read it")
    return view


ReadableChat = Annotated[ChatView, Depends(readable_chat)]
