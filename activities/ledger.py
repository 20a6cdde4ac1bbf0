"""Ledger activities: record movements, idempotently (the entry id is the key)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.running import update_if_running
from core.names import AgentHandlers, agent_workflow_id
from models.market import DebitRequest, DebitResult, LedgerEntry, agent_account, chat_account
from models.workflow_io import ChatDepositInput, ChatMovementsInput, DebitInput
from persistence import Database, LedgerRepository


async def debit_agent(client: Client, payer: str, request: DebitRequest) -> DebitResult:
    """Pay from an agent's account through its own workflow (which serialises its
    debits); the entry id is the update id, so a retry is one debit. Insufficient funds
    or a retired payer: a non-retryable ``Conflict``."""
    handle = client.get_workflow_handle(agent_workflow_id(payer))
    try:
        running, result = await update_if_running(
            handle, AgentHandlers.DEBIT, request, id=request.entry_id, result_type=DebitResult
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(exc)
        raise ApplicationError(message, type="Conflict", non_retryable=True) from exc
    if not running:
        raise ApplicationError(f"agent {payer} is retired", type="Conflict", non_retryable=True)
    return result


class LedgerActivities:
    def __init__(self, database: Database, client: Client | None = None) -> None:
        self._ledger = LedgerRepository(database)
        self._client = client

    @activity.defn(name="open_account")
    async def open_account(self, agent_id: str) -> None:
        await self._ledger.open_account(agent_id, datetime.now(UTC))

    @activity.defn(name="ledger_debit")
    async def debit(self, data: DebitInput) -> DebitResult:
        """Pay from an account that has the funds. Callers run one debit per account at a
        time (the account's workflow holds a lock), so check-then-write cannot race; a
        retried debit finds its entry and returns it without paying twice."""
        request = data.request
        existing = await self._ledger.get(request.entry_id)
        if existing is None:
            balance = await self._ledger.balance(data.account)
            if balance < request.amount:
                raise ApplicationError(
                    f"insufficient funds: {data.account} holds {balance}, needs {request.amount}",
                    type="Conflict",
                    non_retryable=True,
                )
            existing = await self._ledger.record(
                LedgerEntry(
                    entry_id=request.entry_id,
                    debit=data.account,
                    credit=request.credit,
                    amount=request.amount,
                    kind=request.kind,
                    memo=request.memo,
                    task_id=request.task_id,
                    at=datetime.now(UTC),
                )
            )
        return DebitResult(entry=existing, balance=await self._ledger.balance(data.account))

    @activity.defn(name="ledger_record")
    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        """A movement whose payer's funds the caller has already made sure of (escrow
        payouts by the task's own workflow)."""
        return await self._ledger.record(entry)

    @activity.defn(name="draw_chat_deposit")
    async def draw_chat_deposit(self, data: ChatDepositInput) -> DebitResult:
        """Move a deposit from the owner's account into the chat's, through the owner's
        workflow (the entry id is the update id: a retry is one debit)."""
        assert self._client is not None, "a deposit pays through the owner's workflow"
        request = DebitRequest(
            entry_id=data.entry_id,
            credit=chat_account(data.chat_id),
            amount=data.amount,
            kind="deposit",
            memo=data.memo or f"into chat {data.chat_id}",
            correlation_id=data.correlation_id,
        )
        return await debit_agent(self._client, data.owner, request)

    @activity.defn(name="record_chat_movements")
    async def record_chat_movements(self, data: ChatMovementsInput) -> list[str]:
        """Record what the chat's account paid (its workflow, the account's only payer,
        checked the balance); each entry once, by its id. Returns the ids recorded."""
        account = chat_account(data.chat_id)
        for charge in data.charges:
            await self._ledger.record(
                LedgerEntry(
                    entry_id=charge.entry_id,
                    debit=account,
                    credit=agent_account(charge.to),
                    amount=charge.amount,
                    kind=charge.kind,
                    memo=charge.memo,
                    at=data.at,
                )
            )
        return [charge.entry_id for charge in data.charges]
