"""MongoDB writes, each idempotent (deterministic ids, upserts, versioned replaces)."""

from __future__ import annotations

from temporalio import activity

from models.workflow_io import StoreCredentialInput, StoreManifestInput
from persistence import AgentRepository, CredentialRepository, Database


class StoreActivities:
    """Holds the repositories; built once by the worker."""

    def __init__(self, database: Database) -> None:
        self._agents = AgentRepository(database)
        self._credentials = CredentialRepository(database)

    @activity.defn(name="store_manifest")
    async def store_manifest(self, data: StoreManifestInput) -> bool:
        """Store the agent's manifest unless a newer version is already there."""
        return await self._agents.upsert(data.manifest)

    @activity.defn(name="store_credential")
    async def store_credential(self, data: StoreCredentialInput) -> None:
        """Store (or revoke) the keyed hash of an agent's token."""
        await self._credentials.put(data.agent_id, data.token_hash, revoked=data.revoked)
