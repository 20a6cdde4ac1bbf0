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
    OpenChat,
    OwnAgent,
    OwnedChat,
    ReadableChat,
    SelfAgent,
    TemporalDep,
)
from api.errors import unprocessable, validation_detail
from api.routes.messages import IdempotencyKey
from core.names import agent_workflow_id, chat_workflow_id
from models.agents import AgentStatus
from models.floor import BudgetView
from models.market import (
    MINT,
    AccountView,
    ChatAccountView,
    ChatFunds,
    DebitRequest,
    DebitResult,
    LedgerEntry,
    MintRequest,
    TransferCreate,
    agent_account,
    chat_account,
)
from models.workflow_io import ChatFundsCommand
from persistence import AgentRepository, LedgerRepository
from workflows.agent import AgentWorkflow
from workflows.chat import ChatWorkflow

router = APIRouter(prefix="/accounts", tags=["accounts"])
chats = APIRouter(prefix="/chats/{chat_id}/account", tags=["accounts"])
"""A chat's own account (``chat:<id>``): its owner funds it, its turns are paid from it."""


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
            entry_id=f"mint/{agent.agent_id}/{key}",
            debit=MINT,
            credit=agent_account(agent.agent_id),
            amount=body.amount,
            kind="mint",
            memo=body.memo,
            at=datetime.now(UTC),
        )
    )
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
        entry_id=f"transfer/{agent.agent_id}/{key}",
        credit=agent_account(body.recipient),
        amount=body.amount,
        kind="transfer",
        memo=body.memo,
        correlation_id=cid,
    )
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    result = await handle.execute_update(AgentWorkflow.debit, request, id=request.entry_id)
    _same_request(result.entry, amount=body.amount, memo=body.memo, credit=request.credit)
    return result


@chats.get("", response_model=ChatAccountView)
async def read_chat_account(
    view: ReadableChat,
    database: DatabaseDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ChatAccountView:
    """The chat's balance in the ledger and a page of its entries, newest first (its
    members and admins): deposits, the turns it paid and to whom, withdrawals. The floor
    (``GET .../floor``) shows what the next turn needs."""
    ledger = LedgerRepository(database)
    account = chat_account(view.chat.chat_id)
    entries, next_before = await ledger.page(account, before, limit)
    return ChatAccountView(
        chat_id=view.chat.chat_id,
        account=account,
        balance=await ledger.balance(account),
        entries=entries,
        next_before=next_before,
    )


_FUNDS_REFUSED = {
    422: {"description": "an Idempotency-Key used before for another amount: nothing moves"},
    403: {"description": "the caller is not the chat's owner (admins have no account here)"},
    409: {
        "description": "the chat is closed or has no floor control; a deposit the owner's "
        "account cannot pay, or a withdrawal past the chat's balance: nothing moves"
    },
}


@chats.post(
    "/deposits",
    status_code=status.HTTP_201_CREATED,
    response_model=BudgetView,
    responses=_FUNDS_REFUSED,
)
async def deposit_into_chat(
    body: ChatFunds,
    view: OwnedChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
    idempotency_key: IdempotencyKey = None,
) -> BudgetView:
    """The owner moves tokens from its own account into the chat's. From the first
    deposit, each hosted turn's model tokens are paid from it to the agent that spoke
    (the floor's ``price_per_1k_tokens``), and a round ends when the next turn could cost
    more than is left (``chat.round_ended``, reason ``budget``). With an
    ``Idempotency-Key``, a retried deposit moves once."""
    key = idempotency_key or uuid.uuid4().hex
    entry_id = f"deposit/{view.chat.chat_id}/{view.actor}/{key}"
    return await _funds(ChatWorkflow.deposit, body, view, temporal, cid, entry_id)


@chats.post(
    "/withdrawals",
    status_code=status.HTTP_201_CREATED,
    response_model=BudgetView,
    responses=_FUNDS_REFUSED,
)
async def withdraw_from_chat(
    body: ChatFunds,
    view: OwnedChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
    idempotency_key: IdempotencyKey = None,
) -> BudgetView:
    """The owner takes tokens back from the chat's account into its own (never more than
    the chat holds); answers once the ledger has the movement. With an
    ``Idempotency-Key``, a retried withdrawal moves once."""
    key = f"withdrawal/{view.actor}/{idempotency_key}" if idempotency_key else ""
    return await _funds(ChatWorkflow.withdraw, body, view, temporal, cid, key)


async def _funds(update, body: ChatFunds, view, temporal, cid, entry_id: str) -> BudgetView:
    """Ask the chat's workflow to move the tokens (it checks the owner and the balance)."""
    command = ChatFundsCommand(
        actor=view.actor,
        amount=body.amount,
        memo=body.memo,
        entry_id=entry_id,
        platform=view.principal.is_admin,
        correlation_id=cid,
    )
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    # the amount in the update's id: a key reused for another amount reaches the workflow,
    # which answers 422, instead of Temporal answering the first request's result
    return await handle.execute_update(
        update, command, id=f"{entry_id}#{body.amount}" if entry_id else None
    )
