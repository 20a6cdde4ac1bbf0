"""The only package that imports pymongo: the client, the indexes and the repositories."""

from persistence.a2a import A2ATaskRepository
from persistence.agents import (
    AgentRepository,
    AttentionRepository,
    CredentialRepository,
    OperatorRepository,
    StreamTicketRepository,
    decode_cursor,
)
from persistence.audit import AuditRepository
from persistence.chats import (
    ChatRepository,
    FloorRepository,
    MessageRepository,
    decode_chat_cursor,
)
from persistence.client import Database, open_database
from persistence.errors import STORE_UNAVAILABLE, StoreFailure, store_is_away
from persistence.ledger import DEFAULT_SKILLS, LedgerRepository, SkillRepository
from persistence.stats import count_by
from persistence.tasks import ReviewRepository, TaskRepository

__all__ = [
    "A2ATaskRepository",
    "DEFAULT_SKILLS",
    "STORE_UNAVAILABLE",
    "StoreFailure",
    "store_is_away",
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
    "StreamTicketRepository",
    "ReviewRepository",
    "TaskRepository",
    "count_by",
    "decode_chat_cursor",
    "decode_cursor",
    "open_database",
]
