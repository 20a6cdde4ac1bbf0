"""Ledger activities: record movements, idempotently (the entry id is the key)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.market import DebitResult, LedgerEntry
from models.workflow_io import DebitInput
from persistence import Database, LedgerRepository


class LedgerActivities:
    def __init__(self, database: Database) -> None:
        self._ledger = LedgerRepository(database)

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
                    entry_id=request.entry_id, debit=data.account, credit=request.credit,
                    amount=request.amount, kind=request.kind, memo=request.memo,
                    task_id=request.task_id, at=datetime.now(UTC),
                )
            )  # fmt: skip
        return DebitResult(entry=existing, balance=await self._ledger.balance(data.account))

    @activity.defn(name="ledger_record")
    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        """A movement whose payer's funds the caller has already made sure of (escrow
        payouts by the task's own workflow)."""
        return await self._ledger.record(entry)
