"""The only package that imports pymongo: the client, the indexes and the repositories."""

from persistence.agents import (
    AgentRepository,
    AttentionRepository,
    CredentialRepository,
    OperatorRepository,
    decode_cursor,
)
from persistence.audit import AuditRepository
from persistence.chats import ChatRepository, FloorRepository, MessageRepository
from persistence.client import Database, open_database
from persistence.errors import STORE_UNAVAILABLE
from persistence.ledger import LedgerRepository, SkillRepository
from persistence.stats import count_by
from persistence.tasks import ReviewRepository, TaskRepository

__all__ = [
    "STORE_UNAVAILABLE",
    "AgentRepository",
    "AuditRepository",
    "AttentionRepository",
    "ChatRepository",
    "MessageRepository",
    "OperatorRepository",
    "CredentialRepository",
    "Database",
    "FloorRepository",
    "LedgerRepository",
    "SkillRepository",
    "ReviewRepository",
    "TaskRepository",
    "count_by",
    "decode_cursor",
    "open_database",
]
