"""Floor control in group chats: settings, requests, the floor's state and its public view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, Strict, StringConstraints

from models.bounds import Input, PlainName
from models.termination import TerminationError, parse

Policy = Literal["fifo", "priority", "round_robin", "random", "moderator", "llm"]
POLICIES: tuple[str, ...] = ("fifo", "priority", "round_robin", "random", "moderator", "llm")

TurnSeconds = Annotated[float, Field(ge=1, le=3600)]
TurnMessages = Annotated[int, Strict(), Field(ge=1, le=1000)]
HandoffBound = Annotated[int, Strict(), Field(ge=1, le=100)]
GraceSeconds = Annotated[float, Field(ge=0, le=60)]
PricePer1k = Annotated[int, Strict(), Field(ge=1, le=1_000_000)]


def _parses(expression: str) -> str:
    try:
        parse(expression)
    except TerminationError as exc:
        raise ValueError(f"not a termination expression: {exc}") from None
    return expression


Termination = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_parses),
    Field(
        description="End conditions with and/or: max_turns(n), max_messages(n), tokens(n), "
        'text("..."), idle(seconds); e.g. max_turns(12) or (text("DONE") and '
        "max_messages(40))",
    ),
]
Priority = Annotated[int, Strict(), Field(ge=0, le=10)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), PlainName]


class FloorSettings(Input):
    """How a group chat takes turns; every bound is checked (422 outside it)."""

    speaker_policy: Policy = "fifo"
    turn_seconds: TurnSeconds = 60
    max_messages_per_turn: TurnMessages = 5
    max_turns: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = None
    idle_timeout_seconds: TurnSeconds | None = None
    termination_text: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    handoff_to_any: bool = False
    """The holder may hand the floor to any member (else only to one that asked for it)."""
    max_handoffs_in_row: HandoffBound = 3
    """How many handoffs in a row may pass between the same two agents; past it the
    holder yields and the policy chooses (the ping-pong guard)."""
    termination: Termination | None = None
    """When a round ends, composed (``models/termination.py``); beside the limits above."""
    round_robin_grace_seconds: GraceSeconds = 2.0
    """Round robin: how long a free floor waits for the next member in the order that is
    back for another turn this round (it spoke, then asked again) before passing over it
    to a later one that asked (0: never wait). One passed over leaves the rotation until
    it asks again."""
    price_per_1k_tokens: PricePer1k = 1
    """Where the chat has an account (its owner deposited into it): the ledger tokens a
    turn pays, per 1,000 model tokens its posts reported, from the chat's account to the
    agent that spoke (rounded up)."""


class FloorSettingsUpdate(Input):
    """``PATCH /v1/chats/{id}/floor``: owner or admins change the policy and the limits."""

    speaker_policy: Policy | None = None
    turn_seconds: TurnSeconds | None = None
    max_messages_per_turn: TurnMessages | None = None
    max_turns: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = None
    idle_timeout_seconds: TurnSeconds | None = None
    termination_text: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    handoff_to_any: bool | None = None
    max_handoffs_in_row: HandoffBound | None = None
    termination: Termination | None = None
    round_robin_grace_seconds: GraceSeconds | None = None
    price_per_1k_tokens: PricePer1k | None = None


class FloorAsk(Input):
    """``POST /v1/chats/{id}/floor``: a request to speak."""

    priority: Priority = 0
    reason: Reason | None = None


class FloorGrant(Input):
    """``POST /v1/chats/{id}/floor/grant``: a moderator hands the floor to a requester."""

    agent_id: str


class FloorHandoff(Input):
    """``POST /v1/chats/{id}/floor/handoff``: the holder names who speaks next."""

    to: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TurnRecord(BaseModel):
    """One finished turn: how long it held the floor, and how much of that was the model."""

    agent_id: str
    round: int
    turn: int
    started_at: datetime
    seconds: float
    """From the grant to the end of the turn (its hand-over to the speaker included)."""
    model_seconds: float | None = None
    """Time inside the model, as a hosted agent's posts report it (None: not reported)."""
    overhead_seconds: float | None = None
    """``seconds - model_seconds``: the orchestration around the model."""
    messages: int = 0
    ended_by: str


class TurnSummary(BaseModel):
    """The recent turns at a glance: where a slow room's time goes."""

    turns: int
    seconds_p50: float
    seconds_p99: float
    overhead_seconds_p50: float | None = None
    overhead_seconds_p99: float | None = None


RECENT_TURNS = 20


class Charge(BaseModel):
    """A movement out of the chat's account the chat has decided on and the ledger has
    not recorded yet (its id is the ledger entry's: recorded twice, stored once)."""

    entry_id: str
    to: str
    """The agent paid: the speaker of a turn, or the owner a withdrawal returns to."""
    amount: int
    kind: Literal["chat_turn", "withdrawal"]
    memo: str = ""


