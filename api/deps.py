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
from persistence import AgentRepository, CredentialRepository, Database


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

    role: Literal["admin", "agent"]
    agent_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_bearer = HTTPBearer(auto_error=False, description="An agent token or the admin token.")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_principal(
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer token: the admin token, or a live agent token."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing bearer token")
    token = credentials.credentials
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    if admin and same_secret(token, admin):
        return Principal("admin")
    database = get_database(request)
    secret = settings.token_secret.get_secret_value()
    agent_id = await CredentialRepository(database).agent_for(hash_token(token, secret))
    if agent_id is None:
        raise _unauthorized("invalid or revoked token")
    return Principal("agent", agent_id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]

PathAgentId = Annotated[str, Path(min_length=1, max_length=63)]


async def existing_agent(agent_id: PathAgentId, database: DatabaseDep) -> AgentManifest:
    manifest = await AgentRepository(database).get(agent_id)
    if manifest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    return manifest


ExistingAgent = Annotated[AgentManifest, Depends(existing_agent)]


async def agent_self_or_admin(agent_id: PathAgentId, principal: CurrentPrincipal) -> Principal:
    """The agent acts on itself, or an admin acts on anyone."""
    if principal.is_admin or principal.agent_id == agent_id:
        return principal
    raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may act only on itself")


SelfOrAdmin = Annotated[Principal, Depends(agent_self_or_admin)]


async def live_agent(_: SelfOrAdmin, manifest: ExistingAgent) -> AgentManifest:
    """An agent that exists, may be acted on by the caller, and is not retired."""
    if manifest.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {manifest.agent_id} is retired")
    return manifest


LiveOwnAgent = Annotated[AgentManifest, Depends(live_agent)]
