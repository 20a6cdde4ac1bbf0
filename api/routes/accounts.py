"""Accounts: balances from the ledger, minting (admins), transfers between agents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import (
    AdminPrincipal,
    CorrelationId,
    DatabaseDep,
    ExistingAgent,
    OwnAgent,
    SelfAgent,
    TemporalDep,
)
from api.errors import unprocessable, validation_detail
from api.routes.messages import IdempotencyKey
from core.names import agent_workflow_id
from models.agents import AgentStatus
from models.market import (
    MINT,
    AccountView,
    DebitRequest,
    DebitResult,
    LedgerEntry,
    MintRequest,
    TransferCreate,
    agent_account,
)
from persistence import AgentRepository, LedgerRepository
from workflows.agent import AgentWorkflow

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("/{agent_id}", response_model=AccountView)
async def read_account(
    agent: OwnAgent,
    database: DatabaseDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AccountView:
    """The balance (credits minus debits in the ledger) and a page of entries, newest
    first (the agent itself, its operator, admins)."""
    ledger = LedgerRepository(database)
    account = agent_account(agent.agent_id)
    entries, next_before = await ledger.page(account, before, limit)
    return AccountView(
        agent_id=agent.agent_id,
        balance=await ledger.balance(account),
        entries=entries,
        next_before=next_before,
    )


@router.post("/{agent_id}/mint", status_code=status.HTTP_201_CREATED, response_model=DebitResult)
async def mint(
    body: MintRequest,
    _: AdminPrincipal,
    agent: ExistingAgent,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> DebitResult:
    """Create tokens in an agent's account (admins; the only way tokens come to be). With
    an ``Idempotency-Key``, a retried mint is recorded once."""
    if agent.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {agent.agent_id} is retired")
    ledger = LedgerRepository(database)
    key = idempotency_key or uuid.uuid4().hex
    asked = await ledger.record(
        LedgerEntry(
            entry_id=f"mint/{agent.agent_id}/{key}", debit=MINT,
            credit=agent_account(agent.agent_id), amount=body.amount, kind="mint",
            memo=body.memo, at=datetime.now(UTC),
        )
    )  # fmt: skip
    entry = _same_request(asked, amount=body.amount, memo=body.memo)
    return DebitResult(entry=entry, balance=await ledger.balance(entry.credit))


def _same_request(entry: LedgerEntry, **asked) -> LedgerEntry:
    """The entry an Idempotency-Key names, if it is what this request asks; a key reused
    with another body is a 422 (and nothing moved a second time)."""
    if any(getattr(entry, name) != value for name, value in asked.items()):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            validation_detail(
                "Idempotency-Key: already used for another amount, recipient or memo; "
                "a new payment needs a new key"
            ),
        )
    return entry


@router.post(
    "/{agent_id}/transfers", status_code=status.HTTP_201_CREATED, response_model=DebitResult
)
async def transfer(
    body: TransferCreate,
    agent: SelfAgent,
    database: DatabaseDep,
    temporal: TemporalDep,
    cid: CorrelationId,
    idempotency_key: IdempotencyKey = None,
) -> DebitResult:
    """Pay another agent (the payer itself). 409 without the funds; nothing moves."""
    if body.recipient == agent.agent_id:
        raise unprocessable("recipient: an agent does not pay itself")
    recipient = await AgentRepository(database).get(body.recipient)
    if recipient is None:
        raise unprocessable(f"recipient: agent {body.recipient} not found")
    if recipient.status == AgentStatus.RETIRED:
        raise unprocessable(f"recipient: agent {body.recipient} is retired")
    key = idempotency_key or uuid.uuid4().hex
    request = DebitRequest(
        entry_id=f"transfer/{agent.agent_id}/{key}", credit=agent_account(body.recipient),
        amount=body.amount, kind="transfer", memo=body.memo, correlation_id=cid,
    )  # fmt: skip
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    result = await handle.execute_update(AgentWorkflow.debit, request, id=request.entry_id)
    _same_request(result.entry, amount=body.amount, memo=body.memo, credit=request.credit)
    return result