class ChatBudget(BaseModel):
    """A chat's own ledger account, ``chat:<id>``, as its workflow keeps it: funded by
    the owner's deposits, paying for its turns' model use. The workflow is the account's
    only payer, so the balance it keeps is the balance it may spend: the ledger holds at
    least as much (a charge counts here first and is recorded after)."""

    balance: int = 0
    deposited: int = 0
    spent: int = 0
    spent_in_round: int = 0
    turn_cost: int = 0
    """Charged in the turn that holds the floor."""
    dearest_turn: int = 0
    """The most a turn of this chat has cost: a round ends when the balance is below it
    (below 1 before any turn was paid), as the next turn could spend past it."""
    movements: int = 0
    """Charges and withdrawals made (numbers their entry ids)."""
    deposits: list[str] = []
    """The latest deposits' entry ids (a retried deposit counts once)."""
    withdrawals: dict[str, int] = {}
    """The latest withdrawals' Idempotency-Keys and amounts (a retried one moves once)."""
    unrecorded: list[Charge] = []

    @property
    def next_turn_needs(self) -> int:
        return max(1, self.dearest_turn)


class BudgetView(BaseModel):
    """The chat's account as its floor sees it (``GET /v1/chats/{id}/floor``)."""

    account: str
    balance: int
    price_per_1k_tokens: int
    spent_in_round: int
    spent: int
    next_turn_needs: int = Field(
        description="A round ends when the balance is below this: the most a turn here "
        "has cost (at least 1), as the next one could cost as much."
    )


class FloorRequest(BaseModel):
    agent_id: str
    priority: int = 0
    reason: str | None = None
    requested_at: datetime
    order: int = 0
    """Arrival number: ties in time are broken by arrival, never by chance."""
    after_post: int | None = None
    """A standing request, made with the asker's own post (a hosted agent's turn asks for
    the next one as it yields): no policy grants it until a later post (the floor's
    ``posts`` past this). None: it may be granted now."""


class FloorState(BaseModel):
    """The floor of one chat, inside ``ChatWorkflow``'s state."""

    settings: FloorSettings
    current_speaker: str | None = None
    turn_started_at: datetime | None = None
    turn_ends_at: datetime | None = None
    messages_in_turn: int = 0
    queue: list[FloorRequest] = []
    last_speaker: str | None = None
    next_order: int = 0
    round: int = 1
    turns_in_round: int = 0
    round_open: bool = True
    last_activity_at: datetime | None = None
    grant_reason: str | None = None
    model_seconds_in_turn: float | None = None
    recent_turns: list[TurnRecord] = []
    """The last ``RECENT_TURNS`` turns, oldest first."""
    handoff_pair: list[str] | None = None
    """The two agents of the handoffs in a row (sorted), and how many there were."""
    handoffs_in_row: int = 0
    messages_in_round: int = 0
    tokens_in_round: int = 0
    said_in_round: list[str] = []
    """The termination expression's texts said so far this round (lower case)."""
    spoke_in_round: list[str] = []
    """Who held the floor this round."""
    rotation: list[str] = []
    """Round robin: who is back for another turn this round (held it, then asked again);
    the free floor waits a grace for the next of them in the order."""
    free_since: datetime | None = None
    """When the floor last came free."""
    held_until: datetime | None = None
    """Round robin: the free floor waits until then for the next of the rotation."""
    posts: int = 0
    """Members' posts the floor has counted (a standing request waits for one more)."""
    budget: ChatBudget | None = None
    """The chat's account, from the owner's first deposit (None: turns are not paid)."""


class QueuedRequest(BaseModel):
    agent_id: str
    position: int
    priority: int
    reason: str | None = None
    requested_at: datetime
    after_next_message: bool = Field(
        default=False,
        description="A standing request, made with the member's own post: granted only "
        "once someone has posted after it.",
    )


class FloorView(BaseModel):
    """``GET /v1/chats/{id}/floor``, and the answer to a request to speak."""

    chat_id: str
    speaker_policy: str
    current_speaker: str | None
    turn_started_at: datetime | None
    turn_ends_at: datetime | None
    messages_left: int | None
    queue: list[QueuedRequest]
    round: int
    turns_in_round: int
    your_position: int | None = Field(
        default=None, description="The caller's place in the queue (1 is next), if waiting."
    )
    you_hold_the_floor: bool = False
    recent_turns: list[TurnRecord] = Field(
        default=[], description="The last turns, oldest first: duration, model time, overhead."
    )
    turn_summary: TurnSummary | None = Field(
        default=None, description="p50 and p99 of the recent turns' durations and overhead."
    )
    budget: BudgetView | None = Field(
        default=None, description="The chat's account, where its owner funded one."
    )
